"""The weight-sharing supernet: active path = extracted model, cost, training resume, search on it."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from hand_nas.errors import HandNasError
from hand_nas.search.space import load_space


def _sampled(space, n: int, seed: int):
    rng, out = np.random.default_rng(seed), []
    while len(out) < n:
        try:
            out.append(space.build(space.random_params(rng)))
        except HandNasError:
            continue
    return out


@pytest.fixture(scope="module")
def tiny_supernet():
    from hand_nas.supernet import Supernet

    torch.manual_seed(0)
    net = Supernet(load_space("tiny"), cover_samples=32)
    with torch.no_grad():  # trained-looking weights: every slice differs from a fresh init
        for p in net.shared:
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    return net


@pytest.mark.parametrize("name,size,cover", [("tiny", 64, 32), ("lwa", 128, 32)])
@pytest.mark.slow
def test_active_path_equals_extracted_and_cost(name, size, cover):
    """For 20 sampled configurations: supernet(cfg) == extract(cfg) == build_model(cfg) + slices, and the
    extracted model's fvcore GMACs are the analytic count the search gates with."""
    from hand_nas.cost.flops import model_cost
    from hand_nas.cost.gate import cost_of
    from hand_nas.supernet import Supernet

    space = load_space(name)
    torch.manual_seed(1)
    net = Supernet(space, cover_samples=cover).eval()
    x = torch.rand(2, 3, size, size)
    for i, cfg in enumerate(_sampled(space, 20, seed=11)):
        model = net.extract(cfg)
        assert type(model).__name__ == "TwoHandNet" and model.cfg == cfg
        with torch.no_grad():
            a, b = net(x, cfg), model(x)
        for field in ("verts", "joints", "rel_root", "heatmaps", "masks"):
            ta, tb = getattr(a, field), getattr(b, field)
            assert (ta is None) == (tb is None)
            if ta is not None:
                assert torch.allclose(ta, tb, atol=1e-5, rtol=0), (i, field, float((ta - tb).abs().max()))
        if i % 4 == 0:  # fvcore on every fourth (seconds each); the analytic count is exact for all
            r = model_cost(model)
            image, pose = cost_of(cfg)
            assert abs(r.gmacs_image - image) < 1e-6 and abs(r.gmacs_pose - pose) < 1e-6, (i, r, image, pose)


@pytest.mark.slow
def test_train_mode_updates_the_shared_batchnorm_statistics(tiny_supernet):
    """In training the active path's BatchNorm statistics are views of the shared buffers, updated in place."""
    cfg = _sampled(tiny_supernet.space, 1, seed=4)[0]
    key = next(k for k in tiny_supernet.keys if k.startswith("image.encoder.stem.1.running_mean"))
    before = tiny_supernet.shared[tiny_supernet.index[key]].detach().clone()
    tiny_supernet.train()
    try:
        tiny_supernet(torch.rand(2, 3, 64, 64), cfg)
    finally:
        tiny_supernet.eval()
    assert not torch.equal(before, tiny_supernet.shared[tiny_supernet.index[key]])


def test_slices_share_and_choices_do_not(tiny_supernet):
    """Two widths of one layer share its leading weights; different cross-hand ops keep their own."""
    space = tiny_supernet.space
    cfgs = _sampled(space, 40, seed=3)
    wide = max(cfgs, key=lambda c: c.encoder.stages[-1].width)
    narrow = min(cfgs, key=lambda c: c.encoder.stages[-1].width)
    assert wide.encoder.stages[-1].width > narrow.encoder.stages[-1].width
    a, b = tiny_supernet.extract(wide).state_dict(), tiny_supernet.extract(narrow).state_dict()
    name = "image.encoder.stem.0.weight"
    assert torch.equal(a[name], b[name])
    last = [k for k in b if k.startswith("image.encoder.blocks.") and k.endswith("mobile.block.2.0.weight")][-1]
    w_narrow = b[last]
    assert torch.equal(a[last][:w_narrow.shape[0], :w_narrow.shape[1]], w_narrow)
    sep = [c for c in cfgs if c.graph.cross_hand == "separable"]
    assert sep  # the separable op's norm is its own tensor, not the elementwise one's (which has none)
    keys = {k for k in tiny_supernet.keys if k.startswith("pose.cross.0.norm_l")}
    assert keys and all("@SeparableCrossHand" in k for k in keys)


