from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hand_nas.baseline import split_baseline
from hand_nas.checkpoint import load_checkpoint, save_checkpoint
from hand_nas.config import TrainCfg
from hand_nas.errors import HandNasError
from hand_nas.models import build_model
from hand_nas.train import evaluate, held_out_loader, lr_at, train

from model_configs import small_model


def test_lr_schedule_is_warmup_then_cosine():
    cfg = TrainCfg(steps=100, warmup=10, lr=1.0)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.05) and lr_at(55, cfg) < lr_at(20, cfg)


def test_proxy_training_runs_evaluates_and_checkpoints(synth_dir, tmp_path):
    cfg = small_model(encoder="mobile_former", bridge="light_cross", cross="separable")
    seen = []
    r = train(cfg, TrainCfg(resolution=64, steps=6, batch=4, eval_every=3, warmup=2), synth_dir,
              checkpoint_dir=tmp_path / "ck", on_eval=lambda step, m: seen.append(step) or False)
    assert seen == [3, 6] and r.steps == 6 and len(r.history) == 3
    assert r.metrics.count == 2 and r.metrics.mpjpe_mm > 0
    assert r.baseline.mpjpe_mm == pytest.approx(split_baseline(synth_dir).mpjpe_mm)
    data = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert data["train"]["steps"] == 6 and data["metrics"]["mpjpe_mm"] == pytest.approx(r.metrics.mpjpe_mm)
    assert data["baseline_metrics"]["mpjpe_mm"] == pytest.approx(r.baseline.mpjpe_mm)


def test_untrained_model_predicts_the_mean_hands(hand_home):
    from hand_nas.hand.topology import ROOT_JOINT

    rng = np.random.default_rng(0)
    model = build_model(small_model()).eval()
    dec = model.pose
    # a mean hand pair the upsampling map can represent exactly, plus a relative root
    coarse = torch.as_tensor(rng.normal(0, 0.04, (2, 252, 3)), dtype=torch.float32)
    mean_v = dec.upsample.weight @ coarse
    mean_v = mean_v - (mean_v.transpose(-1, -2) @ dec.regressor_t).transpose(-1, -2)[:, ROOT_JOINT:ROOT_JOINT + 1]
    rel = torch.tensor([0.12, -0.01, 0.02])
    dec.set_mean_shape(mean_v, rel)
    with torch.no_grad():
        a, b = model(torch.rand(1, 3, 64, 64)), model(torch.rand(1, 3, 64, 64))
    # within a millimetre of the mean, yet still a function of the image (the head starts near zero, not at it)
    assert (a.verts[0] - mean_v).abs().max() < 1e-3 and not torch.equal(a.verts, b.verts)
    assert torch.allclose(a.rel_root[0], rel, atol=1e-6)


def test_a_fresh_run_starts_at_the_mean_shape_baseline(synth_dir):
    r = train(small_model(), TrainCfg(resolution=64, steps=1, batch=4, eval_every=0), synth_dir)
    # the 252-slot template cannot hold every vertex of the mean: the start is within a mm of it
    assert r.init_metrics.mpjpe_mm == pytest.approx(r.baseline.mpjpe_mm, abs=1.0)


def test_train_leaves_global_rng_and_module_mode_untouched(synth_dir):
    cfg = small_model()
    model = build_model(cfg).eval()
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    train(cfg, TrainCfg(resolution=64, steps=2, batch=4, eval_every=1, seed=7), synth_dir, model=model)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(x, y) for x, y in zip(np.random.get_state(), np_state))
    assert not any(m.training for m in model.modules())
    model.train()
    evaluate(model, held_out_loader(synth_dir, TrainCfg(resolution=64)))
    assert all(m.training for m in model.modules())


def test_the_seed_decides_the_run(synth_dir):
    cfg, tcfg = small_model(), TrainCfg(resolution=64, steps=2, batch=4, eval_every=0)
    a, b = train(cfg, tcfg, synth_dir), train(cfg, tcfg, synth_dir)
    assert a.metrics.mpjpe_mm == b.metrics.mpjpe_mm


def test_skipping_the_first_evaluation_changes_nothing_else(synth_dir, tmp_path):
    cfg, tcfg = small_model(), TrainCfg(resolution=64, steps=2, batch=4, eval_every=0)
    a = train(cfg, tcfg, synth_dir)
    b = train(cfg, tcfg, synth_dir, init_eval=False, checkpoint_dir=tmp_path / "ck")
    assert b.init_metrics is None and [h["step"] for h in b.history] == [2]
    assert a.metrics.mpjpe_mm == b.metrics.mpjpe_mm


def test_on_eval_can_stop_early(synth_dir):
    r = train(small_model(), TrainCfg(resolution=64, steps=20, batch=4, eval_every=2), synth_dir,
              on_eval=lambda step, m: step >= 4)
    assert r.stopped_early and r.steps == 4


