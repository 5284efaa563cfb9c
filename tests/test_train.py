from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hand_nas.checkpoint import load_checkpoint, save_checkpoint
from hand_nas.config import TrainCfg
from hand_nas.errors import HandNasError
from hand_nas.models import build_model
from hand_nas.train import lr_at, train

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
    data = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert data["train"]["steps"] == 6 and data["metrics"]["mpjpe_mm"] == pytest.approx(r.metrics.mpjpe_mm)


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
        ref = model(x).verts
    code = (f"import torch; from hand_nas.checkpoint import load_checkpoint; m, _ = load_checkpoint({str(tmp_path / 'ck')!r}); "
            f"x = torch.load({str(tmp_path / 'x.pt')!r}); torch.save(m(x).verts.detach(), {str(tmp_path / 'y.pt')!r})")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert torch.equal(torch.load(tmp_path / "y.pt"), ref)


def test_weights_that_do_not_match_the_config_are_refused(tmp_path, hand_home):
    cfg = small_model()
    save_checkpoint(tmp_path / "ck", build_model(cfg), cfg)
    other = small_model(cross="none")
    data = json.loads((tmp_path / "ck" / "config.json").read_text())
    data["model"] = other.to_dict()
    (tmp_path / "ck" / "config.json").write_text(json.dumps(data))
    with pytest.raises(HandNasError, match="weights do not match the config: .*unexpected"):
        load_checkpoint(tmp_path / "ck")