def test_multi_base_space_refused():
    from hand_nas.supernet import Supernet

    with pytest.raises(HandNasError, match="several base presets"):
        Supernet(load_space("joint"), cover_samples=0)


def test_the_teacher_is_the_base_design_at_its_widest():
    """The largest subnet (the in-place distillation teacher) keeps the base preset's op choices, every numeric
    field at its maximum; the smallest takes the fewest-GMACs choices at the minimum."""
    from hand_nas.supernet.sandwich import extremes

    space = load_space("lwa")
    largest, smallest = extremes(space)
    base = space.base_cfg()
    assert (largest["bridge.attention"], largest["graph.cross_hand"], largest["graph.direct"]) == \
        (base.bridge.attention, base.graph.cross_hand, base.graph.direct)
    assert largest["encoder.tokens"] == 6 and largest["bridge.levels"] == 3 and largest["bridge.blocks"] == 4
    assert smallest["bridge.attention"] == "none" and smallest["encoder.tokens"] == 1


def test_a_largest_only_recipe_trains_the_teacher_alone():
    """lwa-largest (the diagnosis of experiments/supernet_largest_alone.py) steps the largest subnet alone;
    every other recipe steps the sandwich."""
    from hand_nas.supernet.sandwich import SubnetSampler
    from hand_nas.supernet.training import get_recipe

    space = load_space("tiny")
    rec = get_recipe("lwa-largest")
    alone = SubnetSampler(space, rec.n_random, largest_only=not rec.sandwich)
    assert [c.to_dict() for c in alone.step()] == [alone.largest.to_dict()]
    sandwich = SubnetSampler(space, get_recipe("lwa").n_random)
    assert len(sandwich.step()) == 4 and sandwich.step()[1].to_dict() == sandwich.smallest.to_dict()


def test_a_supernet_of_another_sharing_rule_is_refused(tmp_path):
    import shutil

    from hand_nas.supernet import load_supernet
    from hand_nas.supernet.shipping import shipped_supernet

    folder = tmp_path / "old"
    shutil.copytree(shipped_supernet("lwa"), folder)
    (folder / "manifest.json").unlink()
    record = json.loads((folder / "supernet.json").read_text())
    (folder / "supernet.json").write_text(json.dumps({**record, "format": 1}))
    with pytest.raises(HandNasError, match=r"format 1, expected a supernet layout of format 2"):
        load_supernet(folder)


def test_outside_the_space_is_one_line(tiny_supernet):
    from dataclasses import replace

    cfg = _sampled(tiny_supernet.space, 1, seed=0)[0]
    wide = replace(cfg, graph=replace(cfg.graph, dims=tuple(d * 4 for d in cfg.graph.dims)))
    with pytest.raises(HandNasError, match="does not fit the supernet"):
        tiny_supernet.extract(wide)


