"""One contract for every backend and runner: records, budget, failures, resume, kill recovery."""
from __future__ import annotations

import pytest

from hand_nas.config import ModelCfg, StudyCfg
from hand_nas.errors import HandNasError
from hand_nas.search.gate import cost_of
from hand_nas.search.records import load_rows
from hand_nas.search.runner import run_search
from hand_nas.search.space import load_space

SPACE = """
name: contract
base: lwa_hand
budget: {gmacs: 0.47}
objectives: [mpjpe]
proxy: {resolution: 64, steps: 2, batch: 4, eval_every: 1, warmup: 1, augment: false}
data: {synthetic_n: 24}
params:
  encoder.tokens: {choices: [2, 4, 6]}
  bridge.levels: {choices: [1, 2]}
  graph.cross_hand: {choices: [separable, elementwise, none]}
  encoder.stages.*.width: {scale: [0.75, 1.0, 1.5], round: 8}
"""


@pytest.fixture()
def space_file(tmp_path, hand_home):
    path = tmp_path / "contract.yaml"
    path.write_text(SPACE)
    return path


def _cfg(tmp_path, space_file, **kw) -> StudyCfg:
    base = dict(space=str(space_file), study="s", storage=f"sqlite:///{tmp_path}/st.db", trials=3, workers=1,
                executor="local", out=str(tmp_path / "runs"), sampler="random")
    base.update(kw)
    return StudyCfg(**base)


@pytest.mark.parametrize("backend,sampler", [("optuna", "random"), ("optuna", "tpe"), ("nni", "evolution"),
                                             ("nni", "random")])
def test_backend_contract(tmp_path, space_file, backend, sampler):
    cfg = _cfg(tmp_path, space_file, backend=backend, sampler=sampler, trials=3)
    summary = run_search(cfg, progress=False)
    rows = load_rows("s", cfg.storage)
    assert summary.finished == 3 and len(rows) == 3
    space = load_space(space_file)
    for r in rows:
        assert r["backend"] == backend and r["state"] in ("complete", "infeasible", "pruned", "failed")
        if r["state"] == "complete":
            assert r["gmacs"] <= space.budget_gmacs and r["feasible"] and r["mpjpe_mm"] > 0
            assert (tmp_path / "runs" / "s").exists() and r["checkpoint"]
    # every record rebuilds its model from the storage alone
    import optuna

    study = optuna.load_study(study_name="s", storage=cfg.storage)
    for t in study.trials:
        cfg_stored = ModelCfg.from_dict(t.user_attrs["config"])
        assert abs(sum(cost_of(cfg_stored)) - t.user_attrs["cost"]["gmacs_total"]) < 1e-5
        assert t.user_attrs["proxy"]["steps"] == 2 and "seed" in t.user_attrs


@pytest.mark.parametrize("backend", ["optuna", "nni"])
def test_over_budget_configurations_are_rejected_untrained_with_their_cost(tmp_path, space_file, backend):
    cfg = _cfg(tmp_path, space_file, backend=backend, budget_gmacs=0.36, trials=6,
               sampler="random" if backend == "optuna" else "random")
    run_search(cfg, progress=False)
    rows = load_rows("s", cfg.storage)
    rejected = [r for r in rows if r["state"] == "infeasible"]
    assert rejected, "the budget should reject some configurations"
    for r in rejected:
        assert r["gmacs"] > 0.36 and r["feasible"] is False and "over budget" in r["error"] and not r["checkpoint"]
    import optuna

    study = optuna.load_study(study_name="s", storage=cfg.storage)
    assert all(t.system_attrs["constraints"][0] <= 0 for t in study.best_trials)


def test_resume_keeps_trials_and_sampler(tmp_path, space_file):
    cfg = _cfg(tmp_path, space_file, trials=2, sampler="tpe")
    run_search(cfg, progress=False)
    first = load_rows("s", cfg.storage)
    run_search(_cfg(tmp_path, space_file, trials=4, sampler="tpe"), progress=False)
    rows = load_rows("s", cfg.storage)
    assert len(rows) == 4 and rows[:2] == first  # read back from one storage: exact equality is sound
    with pytest.raises(HandNasError, match="created with sampler 'tpe'"):
        run_search(_cfg(tmp_path, space_file, trials=5, sampler="random"), progress=False)


def test_a_killed_search_resumes_and_marks_the_running_trial_failed(tmp_path, space_file):
    import optuna

    from hand_nas.search.optuna_backend import OptunaBackend

    space = load_space(space_file)
    cfg = _cfg(tmp_path, space_file, trials=2)
    run_search(cfg, progress=False)
    backend = OptunaBackend(space, "s", cfg.storage, "random")
    backend.ask()  # a trial left RUNNING, as a kill -9 would leave it
    summary = run_search(_cfg(tmp_path, space_file, trials=4), progress=False)
    assert summary.recovered == 1
    study = optuna.load_study(study_name="s", storage=cfg.storage)
    states = [t.state.name for t in study.trials]
    assert states.count("FAIL") == 1 and "RUNNING" not in states
    assert "interrupted" in study.trials[2].user_attrs["error"]
    assert len(states) == 4  # the interrupted trial counts as finished (failed)


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path, space_file, monkeypatch):
    import hand_nas.train as train_mod

    real = train_mod.train
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise FloatingPointError("loss is nan at step 1")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train", flaky)
    cfg = _cfg(tmp_path, space_file, trials=3, budget_gmacs=10.0)
    run_search(cfg, progress=False)
    rows = load_rows("s", cfg.storage)
    failed = [r for r in rows if r["state"] == "failed"]
    assert len(failed) == 1 and "nan" in failed[0]["error"] and len(rows) == 3


def test_ray_runner_runs_trials_in_parallel(tmp_path, space_file):
    cfg = _cfg(tmp_path, space_file, trials=2, workers=2, executor="ray", budget_gmacs=10.0)
    summary = run_search(cfg, progress=False)
    rows = load_rows("s", cfg.storage)
    assert summary.finished == 2 and all(r["state"] in ("complete", "pruned") for r in rows)
