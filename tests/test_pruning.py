"""The multi-fidelity pruner stops a trial only on evidence larger than the proxy's measured noise."""
import json

import optuna
import pytest

from hand_nas.config import StudyCfg
from hand_nas.errors import HandNasError
from hand_nas.search.pruning import COST_ATTR, NoiseAwarePruner, NoiseProfile, load_noise, make_pruner, noise_from_check

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(peers, directions=("minimize",)):
    """A study holding finished trials with one intermediate value at step 100 each: [(value, gmacs)]."""
    study = optuna.create_study(directions=list(directions))
    for value, gmacs in peers:
        t = _reported(study, value, gmacs)
        study.tell(t, [value, gmacs] if len(directions) > 1 else value)
    return study


def _reported(study, value, gmacs):
    """A running trial with its step-100 MPJPE written as the search's Reporter writes it (also multi-objective)."""
    t = study.ask()
    study._storage.set_trial_intermediate_value(t._trial_id, 100, value)
    study._storage.set_trial_user_attr(t._trial_id, COST_ATTR, [gmacs, None])
    return t


def _judge(pruner, study, value, gmacs=0.3):
    t = _reported(study, value, gmacs)
    return pruner.prune(study, study._storage.get_trial(t._trial_id))


def test_single_objective_stops_only_beyond_the_noise_margin():
    peers = [(40.0, 0.3), (41.0, 0.3), (42.0, 0.3), (43.0, 0.3)]
    pruner = NoiseAwarePruner(1.5, factor=2.0, eta=3.0, min_steps=1)
    # reference: the best third of the peers = 41.0 mm; margin 2 x 1.5 = 3 mm
    assert not _judge(pruner, _study(peers), 43.9)
    assert _judge(pruner, _study(peers), 44.2)


def test_no_verdict_before_min_steps_or_enough_peers():
    assert not _judge(NoiseAwarePruner(0.1, min_steps=200), _study([(40.0, 0.3)] * 4), 90.0)
    assert not _judge(NoiseAwarePruner(0.1, min_peers=3), _study([(40.0, 0.3)] * 2), 90.0)


def test_multi_objective_stops_only_when_dominated_beyond_noise():
    peers = [(40.0, 0.40), (45.0, 0.20), (46.0, 0.10)]
    study = lambda: _study(peers, directions=("minimize", "minimize"))  # noqa: E731
    pruner = NoiseAwarePruner(1.0, factor=2.0, multi_objective=True)
    # a cheap trial is not stopped for being worse than costlier ones
    assert not _judge(pruner, study(), 60.0, gmacs=0.05)
    # at 0.25 GMACs the 0.20 trial (45 mm) costs less: stopped only beyond 45 + 2 x 1 mm
    assert not _judge(pruner, study(), 46.9, gmacs=0.25)
    assert _judge(pruner, study(), 47.5, gmacs=0.25)


def test_noise_profile_from_a_proxy_check_uses_the_per_step_histories():
    result = {"summary": {"seed_noise_mm": 2.0}, "architectures": [
        {"proxy_history": [[[0, 50], [100, 45], [200, 40]], [[0, 50], [100, 49], [200, 41]]]},
        {"proxy_history": [[[0, 50], [100, 44], [200, 39]], [[0, 50], [100, 46], [200, 42]]]},
        {"proxy_history": [None, None]}]}
    noise = noise_from_check(result, "x.json")
    assert noise.by_step == {100: 3.0, 200: 2.0} and noise.final == 2.0
    assert noise.at(100) == 3.0 and noise.at(180) == 2.0 and noise.at(10_000) == 2.0
    assert NoiseProfile.from_dict(noise.to_dict()) == noise
    pruner = make_pruner({"name": "noise", "noise": noise.to_dict(), "factor": 1.0})
    assert isinstance(pruner, NoiseAwarePruner) and pruner.margin(100) == 3.0


def test_trials_are_judged_only_from_the_step_where_the_proxy_ranks(tmp_path):
    """lwa.yaml's check: Kendall tau vs the long runs -0.22 / -0.17 / 0.39 / 0.39 / 0.44 at steps 60..300,
    so the search stops nothing before step 180 (a gap beyond noise at step 60 says nothing of the end)."""
    from hand_nas.search.pruning import first_ranking_step
    from hand_nas.search.runner import pruner_spec
    from hand_nas.search.space import load_space

    rule = lambda step, tau: {"rule": f"step {step}", "kendall_tau": tau}  # noqa: E731
    assert first_ranking_step([rule(60, -0.22), rule(120, -0.17), rule(180, 0.39), rule(240, 0.39),
                               rule(300, 0.44), {"rule": "mean of steps 240, 300", "kendall_tau": 0.44}]) == 180
    assert first_ranking_step([rule(60, 0.5), rule(120, None), rule(180, 0.2)]) == 180
    assert first_ranking_step([rule(60, 0.5), rule(120, -0.1)]) == 120  # nothing ranks: only the end is compared
    assert first_ranking_step([]) == 0
    space = load_space("lwa")
    said = []
    spec = pruner_spec(StudyCfg(space="lwa", out=str(tmp_path), noise="experiments/results/proxy_check_lwa.json"),
                       space, log=said.append)
    assert spec["min_steps"] == 180 and spec["noise"]["first_step"] == 180 and "from step 180" in said[0]
    assert NoiseProfile.from_dict(spec["noise"]).first_step == 180