def test_recalibration_changes_only_statistics(tiny_supernet, synth_dir):
    from hand_nas.config import TrainCfg
    from hand_nas.supernet import SubnetScorer

    cfg = _sampled(tiny_supernet.space, 1, seed=5)[0]
    scorer = SubnetScorer.on(synth_dir, TrainCfg(resolution=64, batch=4), calib_batches=2, images=4)
    model, metrics, seconds = scorer.score(tiny_supernet, cfg)
    raw = tiny_supernet.extract(cfg).state_dict()
    after = model.state_dict()
    stats = [k for k in after if k.endswith(("running_mean", "running_var"))]
    assert stats and any(not torch.equal(after[k], raw[k]) for k in stats)
    assert all(torch.equal(after[k], raw[k]) for k in after if k not in stats and not k.endswith("num_batches_tracked"))
    assert np.isfinite(metrics.mpjpe_mm) and 0 < metrics.count <= 4 and seconds > 0
    # the statistics of a whole-network calibration pass: the same (in the channels-last layout the scorer runs in;
    # the default layout sums in another order, ~3e-5 relative on a variance)
    full = tiny_supernet.extract(cfg).to(memory_format=torch.channels_last)
    for bn in (m for m in full.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        for batch in scorer.calib:
            full(batch["image"])
    assert all(torch.allclose(full.state_dict()[k], after[k], atol=1e-6) for k in stats)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke recipe on tiny.yaml, killed by an error after its step-4 snapshot, then run again."""
    from hand_nas.supernet import train_supernet
    from hand_nas.supernet import training

    out = tmp_path_factory.mktemp("supernet") / "sn"
    real = training.SandwichStep.forward
    calls = {"n": 0}

    def dying(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("killed")
        return real(self, *a, **k)

    training.SandwichStep.forward = dying
    try:
        with pytest.raises(RuntimeError, match="killed"):
            train_supernet("tiny", "smoke", out, progress=False, log=lambda t: None)
    finally:
        training.SandwichStep.forward = real
    assert not out.exists()
    said = []
    run = train_supernet("tiny", "smoke", out, progress=False, log=said.append)
    return out, said, run


@pytest.mark.slow
def test_train_resumes_after_a_crash_and_ships(tmp_path, smoke_run):
    """The run resumes at its step-4 snapshot; the result loads, exports to fp16 with a manifest, and a
    changed byte of the shipped copy is refused."""
    from hand_nas.supernet import load_supernet
    from hand_nas.supernet.shipping import export_supernet

    out, said, run = smoke_run
    assert said == [f"resuming at step 4 of 6 from {out.parent / '.sn.partial' / 'snapshots' / 'step_00000004'}"]
    assert run.steps == 6 and [h["step"] for h in run.history] == [0, 3, 6]
    assert run.compute["core_hours"] > 0
    net, record = load_supernet(out)
    assert record["steps"] == 6 and record["images_seen"]["largest"] == 24 and len(record["sha256"]) == 64
    ship = tmp_path / "ship"
    sha, size = export_supernet(out, ship)
    shipped, rec2 = load_supernet(ship)
    cfg = _sampled(net.space, 1, seed=2)[0]
    a, b = net.extract(cfg).state_dict(), shipped.extract(cfg).state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=2e-3, rtol=1e-2) for k in a)
    blob = bytearray((ship / "supernet.safetensors").read_bytes())
    blob[-1] ^= 1
    (ship / "supernet.safetensors").write_bytes(bytes(blob))
    with pytest.raises(HandNasError, match="differs from manifest.json"):
        load_supernet(ship)


@pytest.mark.slow
def test_warm_start_continues_a_trained_supernet(tmp_path, smoke_run):
    """--init starts from the parent's tensors (step 0 scores as the parent's end), records the parent's sha256,
    and adds its compute and images to the totals; a supernet of another space is refused in one line."""
    from hand_nas.supernet import load_supernet, train_supernet

    parent, _, parent_run = smoke_run
    _, prec = load_supernet(parent)
    out = tmp_path / "more"
    run = train_supernet("tiny", "smoke", out, progress=False, log=lambda t: None, steps=3, seed=5, init=parent)
    assert run.history[0]["largest"]["mpjpe_mm"] == pytest.approx(parent_run.history[-1]["largest"]["mpjpe_mm"],
                                                                 abs=1e-3)
    _, record = load_supernet(out)
    assert record["init"]["sha256"] == prec["sha256"] and record["init"]["steps"] == 6
    assert record["images_seen_total"]["largest"] == 24 + 12
    assert record["compute_total"]["core_hours"] == pytest.approx(
        prec["compute"]["core_hours"] + record["compute"]["core_hours"], abs=2e-4)
    with pytest.raises(HandNasError, match="trained on another space"):
        train_supernet("lwa", "smoke", tmp_path / "other", progress=False, log=lambda t: None, init=parent)
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("backend", ["optuna", "nni"])
@pytest.mark.slow
def test_search_on_the_supernet(tmp_path, smoke_run, backend):
    """A local search (optuna's TPE, NNI's evolution) scored by the supernet: every trial complete, recorded
    with the supernet's sha256; compress --study's checkpoint is the extracted network, written on demand."""
    from hand_nas.app.bundles import trial_checkpoint
    from hand_nas.checkpoint import load_checkpoint
    from hand_nas.config import StudyCfg
    from hand_nas.search.runner import run_search
    from hand_nas.search.storage import read_records

    storage = f"sqlite:///{tmp_path / 's.db'}"
    cfg = StudyCfg(space="tiny", study="sn", storage=storage, trials=4, executor="local", out=str(tmp_path / "runs"),
                   evaluator="supernet", supernet=str(smoke_run[0]), eval_images=4, pruner="none", backend=backend)
    run_search(cfg, progress=False)
    recs = [r for r in read_records("sn", storage) if r.state == "complete"]
    assert recs and all(r.evaluator["name"] == "supernet" and len(r.evaluator["sha256"]) == 64 for r in recs)
    assert all(r.checkpoint is None for r in recs)  # nothing written per trial: config + sha256 fix the weights
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.safetensors"))
    path, prov = trial_checkpoint("sn", "best", storage)  # extracted on demand, as compress --study does
    assert prov["evaluator"]["name"] == "supernet"
    model, data = load_checkpoint(path)
    best = min(recs, key=lambda r: r.mpjpe_mm)
    assert data["evaluator"]["sha256"] == best.evaluator["sha256"] and data["metrics"]["mpjpe_mm"] == best.mpjpe_mm


@pytest.mark.slow
def test_a_repeated_architecture_is_told_its_first_score(tmp_path, smoke_run, monkeypatch):
    """The supernet scores an architecture the same every time: when the sampler proposes one again (TPE does,
    once it converges), the trial is told the first trial's score without scoring it, says which trial that was,
    and a front's table can list the architecture once."""
    from hand_nas.config import StudyCfg
    from hand_nas.search.optuna_strategy import OptunaStrategy
    from hand_nas.search.records import first_of_each_architecture
    from hand_nas.search.runner import run_search
    from hand_nas.search.storage import read_records
    from hand_nas.search.strategy import Proposal

    storage = f"sqlite:///{tmp_path / 's.db'}"
    cfg = StudyCfg(space="tiny", study="rep", storage=storage, trials=2, executor="local", out=str(tmp_path / "runs"),
                   evaluator="supernet", supernet=str(smoke_run[0]), eval_images=4, pruner="none")
    run_search(cfg, progress=False)
    first = min((r for r in read_records("rep", storage) if r.trained), key=lambda r: r.number)
    monkeypatch.setattr(OptunaStrategy, "ask", lambda self: Proposal(params=dict(first.params)))
    run_search(replace(cfg, trials=4), progress=False)  # resumed: the scores come from the stored records
    recs = read_records("rep", storage)
    again = [r for r in recs if r.number >= 2]
    assert [r.state for r in again] == ["complete", "complete"]
    assert all(r.evaluator["same_as"] == first.number and r.seconds == 0.0 and r.node is None for r in again)
    assert all(r.metrics == first.metrics and r.evaluator["sha256"] == first.evaluator["sha256"] for r in again)
    assert "same_as" not in first.evaluator
    kept = [r.number for r in first_of_each_architecture(recs)]
    assert first.number in kept and not {2, 3} & set(kept)
    # within one run: the first proposal is scored, the repeats that follow are told its score
    run_search(replace(cfg, study="rep2", trials=3), progress=False)
    recs = read_records("rep2", storage)
    assert recs[0].seconds > 0 and "same_as" not in recs[0].evaluator
    assert [r.evaluator["same_as"] for r in recs[1:]] == [0, 0] and all(r.metrics == recs[0].metrics for r in recs)


