"""One contract for every storage kind: SQLite, journal file and PostgreSQL pass the same assertions.

Studies, trials, records, study-level records, heartbeats and claims (house style rule 7, as optuna's
``StorageTestCase``). PostgreSQL is a real server (``postgres_url``): skipped where no server binaries
exist, failed instead when HAND_NAS_REQUIRE_POSTGRES is set.
"""
from __future__ import annotations

import pickle
import re
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from hand_nas.errors import HandNasError
from hand_nas.search.optuna_strategy import make_sampler
from hand_nas.search.pruning import COST_ATTR
from hand_nas.search.records import PENALTY_MM, Cost, TrialRecord
from hand_nas.search.space import load_space
from hand_nas.search.storage import (HEARTBEAT, LatencyMeta, ProxyCheck, Reference, RetrainRecord, StudyMeta,
                                     StudyStore, read_meta, read_proxy_check, read_records, read_references,
                                     read_retrains, record_retrain, study_attrs, trial_count,
                                     trial_retrains, write_proxy_check, write_reference)

KINDS = ["sqlite", "journal", "postgresql"]


@pytest.fixture(params=KINDS)
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/st.db"
    if request.param == "journal":
        return f"journal:///{tmp_path}/st.log"
    return request.getfixturevalue("postgres_url")


