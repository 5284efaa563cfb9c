"""One contract for every (backend, sampler) pair: records, budget, failures, resume, kill -9, shared studies.

Every registered pair in ``hand_nas.search.strategy.SAMPLERS`` runs through the same cases, so a new
strategy gets them for free (house style rule 7).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from hand_nas.config import ModelCfg, StudyCfg
from hand_nas.errors import HandNasError
from hand_nas.cost.gate import cost_of
from hand_nas.search.runner import run_search
from hand_nas.search.space import load_space
from hand_nas.search.storage import read_records, study_attrs
from hand_nas.search.strategy import SAMPLERS

SPACE = """
name: contract
base: lwa_hand
budget: {gmacs: 0.47}
objectives: [mpjpe]
proxy: {resolution: 64, steps: STEPS, batch: 4, eval_every: 1, warmup: 1, augment: false}
data: {synthetic_n: 24}
params:
  encoder.tokens: {choices: [2, 4, 6]}
  bridge.levels: {choices: [1, 2]}
  graph.cross_hand: {choices: [separable, elementwise, none]}
  encoder.stages.*.width: {scale: [0.75, 1.0, 1.5], round: 8}
"""
PAIRS = [(b, s) for b, samplers in SAMPLERS.items() for s in samplers]
BACKENDS = sorted(SAMPLERS)


def _space(tmp_path, steps: int = 2):
    path = tmp_path / f"contract{steps}.yaml"
    path.write_text(SPACE.replace("STEPS", str(steps)))
    return path


@pytest.fixture()
def space_file(tmp_path, hand_home):
    return _space(tmp_path)


def _cfg(tmp_path, space_file, **kw) -> StudyCfg:
    base = dict(space=str(space_file), study="s", storage=f"sqlite:///{tmp_path}/st.db", trials=3, workers=1,
                executor="local", out=str(tmp_path / "runs"), backend="optuna", sampler="random", pruner="none")
    base.update(kw)
    return StudyCfg(**base)


@pytest.mark.parametrize("backend,sampler", PAIRS)
@pytest.mark.slow
def test_trials_are_recorded_and_rebuild_from_storage(tmp_path, space_file, backend, sampler):
    cfg = _cfg(tmp_path, space_file, backend=backend, sampler=sampler, trials=3, budget_gmacs=10.0)
    summary = run_search(cfg, progress=False)
    records = read_records("s", cfg.storage)
    assert summary.finished == 3 and len(records) == 3
    assert sorted(r.number for r in records) == [0, 1, 2]
    trained = [r for r in records if r.state == "complete"]
    assert trained, "every trial failed: the contract cannot pass on failures alone"
    for r in records:
        assert r.backend == backend and r.state in ("complete", "infeasible", "pruned", "failed"), r
        assert r.node and r.proxy["steps"] == 2 and r.seed is not None
        cfg_stored = ModelCfg.from_dict(r.config)
        assert abs(sum(cost_of(cfg_stored)) - r.gmacs) < 1e-5
    for r in trained:
        assert r.feasible and r.mpjpe_mm > 0 and os.path.isabs(r.checkpoint) and os.path.isdir(r.checkpoint)
        assert r.checkpoint.endswith(f"trial_{r.number:04d}")
    assert study_attrs("s", cfg.storage)["backend"] == backend


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
def test_over_budget_configurations_are_rejected_untrained_with_their_cost(tmp_path, space_file, backend):
    cfg = _cfg(tmp_path, space_file, backend=backend, budget_gmacs=0.36, trials=6)
    run_search(cfg, progress=False)
    records = read_records("s", cfg.storage)
    rejected = [r for r in records if r.state == "infeasible"]
    assert rejected, "the budget should reject some configurations"
    for r in rejected:
        assert r.gmacs > 0.36 and r.feasible is False and "over budget" in r.error and not r.checkpoint


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
def test_resume_keeps_trials_and_refuses_another_sampler(tmp_path, space_file, backend):
    sampler = SAMPLERS[backend][0]
    run_search(_cfg(tmp_path, space_file, backend=backend, sampler=sampler, trials=2), progress=False)
    first = read_records("s", f"sqlite:///{tmp_path}/st.db")
    run_search(_cfg(tmp_path, space_file, backend=backend, sampler=sampler, trials=4), progress=False)
    records = read_records("s", f"sqlite:///{tmp_path}/st.db")
    assert len(records) == 4 and records[:2] == first  # read back from one storage: exact equality is sound
    with pytest.raises(HandNasError, match=f"created with sampler '{sampler}'"):
        run_search(_cfg(tmp_path, space_file, backend=backend, sampler="random", trials=5), progress=False)


def _search_cmd(space, storage, out, backend, trials, study="s", heartbeat=1):
    return [sys.executable, "-m", "hand_nas.cli", "search", "--space", str(space), "--study", study,
            "--storage", storage, "--trials", str(trials), "--local", "--quiet", "--backend", backend,
            "--sampler", "random", "--pruner", "none", "--out", str(out), "--heartbeat-s", str(heartbeat)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
def test_a_search_killed_with_sigkill_resumes(tmp_path, hand_home, backend):
    """A real driver process killed with SIGKILL mid-trial; the next run marks that trial failed (its
    heartbeat stopped) and completes the requested count."""
    space = _space(tmp_path, steps=40)  # slow enough to be caught while training
    storage = f"sqlite:///{tmp_path}/st.db"
    proc = subprocess.Popen(_search_cmd(space, storage, tmp_path / "runs", backend, trials=3),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                states = [r.state for r in read_records("s", storage)]
            except HandNasError:
                states = []
            if "running" in states:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("no trial started running")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = next(r.number for r in read_records("s", storage) if r.state == "running")
    time.sleep(3.5)  # three missed 1 s heartbeats
    cfg = StudyCfg(space=str(_space(tmp_path)), study="s", storage=storage, trials=killed + 3, executor="local",
                   backend=backend, sampler="random", pruner="none", out=str(tmp_path / "runs"), heartbeat_s=1)
    summary = run_search(cfg, progress=False)
    records = {r.number: r for r in read_records("s", storage)}
    assert summary.recovered == 1 and records[killed].state == "failed"
    assert "interrupted" in records[killed].error
    assert len(records) == killed + 3 and "running" not in {r.state for r in records.values()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path, space_file, monkeypatch, backend):
    import hand_nas.train as train_mod

    real = train_mod.train
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise FloatingPointError("loss is nan at step 1")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train", flaky)
    cfg = _cfg(tmp_path, space_file, backend=backend, trials=3, budget_gmacs=10.0)
    run_search(cfg, progress=False)
    records = read_records("s", cfg.storage)
    failed = [r for r in records if r.state == "failed"]
    assert len(failed) == 1 and "nan" in failed[0].error and len(records) == 3
    assert any(r.state == "complete" for r in records)


@pytest.mark.parametrize("kind", ["sqlite", "journal", "postgresql"])
@pytest.mark.slow
def test_two_drivers_share_one_study(tmp_path, hand_home, kind, request):
    """Two driver processes started at once on one study: 2N trials, unique numbers, none failed.
    PostgreSQL is a real server (``postgres_url``), not a mock."""
    storage = {"sqlite": f"sqlite:///{tmp_path}/shared.db", "journal": f"journal:///{tmp_path}/shared.log"}.get(kind)
    storage = storage or request.getfixturevalue("postgres_url")
    space, n = _space(tmp_path), 2
    procs = [subprocess.Popen(_search_cmd(space, storage, tmp_path / "runs", "optuna", trials=2 * n, heartbeat=2),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
             for _ in range(2)]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    records = read_records("s", storage)
    assert len(records) == 2 * n and sorted(r.number for r in records) == list(range(2 * n))
    assert all(r.state in ("complete", "infeasible") for r in records), [(r.state, r.error) for r in records]
    assert len({r.checkpoint for r in records if r.checkpoint}) == sum(1 for r in records if r.checkpoint)


def test_an_unsupported_backend_sampler_pair_is_an_error(tmp_path, space_file):
    with pytest.raises(HandNasError, match="backend 'nni' has no sampler 'tpe'"):
        run_search(_cfg(tmp_path, space_file, backend="nni", sampler="tpe"), progress=False)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_runner_runs_trials_in_parallel(tmp_path, space_file):
    cfg = _cfg(tmp_path, space_file, trials=2, workers=2, executor="ray", budget_gmacs=10.0)
    summary = run_search(cfg, progress=False)
    records = read_records("s", cfg.storage)
    assert summary.finished == 2 and all(r.state in ("complete", "pruned") for r in records)
    assert all("/" in r.node for r in records)  # host/ray-node-id


def test_the_space_loads_and_the_study_name_is_confined(tmp_path, space_file):
    assert load_space(space_file).name == "contract"
    with pytest.raises(HandNasError, match="--study"):
        run_search(_cfg(tmp_path, space_file, study="../../x"), progress=False)


def test_a_trial_another_driver_ended_does_not_crash_this_one(tmp_path, space_file):
    """Two drivers: A's heartbeat stalls, B fails A's trial as stale, A then finishes it: a warning, no crash."""
    from hand_nas.search.records import TrialRecord
    from hand_nas.search.storage import HEARTBEAT, StudyStore

    space = load_space(space_file)
    url = f"sqlite:///{tmp_path}/st.db"
    a = StudyStore("s", url, space, heartbeat_s=1)
    trial = a.ask({p.label: p.values[0] for p in space.all_params()})
    a._live.clear()  # A's heartbeat stops (a stalled driver) ... and its last beat is 10 s old
    a.storage.set_trial_system_attr(a._trial_id(trial.number), HEARTBEAT, [time.time() - 10, 1.0, "a"])
    b = StudyStore("s", url, space, heartbeat_s=1)
    assert b.fail_stale() == 1  # ... so B takes the trial for dead
    a._live[trial.number] = trial
    with pytest.warns(RuntimeWarning, match="already ended by another driver"):
        a.finish(TrialRecord(trial.number, "complete", metrics={"mpjpe_mm": 50.0}), values=[50.0])
    rec = read_records("s", url)[0]
    assert rec.state == "failed" and "interrupted" in rec.error
    a.close(), b.close()


@pytest.mark.parametrize("kind", ["folder", "uri"])
def test_storage_path_holds_the_data_and_the_checkpoints(tmp_path, space_file, kind):
    """--storage-path: the data set is published under it once, checkpoints land under it and are stored as
    its locations (a file:// URI stands in for s3://: same pyarrow code path); compress --study finds them."""
    from hand_nas.app.bundles import trial_checkpoint

    root = tmp_path / "shared"
    spec = str(root) if kind == "folder" else f"file://{root}"
    cfg = _cfg(tmp_path, space_file, trials=2, budget_gmacs=10.0, storage_path=spec)
    run_search(cfg, progress=False)
    run_search(replace(cfg, trials=3), progress=False)  # a second driver reuses the published set
    records = read_records("s", cfg.storage)
    assert len(records) == 3 and not (tmp_path / "runs").exists()
    assert len({r.data for r in records}) == 1 and records[0].data.startswith(f"{spec}/data/")
    assert len(list((root / "data").iterdir())) == 1
    for r in (r for r in records if r.state == "complete"):
        folder = root / "s" / f"trial_{r.number:04d}"
        assert r.checkpoint == f"{spec}/s/trial_{r.number:04d}" and (folder / "model.safetensors").is_file()
    local, prov = trial_checkpoint("s", "best", cfg.storage)
    assert os.path.isfile(os.path.join(local, "config.json")) and (kind == "uri") != local.startswith(str(root))


@pytest.mark.slow
def test_a_resumed_study_does_not_replay_its_first_proposals(tmp_path, space_file):
    """optuna stores no sampler state: a seeded sampler reopened on a study continues from its size."""
    cfg = _cfg(tmp_path, space_file, trials=2, budget_gmacs=10.0)
    run_search(cfg, progress=False)
    run_search(_cfg(tmp_path, space_file, trials=4, budget_gmacs=10.0), progress=False)
    params = [tuple(sorted(r.params.items())) for r in read_records("s", cfg.storage)]
    assert len(params) == 4 and params[2:] != params[:2], params