def test_supernet_proxy_check(tmp_path, smoke_run, synth_dir):
    """References pooled by configuration and seed; ranked; an architecture outside the space is skipped."""
    from hand_nas.config import TrainCfg
    from hand_nas.models.presets import resolve_model
    from hand_nas.report.supernet_check import format_supernet_check, reference_runs, supernet_check
    from hand_nas.supernet import SubnetScorer, load_supernet

    net, _ = load_supernet(smoke_run[0])
    cfgs = _sampled(net.space, 4, seed=9)
    check = {"long": {"seed": 0}, "architectures": [{"label": f"a{i}", "config": c.to_dict(), "long_mm": 42.0 + i}
                                                    for i, c in enumerate(cfgs)]}
    (tmp_path / "check.json").write_text(json.dumps(check))
    for seed in (0, 1):  # a0 again (seed 0 is the check's own run), and an architecture of another family
        (tmp_path / f"a0_{seed}.json").write_text(json.dumps({"label": "a0", "seed": seed, "mpjpe_mm": 42.0,
                                                                "config": cfgs[0].to_dict()}))
    (tmp_path / "lagc.json").write_text(json.dumps({"label": "lagc_hand", "seed": 0, "mpjpe_mm": 41.0,
                                                    "config": resolve_model("lagc_hand").to_dict()}))
    refs = reference_runs(sorted(tmp_path.glob("*.json")))
    assert {r["label"]: r["runs"] for r in refs}["a0"] == {0: 42.0, 1: 42.0}
    scorer = SubnetScorer.on(synth_dir, TrainCfg(resolution=64, batch=4), calib_batches=1, images=4)
    result = supernet_check(net, scorer, refs)
    assert result["summary"]["architectures"] == 4 and [s["label"] for s in result["skipped"]] == ["lagc_hand"]
    assert -1 <= result["summary"]["kendall_tau"] <= 1 and "Kendall tau" in format_supernet_check(result, 0.44)
    with pytest.raises(HandNasError, match="neither a proxy check"):
        reference_runs([tmp_path / "x.json"] if (tmp_path / "x.json").write_text("[]") else [])

    # --scores: the stored scores ranked against a reference with a seed added since, nothing scored again
    from hand_nas.cli import main

    stored = tmp_path / "stored" / "check.json"
    stored.parent.mkdir()
    stored.write_text(json.dumps({**result, "supernet": "sn", "sha256": "abc"}))
    (tmp_path / "a3_1.json").write_text(json.dumps({"label": "a3", "seed": 1, "mpjpe_mm": 30.0,
                                                    "config": cfgs[3].to_dict()}))
    out = tmp_path / "rerank.json"
    refs_now = [str(p) for p in sorted(tmp_path.glob("*.json")) if p.name != "x.json"]
    main(["proxy", "check", "--space", "lwa", "--evaluator", "supernet", "--scores", str(stored), "--reference",
          *refs_now, "--out", str(out), "--quiet"])
    again = json.loads(out.read_text())
    rows = {r["label"]: r for r in again["rows"]}
    assert {k: r["supernet_mm"] for k, r in rows.items()} == {r["label"]: r["supernet_mm"] for r in result["rows"]}
    assert rows["a3"]["standalone_mm"] == pytest.approx((45.0 + 30.0) / 2) and rows["a3"]["seeds"] == [0, 1]
    assert again["sha256"] == "abc" and [s["label"] for s in again["skipped"]] == ["lagc_hand"]
    from hand_nas.report.supernet_check import rerank

    with pytest.raises(HandNasError, match="no 'rows'"):
        rerank([], refs, "x.json")