def test_checkpoint_round_trip_in_a_fresh_process(tmp_path, hand_home):
    cfg = small_model(encoder="mobilevit_v3")
    model = build_model(cfg).eval()
    save_checkpoint(tmp_path / "ck", model, cfg)
    x = torch.rand(1, 3, 64, 64)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        out = model(x)
    ref = torch.cat([out.verts.flatten(), out.camera.flatten()])  # verts alone are the template before training
    code = (f"import torch; from hand_nas.checkpoint import load_checkpoint; m, _ = load_checkpoint({str(tmp_path / 'ck')!r}); "
            f"x = torch.load({str(tmp_path / 'x.pt')!r}); o = m(x); "
            f"torch.save(torch.cat([o.verts.flatten(), o.camera.flatten()]).detach(), {str(tmp_path / 'y.pt')!r})")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert torch.equal(torch.load(tmp_path / "y.pt"), ref)


def test_a_checkpoint_without_the_template_is_refused_in_one_line(tmp_path, hand_home):
    from safetensors.torch import load_file, save_file

    cfg = small_model()
    save_checkpoint(tmp_path / "ck", build_model(cfg), cfg)
    state = load_file(str(tmp_path / "ck" / "model.safetensors"))
    del state["pose.template"]  # what checkpoints written before the template was stored hold
    save_file(state, str(tmp_path / "ck" / "model.safetensors"))
    with pytest.raises(HandNasError, match=r"1 missing \(e.g. pose.template\)") as err:
        load_checkpoint(tmp_path / "ck")
    assert "\n" not in str(err.value)


def test_weights_that_do_not_match_the_config_are_refused(tmp_path, hand_home):
    cfg = small_model()
    save_checkpoint(tmp_path / "ck", build_model(cfg), cfg)
    other = small_model(cross="none")
    data = json.loads((tmp_path / "ck" / "config.json").read_text())
    data["model"] = other.to_dict()
    (tmp_path / "ck" / "config.json").write_text(json.dumps(data))
    with pytest.raises(HandNasError, match="weights do not match the config: .*unexpected"):
        load_checkpoint(tmp_path / "ck")


def test_device_specs():
    import torch

    from hand_nas.device import resolve_device
    from hand_nas.errors import HandNasError

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(HandNasError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(HandNasError, match="no CUDA device"):
            resolve_device("cuda:0")


def test_bf16_autocast_trains_on_the_cpu_and_is_recorded(synth_dir, tmp_path):
    """--precision bf16 on a CPU: the network runs under autocast, the loss, weights and evaluation in fp32."""
    r = train(small_model(), TrainCfg(resolution=64, steps=2, batch=4, eval_every=0), synth_dir,
              checkpoint_dir=tmp_path / "ck", precision="bf16")
    assert r.steps == 2 and np.isfinite(r.metrics.mpjpe_mm)
    assert json.loads((tmp_path / "ck" / "config.json").read_text())["precision"] == "bf16"


@pytest.mark.parametrize("precision,match", [("fp16", "needs a CUDA device"), ("int4", "expected one of fp32, bf16, fp16")])
def test_a_precision_the_device_cannot_run_is_a_one_line_error(synth_dir, precision, match):
    with pytest.raises(HandNasError, match=match):
        train(small_model(), TrainCfg(resolution=64, steps=1, batch=4), synth_dir, device="cpu", precision=precision)


def test_evaluate_command_takes_a_device(synth_dir, tmp_path, capsys):
    from hand_nas.cli import main

    train(small_model(), TrainCfg(resolution=64, steps=1, batch=4, eval_every=0), synth_dir,
          checkpoint_dir=tmp_path / "ck")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "ck"), "--device", "cpu"]) in (0, None)
    assert "MPJPE" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(tmp_path / "ck"), "--device", "tpu"]) == 2
    assert "--device 'tpu': expected auto, cpu" in capsys.readouterr().err


def test_the_config_names_the_loss_terms_that_train():
    from hand_nas.config import TrainCfg
    from hand_nas.losses import LOSS_SETS, LossWeights
    from hand_nas.models.validate import train_problems

    assert LOSS_SETS["intaghand"] == LossWeights() and LOSS_SETS["3d"].heatmap == 0 and LOSS_SETS["joints"].verts == 0
    assert TrainCfg.from_dict(TrainCfg(losses="3d").to_dict()).losses == "3d"
    assert train_problems(TrainCfg(losses="2d")) == ["losses: '2d', expected one of intaghand, 3d, joints"]


def test_weight_averaging_evaluates_and_saves_the_average(synth_dir, tmp_path):
    from hand_nas.models.validate import train_problems

    cfg = small_model(encoder="mobile_former", bridge="light_cross", cross="separable")
    tcfg = TrainCfg(resolution=64, steps=4, batch=4, eval_every=0, warmup=1, lr=5e-3)
    raw = train(cfg, tcfg, synth_dir, checkpoint_dir=tmp_path / "raw")
    avg = train(cfg, TrainCfg(**{**tcfg.to_dict(), "ema": 0.5}), synth_dir, checkpoint_dir=tmp_path / "avg")
    a, b = load_checkpoint(tmp_path / "raw")[0], load_checkpoint(tmp_path / "avg")[0]
    # same run (seed, data order), so the same raw weights; the average lags them and is what was scored
    assert any(not torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert avg.metrics.mpjpe_mm != raw.metrics.mpjpe_mm
    assert evaluate(b, held_out_loader(synth_dir, tcfg)).mpjpe_mm == pytest.approx(avg.metrics.mpjpe_mm, rel=1e-5)
    assert train_problems(TrainCfg(ema=1.0)) == ["ema: 1.0, expected a finite number in [0.0, 1.0)"]