def test_load_noise_refuses_a_check_of_another_proxy_or_a_bad_file(tmp_path):
    path = tmp_path / "check.json"
    path.write_text(json.dumps({"summary": {"seed_noise_mm": 1.0}, "proxy": {"steps": 300}, "architectures": []}))
    assert load_noise(path, {"steps": 300}).final == 1.0
    with pytest.raises(HandNasError, match="steps=300"):
        load_noise(path, {"steps": 100})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(HandNasError, match="bad.json: not a proxy check result"):
        load_noise(tmp_path / "bad.json")
    with pytest.raises(HandNasError, match="no such proxy check"):
        load_noise(tmp_path / "missing.json")


def test_search_without_measured_noise_stops_nothing_and_says_so(tmp_path):
    from hand_nas.search.runner import pruner_spec
    from hand_nas.search.space import load_space

    space = load_space("tiny")
    said = []
    cfg = StudyCfg(space="tiny", out=str(tmp_path))
    assert pruner_spec(cfg, space, log=said.append) == "none"
    assert "no measured proxy noise" in said[0]
    spec = pruner_spec(StudyCfg(space="tiny", out=str(tmp_path), noise="1.5"), space)
    assert spec["name"] == "noise" and spec["noise"]["final"] == 1.5
    assert spec["min_steps"] == space.proxy.eval_every
    with pytest.raises(HandNasError, match="--noise -1"):
        pruner_spec(StudyCfg(space="tiny", out=str(tmp_path), noise="-1"), space)


def test_a_stores_reporter_travels_and_judges_multi_objective_trials(tmp_path):
    import pickle

    from hand_nas.search.space import load_space
    from hand_nas.search.storage import StudyStore

    space = load_space("tiny")
    spec = {"name": "noise", "noise": NoiseProfile(1.0, {}, "t").to_dict(), "factor": 2.0, "min_steps": 1,
            "min_peers": 1, "multi_objective": True}
    store = StudyStore("s", f"sqlite:///{tmp_path}/s.db", space, pruner=spec, heartbeat_s=60)
    try:
        rng = __import__("numpy").random.default_rng(0)
        numbers = [store.ask(space.random_params(rng)).number for _ in range(2)]
        cheap = pickle.loads(pickle.dumps(store.reporter(numbers[0], [0.1, None])))
        costly = pickle.loads(pickle.dumps(store.reporter(numbers[1], [0.2, None])))
        assert cheap(10, 40.0) is False          # no peer at step 10 yet
        assert costly(10, 41.0) is False         # behind by 1 mm: within 2 x 1 mm of noise
        assert costly(20, 45.0) is False and cheap(20, 40.0) is False
        cheap(40, 39.0)
        assert costly(40, 43.5) is True          # dominated: cheaper and better by 4.5 mm > 2 mm
        trial = store.study.get_trials(deepcopy=False)[numbers[1]]
        assert trial.user_attrs[COST_ATTR] == [0.2, None] and trial.intermediate_values[40] == 43.5
    finally:
        store.close()


def test_tpe_samples_a_multi_objective_study_that_holds_pruned_trials(tmp_path):
    """optuna's TPE ranks pruned trials through ``study.direction``, which a multi-objective study refuses
    (optuna#5260); the store shows its sampler MPJPE's direction, so search goes on (lwa.yaml: mpjpe, gmacs)."""
    from hand_nas.search.records import TrialRecord
    from hand_nas.search.space import load_space
    from hand_nas.search.storage import StudyStore

    space = load_space("lwa")
    assert space.multi_objective
    tpe = optuna.samplers.TPESampler(n_startup_trials=2, seed=0)
    store = StudyStore("mo", f"sqlite:///{tmp_path}/mo.db", space, sampler=tpe, heartbeat_s=60)
    try:
        rng = __import__("numpy").random.default_rng(0)
        for i, state in enumerate(("complete", "pruned", "complete", "pruned")):
            t = store.ask(space.random_params(rng))
            history = [{"step": 60, "mpjpe_mm": 46.0 + i}, {"step": 120, "mpjpe_mm": 45.0 + i}][:1 + (state == "complete")]
            store.finish(TrialRecord(number=t.number, state=state, history=history),
                         values=[45.0 + i, 0.3] if state == "complete" else None)
        states = [t.state for t in store.study.get_trials(deepcopy=False)]
        assert states.count(optuna.trial.TrialState.PRUNED) == 2
        from hand_nas.search.optuna_strategy import suggest

        sampled = store.ask()  # TPE past its startup trials: ranks the pruned ones at every suggestion
        params = {label: suggest(sampled, label, dist) for label, dist in store.distributions.items()}
        assert set(params) == set(store.distributions)
    finally:
        store.close()