def test_reference_agreement_reads_the_reference_against_itself():
    """Seed-vs-seed tau over the architectures run with both seeds; a noiseless reference's ceiling is 1, a noisy
    one's lower."""
    from hand_nas.report.supernet_check import reference_agreement

    same = [{"label": f"a{i}", "runs": {0: 40.0 + i, 1: 40.0 + i + 1e-3}} for i in range(5)]
    got = reference_agreement(same, draws=200)
    [pair] = got["seed_pair_tau"]
    assert pair["seeds"] == [0, 1] and pair["architectures"] == 5 and pair["tau"] == pytest.approx(1.0)
    assert got["ceiling_tau"] > 0.99
    swapped = [{"label": f"a{i}", "runs": {0: 40.0 + i, 1: 44.0 - i}} for i in range(5)]
    got = reference_agreement(swapped + [{"label": "one", "runs": {0: 41.0}}], draws=200)
    assert got["seed_pair_tau_mean"] == pytest.approx(-1.0) and got["ceiling_tau"] < 0.5


@pytest.mark.slow
def test_ddp_two_processes(tmp_path):
    """torchrun's two gloo processes train the smoke recipe: rank 0 writes the supernet, the loss curve is the
    ranks' mean, and the data position matches one process's."""
    import os
    import shutil
    import subprocess
    import sys

    hand_nas = shutil.which("hand-nas") or str(Path(sys.executable).parent / "hand-nas")
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "ddp"
    subprocess.run([torchrun, "--standalone", "--nproc-per-node=2", "--no-python", hand_nas, "supernet", "train",
                    "--space", "tiny", "--recipe", "smoke", "--out", str(out), "--device", "cpu", "--quiet"],
                   check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300, capture_output=True)
    record = json.loads((out / "supernet.json").read_text())
    assert record["steps"] == 6 and len(record["losses"]) == 6 and record["compute"]["processes"] == 2
    assert all(np.isfinite(record["losses"]))