@pytest.fixture()
def name(request):
    """A study name of its own per test: the PostgreSQL database is shared by the whole session."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)


@pytest.fixture(scope="module")
def tiny():
    return load_space("tiny")


@pytest.fixture()
def store(url, name, tiny):
    s = StudyStore(name, url, tiny, sampler=make_sampler("random", 0, False), heartbeat_s=60)
    yield s
    s.close()


def _cost(gmacs: float) -> Cost:
    return Cost(gmacs, gmacs / 2, gmacs / 2, 0.47)


def test_a_study_is_created_once_and_its_objectives_are_checked(store, url, name, tiny):
    again = StudyStore(name, url, tiny, heartbeat_s=60)  # a second driver joins the same study
    try:
        assert again.storage.get_study_id_from_name(name) == store.storage.get_study_id_from_name(name)
        assert trial_count(name, url) == 0 and read_records(name, url) == []
    finally:
        again.close()
    with pytest.raises(HandNasError, match="has 1 objective"):
        StudyStore(name, url, load_space("lwa"))  # mpjpe + gmacs
    with pytest.raises(HandNasError, match=f"no study named 'nope'.*{name}"):
        read_records("nope", url)


def test_trials_are_created_ended_and_read_back_as_records(store, url, name, tiny):
    given = tiny.random_params(np.random.default_rng(0))
    t0 = store.ask(given)  # a strategy's own parameters (NNI)
    assert store.params_of(t0) == given
    t1 = store.ask()  # the study's sampler chooses (optuna)
    sampled = store.params_of(t1)
    assert list(sampled) == [p.label for p in tiny.all_params()]
    for p in tiny.all_params():
        v = sampled[p.label]
        assert v in p.values if p.kind in ("choices", "scale") else p.low <= v <= p.high, (p.label, v)
    t2, t3 = store.ask(given), store.ask(given)
    assert [t.number for t in (t0, t1, t2, t3)] == [0, 1, 2, 3]
    assert {r.state for r in read_records(name, url)} == {"running"}

    history = [{"step": 6, "mpjpe_mm": 52.0}, {"step": 12, "mpjpe_mm": 48.5}]
    done = [TrialRecord(0, "complete", backend="nni", params=given, cost=_cost(0.3), seed=0, history=history,
                        metrics={"mpjpe_mm": 48.5, "mpvpe_mm": 47.0}, checkpoint="/x/trial_0000", node="h"),
            TrialRecord(1, "infeasible", backend="optuna", params=sampled, cost=_cost(0.6), error="over budget"),
            TrialRecord(2, "pruned", backend="nni", params=given, cost=_cost(0.3), history=history[:1]),
            TrialRecord(3, "failed", backend="nni", params=given, error="loss is nan")]
    store.finish(done[0], [48.5])
    store.finish(done[1], [PENALTY_MM])
    store.finish(done[2])
    store.finish(done[3])

    records = read_records(name, url)
    assert [(r.number, r.state) for r in records] == [(0, "complete"), (1, "infeasible"), (2, "pruned"), (3, "failed")]
    assert [r.params for r in records] == [given, sampled, given, given]
    assert records[0].values == (48.5,) and records[1].values == (PENALTY_MM,)
    assert records[0].mpjpe_mm == 48.5 and records[0].history == history and records[0].checkpoint == "/x/trial_0000"
    assert records[1].feasible is False and records[1].error == "over budget" and records[3].error == "loss is nan"
    assert records == store.records() and trial_count(name, url) == 4 and store.finished_count() == 4
    trials = store.study.get_trials(deepcopy=False)
    assert trials[1].system_attrs["constraints"] == [pytest.approx(0.6 - 0.47)]  # optuna-dashboard's key
    assert trials[0].intermediate_values == {6: 52.0, 12: 48.5}
    with pytest.raises(HandNasError, match="trial 0 is not running in this driver"):
        store.finish(done[0], [48.5])


def test_a_workers_reporter_writes_through_its_own_connection(url, name, tiny):
    store = StudyStore(name, url, tiny, pruner="median", heartbeat_s=60)
    try:
        number = store.ask(tiny.random_params(np.random.default_rng(1))).number
        report = pickle.loads(pickle.dumps(store.reporter(number, [0.3, None])))  # as it travels to a worker
        assert report(6, 50.0) is False  # no peers yet: the median pruner keeps it
        trial = store.study.get_trials(deepcopy=False)[number]
        assert trial.intermediate_values == {6: 50.0} and trial.user_attrs[COST_ATTR] == [0.3, None]
    finally:
        store.close()


def test_study_meta_is_claimed_once_and_a_resume_must_match_it(store, url, name):
    meta = StudyMeta(backend="optuna", sampler="tpe", space="tiny.yaml", objectives=("mpjpe",), budget_gmacs=0.47,
                     pruner={"name": "noise", "noise": {"final": 1.5}}, evaluator={"name": "train"})
    assert read_meta(name, url) == StudyMeta()  # nothing claimed yet: the defaults
    store.claim(meta)
    assert read_meta(name, url) == meta
    latency = LatencyMeta("predicted", "/p.json", {"model": "Xeon", "flags": ["avx2"]}, 12.5)
    store.claim(StudyMeta(backend="optuna", sampler="tpe", space="other.yaml", latency=latency))
    assert read_meta(name, url) == replace(meta, latency=latency)  # the first claim's space stays
    with pytest.raises(HandNasError, match="created with sampler 'tpe'; pass --sampler tpe"):
        store.claim(StudyMeta(backend="optuna", sampler="random"))
    assert study_attrs(name, url)["backend"] == "optuna"


def test_retrain_records_one_per_trial_recipe_and_seed(store, url, name):
    def rec(trial, recipe, seed, at, checkpoint="/ck"):
        return RetrainRecord(name, trial, recipe, seed, checkpoint, {"mpjpe_mm": 20.0 + at}, 6, finished_at=at)

    assert read_retrains(name, url, 0) == []
    for r in (rec(0, "smoke", 0, 1.0), rec(0, "demo", 0, 2.0), rec(1, "smoke", 0, 3.0)):
        record_retrain(name, url, r)
    assert [r.recipe for r in read_retrains(name, url, 0)] == ["demo", "smoke"]  # the most recent first
    record_retrain(name, url, rec(0, "smoke", 0, 4.0, "/newer"))  # the same (trial, recipe, seed): replaced
    assert read_retrains(name, url, 0) == [rec(0, "smoke", 0, 4.0, "/newer"), rec(0, "demo", 0, 2.0)]
    assert trial_retrains(name, url, 1) == [rec(1, "smoke", 0, 3.0).to_dict()]


def test_the_proxy_check_is_one_typed_record(store, url, name):
    result = {"summary": {"kendall_tau": 0.4, "seed_noise_mm": 1.2}, "warning": None, "proxy": {"steps": 12},
              "long": {"steps": 120}, "complete": True, "rules": [{"rule": "step 6"}], "architectures": [{"a": 1}]}
    assert read_proxy_check(name, url) is None
    write_proxy_check(name, url, ProxyCheck.from_result(result))
    check = read_proxy_check(name, url)
    assert check.summary["kendall_tau"] == 0.4 and check.rules == [{"rule": "step 6"}] and check.complete
    write_proxy_check(name, url, ProxyCheck.from_result(dict(result, complete=False)))  # a later check replaces it
    assert read_proxy_check(name, url) == ProxyCheck.from_result(dict(result, complete=False))


def test_references_written_at_once_by_two_drivers_are_all_kept(store, url, name):
    """Each reference is its own study attribute: two writers never read-modify-write one list."""
    store.study.set_user_attr("references", [  # a study from before per-key references
        {"name": "old", "gmacs": 0.1, "mpjpe_mm": 60.0, "mpvpe_mm": 59.0, "proxy_key": "k1"},
        {"name": "p0", "gmacs": 0.1, "mpjpe_mm": 99.0, "mpvpe_mm": 99.0, "proxy_key": "k1"}])
    barrier, errors = threading.Barrier(2), []

    def driver(d: int) -> None:
        try:
            barrier.wait()
            for i in range(4):
                write_reference(name, url, Reference(f"p{d * 4 + i}", 0.2, 50.0 + i, None, "k1"))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=driver, args=(d,)) for d in range(2)]
    [t.start() for t in threads]
    [t.join(timeout=120) for t in threads]
    assert not errors, errors
    write_reference(name, url, Reference("p0", 0.2, 1.0, 1.0, "k2"))  # another proxy: its own key
    refs = read_references(name, url, "k1")
    assert [r.name for r in refs] == ["old"] + [f"p{i}" for i in range(8)]
    assert refs[1].mpjpe_mm == 50.0  # the per-key record wins over the older list's
    assert read_references(name, url, "k2") == [Reference("p0", 0.2, 1.0, 1.0, "k2")]
    assert read_references(name, url, None) == []


def test_heartbeats_fail_only_a_dead_drivers_trials(url, name, tiny):
    a = StudyStore(name, url, tiny, heartbeat_s=1)
    b = None
    try:
        live, dead = a.ask().number, a.ask().number
        first = a.study.get_trials(deepcopy=False)[live].system_attrs[HEARTBEAT]
        assert first[1] == 1.0
        a._heart.stop(dead)  # its driver is gone: no more beats, the last one 10 s old
        a.storage.set_trial_system_attr(a._trial_id(dead), HEARTBEAT, [time.time() - 10, 1.0, "gone"])
        time.sleep(1.5)
        beat = a.study.get_trials(deepcopy=False)[live].system_attrs[HEARTBEAT]
        assert beat[0] > first[0]  # the thread beats for the live one
        b = StudyStore(name, url, tiny, heartbeat_s=30)
        assert b.fail_stale() == 1 and b.fail_stale() == 0
        states = {r.number: (r.state, r.error) for r in read_records(name, url)}
        assert states[live] == ("running", None)
        assert states[dead][0] == "failed" and "interrupted: no heartbeat" in states[dead][1]
        a.finish(TrialRecord(live, "complete", metrics={"mpjpe_mm": 40.0}), [40.0])
        assert [r.state for r in read_records(name, url)] == ["complete", "failed"]
    finally:
        a.close()
        if b is not None:
            b.close()
