"""Retraining a stored trial under a named recipe: resume after a kill, refusals, compress taking the retrain."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from hand_nas.config import TrainCfg
from hand_nas.errors import HandNasError
from hand_nas.train import snapshot_model, train

from model_configs import small_model

SPACE = """
name: rt
base: lwa_hand
budget: {gmacs: 0.5}
objectives: [mpjpe]
proxy: {resolution: 64, steps: 2, batch: 4, eval_every: 0, warmup: 1, augment: false}
data: {synthetic_n: 24}
params:
  encoder.tokens: {choices: [2, 4]}
"""


def _model():
    cfg = small_model()
    return dataclasses.replace(cfg, graph=dataclasses.replace(cfg.graph, dropout=0.1))  # a random stream to restore


class Killed(Exception):
    """Stands for kill -9: the run stops between two steps, without any cleanup of its own."""


def _kill_at(monkeypatch, call: int) -> None:
    import hand_nas.train as train_mod

    real, calls = train_mod.two_hand_loss, [0]

    def loss(*a, **kw):
        calls[0] += 1
        if calls[0] == call:
            raise Killed
        return real(*a, **kw)

    monkeypatch.setattr(train_mod, "two_hand_loss", loss)


@pytest.mark.parametrize("ema", [0.0, 0.8])  # with weight averaging the average resumes too
@pytest.mark.slow
def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(synth_dir, tmp_path, monkeypatch, ema):
    cfg = _model()
    tcfg = TrainCfg(resolution=64, steps=8, batch=4, warmup=1, eval_every=4, augment=True, seed=5, ema=ema)
    full = train(cfg, tcfg, synth_dir, checkpoint_dir=tmp_path / "full")
    snaps = tmp_path / "snaps"
    with monkeypatch.context() as m:
        _kill_at(m, 8)  # during step 8: snapshots were written after steps 3 and 6 (5 batches an epoch: mid-epoch)
        with pytest.raises(Killed):
            train(cfg, tcfg, synth_dir, checkpoint_dir=tmp_path / "resumed", resume_dir=snaps, save_every=3)
    assert [p.name for p in snaps.iterdir()] == ["step_00000006"] and not (tmp_path / "resumed").exists()
    snap, saved = snaps / "step_00000006", load_file(str(snaps / "step_00000006" / "tensors.safetensors"))
    net, state = snapshot_model(snap)  # the weights the run evaluates: the average when it keeps one
    assert state["step"] == 6 and state["key"]["model"] == cfg.to_dict()
    scored = "ema.module." if ema else "model."
    assert all(torch.equal(v, saved[scored + k]) for k, v in net.state_dict().items())
    with pytest.raises(HandNasError, match="another run .*train"):
        train(cfg, dataclasses.replace(tcfg, lr=2e-3), synth_dir, resume_dir=snaps)
    lines = []
    resumed = train(cfg, tcfg, synth_dir, checkpoint_dir=tmp_path / "resumed", resume_dir=snaps, save_every=3,
                    log=lines.append)
    assert lines and lines[0].startswith("resuming at step 6 of 8")
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit on a CPU
    assert resumed.history == full.history and resumed.steps == 8
    assert not list(snaps.glob("step_*"))  # finished: a later call starts afresh


class _EpochSet(torch.utils.data.Dataset):
    epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> int:
        return self.epoch


def test_loader_workers_see_every_epoch():
    from hand_nas.train import make_loader

    ds = _EpochSet()
    dl = make_loader(ds, 2, True, 0, workers=1)
    seen = []
    for epoch in range(2):
        ds.set_epoch(epoch)  # what train() does; the full recipe reads with 8 workers
        seen += [int(v) for b in dl for v in b]
    assert seen == [0] * 4 + [1] * 4


def test_full_is_intaghands_schedule_counted_in_epochs():
    from hand_nas.retrain import RECIPES, get_recipe
    from hand_nas.train import lr_at

    cfg = RECIPES["full"].train_cfg(n_train=6400, seed=25)  # 100 steps an epoch at batch 64
    assert (cfg.steps, cfg.warmup, cfg.decay_step, cfg.batch, cfg.resolution, cfg.seed) == (20000, 300, 15000, 64, 256, 25)
    assert lr_at(299, cfg) == pytest.approx(1e-4) and lr_at(14999, cfg) == pytest.approx(1e-4)
    assert lr_at(15000, cfg) == pytest.approx(1e-5) and lr_at(19999, cfg) == pytest.approx(1e-5)
    assert RECIPES["standard"].train_cfg(10 ** 6) == RECIPES["standard"].train  # counted in steps: the data is moot
    with pytest.raises(HandNasError, match="unknown recipe"):
        get_recipe("long")


@pytest.fixture(scope="module")
def study(tmp_path_factory, synth_dir, hand_home):
    """A stored study: trial 0 trained (config + proxy checkpoint), trial 1 failed before its config was built."""
    from hand_nas.search.records import Cost, TrialRecord
    from hand_nas.search.space import load_space
    from hand_nas.search.storage import StudyStore

    root = tmp_path_factory.mktemp("rt")
    (root / "rt.yaml").write_text(SPACE)
    storage = f"sqlite:///{root}/st.db"
    cfg = small_model()
    proxy = TrainCfg(resolution=64, steps=2, batch=4, eval_every=0, warmup=1)
    r = train(cfg, proxy, synth_dir, checkpoint_dir=root / "trial_0000")
    store = StudyStore("rt", storage, load_space(str(root / "rt.yaml")))
    try:
        t = store.ask()
        store.finish(TrialRecord(t.number, "complete", config=cfg.to_dict(), cost=Cost(0.1, 0.05, 0.05, 0.5),
                                 metrics=r.metrics.to_dict(), proxy=proxy.to_dict(), seed=0, data=str(synth_dir),
                                 checkpoint=str(root / "trial_0000")), values=[r.metrics.mpjpe_mm])
        t = store.ask()
        store.finish(TrialRecord(t.number, "failed", error="no config"))
    finally:
        store.close()
    return root, storage


def _retrain(storage, out, *extra):
    from hand_nas.cli import main

    return main(["retrain", "--study", "rt", "--storage", storage, "--trial", "0", "--recipe", "smoke", "--out",
                 str(out), "--device", "cpu", "--quiet", *extra])


@pytest.mark.parametrize("args, message", [
    (["--recipe", "nope"], "--recipe 'nope': unknown recipe (known: smoke, demo, standard, full)"),
    (["--trial", "1"], "trial 1: no model config stored"),
    (["--trial", "7"], "no trial 7"),
    (["--precision", "fp16"], "--precision fp16: needs a CUDA device"),
])
def test_bad_input_is_one_line_and_writes_nothing(study, tmp_path, capsys, args, message):
    from hand_nas.cli import main

    root, storage = study
    out = tmp_path / "out"
    base = {"--study": "rt", "--storage": storage, "--trial": "0", "--recipe": "smoke", "--out": str(out),
            "--device": "cpu"}
    base.update(dict(zip(args[::2], args[1::2])))
    assert main(["retrain", *[x for kv in base.items() for x in kv], "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_out_folder_is_refused_untouched(study, tmp_path, capsys):
    root, storage = study
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _retrain(storage, out) == 2
    assert "was not written by hand-nas" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["thesis"] and (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_retrain_resumes_after_a_kill_and_compress_takes_it(study, tmp_path, capsys, monkeypatch):
    from hand_nas.app.bundles import trial_checkpoint
    from hand_nas.cli import main
    from hand_nas.search.storage import trial_retrains

    root, storage = study
    checkpoint, prov = trial_checkpoint("rt", "0", storage)
    assert checkpoint == str(root / "trial_0000") and prov["retrain"] is None  # nothing retrained yet

    out = tmp_path / "retrained"
    with monkeypatch.context() as m:
        _kill_at(m, 6)  # during step 6 of 6: the last snapshot is step 4
        with pytest.raises(Killed):
            _retrain(storage, out)
    assert not out.exists() and (tmp_path / ".retrained.partial" / "snapshots" / "step_00000004").is_dir()
    capsys.readouterr()
    assert _retrain(storage, out) == 0
    printed = capsys.readouterr().out
    assert "resuming at step 4 of 6" in printed and "baseline (mean shape)" in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["retrained"]  # the partial run is gone
    config = json.loads((out / "config.json").read_text())
    assert config["retrain"] == {"study": "rt", "storage": storage, "trial": 0, "recipe": "smoke", "seed": 0}
    assert config["steps"] == 6 and config["train"]["resolution"] == 64

    assert _retrain(storage, tmp_path / "again") == 0  # uninterrupted, same recipe and seed: the same weights
    a, b = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "again" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _retrain(storage, out) == 2 and "already exists (pass --overwrite" in capsys.readouterr().err

    (rec,) = trial_retrains("rt", storage, 0)  # one record per (trial, recipe, seed): the newest run
    assert rec["checkpoint"] == str((tmp_path / "again").resolve()) and rec["steps"] == 6
    checkpoint, prov = trial_checkpoint("rt", "best", storage)
    assert checkpoint == rec["checkpoint"] and prov["retrain"]["recipe"] == "smoke"
    assert main(["trial", "show", "rt", "0", "--storage", storage]) == 0
    assert "retrained under recipe 'smoke' (seed 0, 6 steps)" in capsys.readouterr().out

    import compress.pipeline

    def stop(*a, **kw):
        raise HandNasError("stopped before compressing")

    monkeypatch.setattr(compress.pipeline, "compress", stop)
    assert main(["compress", "--study", "rt", "--storage", storage, "--out", str(tmp_path / "bundle")]) == 2
    printed = capsys.readouterr().out
    assert "compressing trial 0 of study 'rt': the retrain under recipe 'smoke'" in printed and rec["checkpoint"] in printed
