"""Latency known before training: the predictor's fit and checks, and a search that gates on it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hand_nas.config import StudyCfg
from hand_nas.cost.bench import cpu_info
from hand_nas.cost.predictor import (FEATURES, LatencyPredictor, code_digest, deploy_version, features, fit,
                                     sample_configs)
from hand_nas.errors import HandNasError
from hand_nas.search.space import load_space

SPACE = """
name: latency
base: lwa_hand
budget: {gmacs: 0.47, latency_ms: LIMIT}
objectives: [mpjpe, latency]
proxy: {resolution: 64, steps: 1, batch: 4, eval_every: 1, warmup: 1, augment: false}
data: {synthetic_n: 24}
params:
  encoder.tokens: {choices: [2, 6]}
  bridge.levels: {choices: [1, 2, 3]}
  encoder.stages.*.width: {scale: [0.75, 1.0, 1.25], round: 8}
"""


def _predictor(weights) -> LatencyPredictor:
    return LatencyPredictor(tuple(float(w) for w in weights), cpu_info(), deploy_version(), "test", 1, 1.0)


def test_the_fit_recovers_a_linear_latency_and_predicts_from_the_config_alone():
    space = load_space("lwa")
    cfgs = sample_configs(space, 12, seed=3)
    assert cfgs[0].name == "lwa_hand" and len(cfgs) == 12
    truth = np.zeros(len(FEATURES))
    truth[[0, 1, 2, 3]] = [2.0, 40.0, 25.0, 0.3]  # ms: dispatch, image and pose MACs, graph blocks
    measured = [float(features(c) @ truth) for c in cfgs]
    pred = fit(cfgs, measured, cpu_info(), "lwa")
    assert pred.fit_share_within_10 == 1.0
    assert all(abs(pred.predict_ms(c) - m) / m < 0.01 for c, m in zip(cfgs, measured))


def test_a_calibration_of_another_cpu_or_graph_is_refused(tmp_path):
    path = _predictor(np.ones(len(FEATURES))).save(tmp_path / "p.json")
    assert LatencyPredictor.load(path).weights == tuple(np.ones(len(FEATURES)))
    other = dataclasses.replace(_predictor(np.ones(len(FEATURES))), cpu={"model": "Other CPU", "flags": ["avx2"]})
    with pytest.raises(HandNasError, match="cpu: measured on Other CPU"):
        LatencyPredictor.load(other.save(tmp_path / "o.json"))
    old = dataclasses.replace(_predictor(np.ones(len(FEATURES))), deploy_version="000000000000")
    with pytest.raises(HandNasError, match="deploy_version"):
        LatencyPredictor.load(old.save(tmp_path / "v.json"))
    with pytest.raises(HandNasError, match="no latency calibration"):
        LatencyPredictor.load(tmp_path / "missing.json")


def test_the_deploy_version_follows_code_not_prose():
    code = 'def f(x):\n    """Doubles."""\n    return 2 * x  # twice\n'
    assert code_digest(code) == code_digest('"""A module."""\n\n\ndef f(x):\n    """Twice x."""\n    return 2 * x\n')
    assert code_digest(code) != code_digest(code.replace("2 * x", "3 * x"))
    assert code_digest('def g():\n    """Only a docstring."""\n') == code_digest("def g():\n    pass\n")


def test_latency_budget_is_parsed_and_checked(tmp_path):
    (tmp_path / "ok.yaml").write_text(SPACE.replace("LIMIT", "12.5"))
    space = load_space(tmp_path / "ok.yaml")
    assert space.budget_latency_ms == 12.5 and space.uses_latency
    assert not load_space("tiny").uses_latency
    (tmp_path / "bad.yaml").write_text(SPACE.replace("LIMIT", "-1"))
    with pytest.raises(HandNasError, match="budget.latency_ms: expected a finite number of milliseconds"):
        load_space(tmp_path / "bad.yaml")


def test_a_search_gates_on_predicted_latency_before_training(tmp_path, hand_home):
    from hand_nas.search.runner import run_search
    from hand_nas.search.storage import read_records

    # latency = 100 ms per image GMAC: the widths decide which candidates fit under 21 ms
    weights = np.zeros(len(FEATURES))
    for name in ("gmacs_stem", "gmacs_pointwise", "gmacs_depthwise", "gmacs_tokens", "gmacs_encoder_other",
                 "gmacs_image_rest"):  # together: the image part's GMACs
        weights[FEATURES.index(name)] = 100.0
    path = _predictor(weights).save(tmp_path / "p.json")
    (tmp_path / "s.yaml").write_text(SPACE.replace("LIMIT", "21"))
    cfg = StudyCfg(space=str(tmp_path / "s.yaml"), study="lat", storage=f"sqlite:///{tmp_path}/st.db", trials=6,
                   workers=1, executor="local", out=str(tmp_path / "runs"), backend="optuna", sampler="random",
                   pruner="none", latency_predictor=str(path))
    run_search(cfg, progress=False)
    records = read_records("lat", cfg.storage)
    assert len(records) == 6
    for r in records:
        assert r.latency_ms == pytest.approx(100.0 * r.cost.gmacs_image, abs=1e-3)
        if r.latency_ms > 21:
            assert r.state == "infeasible" and "over latency budget" in r.error
        else:
            assert r.state == "complete"
    assert {r.state for r in records} == {"complete", "infeasible"}, [r.latency_ms for r in records]


def test_a_space_reads_latency_on_its_runtime(tmp_path, hand_home):
    """latency_runtime is checked when the space is read, and a predictor of another runtime is refused before
    any trial; the fit's runtime survives save/load and names its source."""
    from hand_nas.search.runner import run_search

    (tmp_path / "bad.yaml").write_text("latency_runtime: tflite\n" + SPACE.replace("LIMIT", "20"))
    with pytest.raises(HandNasError, match="latency_runtime: expected one of onnxruntime, executorch, executorch-int8"):
        load_space(tmp_path / "bad.yaml")
    (tmp_path / "et.yaml").write_text("latency_runtime: executorch-int8\n" + SPACE.replace("LIMIT", "20"))
    assert load_space(tmp_path / "et.yaml").latency_runtime == "executorch-int8"
    ort = _predictor(np.ones(len(FEATURES))).save(tmp_path / "p.json")
    cfg = StudyCfg(space=str(tmp_path / "et.yaml"), study="et", storage=f"sqlite:///{tmp_path}/st.db", trials=1,
                   workers=1, executor="local", out=str(tmp_path / "runs"), pruner="none", latency_predictor=str(ort))
    with pytest.raises(HandNasError, match="runtime: onnxruntime, but .* reads latency on executorch-int8"):
        run_search(cfg, progress=False)
    et = dataclasses.replace(_predictor(np.ones(len(FEATURES))), runtime="executorch-int8")
    loaded = LatencyPredictor.load(et.save(tmp_path / "et.json"), check_machine=False)
    assert loaded.runtime == "executorch-int8" and "ExecuTorch XNNPACK int8" in loaded.source


@pytest.mark.slow
def test_executorch_programs_are_lowered_once_and_timed(tmp_path):
    """The program cache: lowered once (a second call lowers nothing), keyed by runtime, timed with one thread."""
    pytest.importorskip("executorch")
    from hand_nas.cost.predictor import lower_programs, measure_ms
    from hand_nas.supernet.sandwich import extremes

    space = load_space("tiny")
    cfg = space.build(extremes(space)[1])  # the smallest: one level, one block (~15 s to lower)
    said = []
    [path] = lower_programs([cfg], "executorch", tmp_path, log=said.append)
    assert path.is_file() and path.parent.name.startswith("executorch-") and "1/1" in said[-1] and "ETA 0 min" in said[-1]
    said.clear()
    [ms] = measure_ms([cfg], rounds=2, per_round=2, warmup=1, runtime="executorch", folder=tmp_path, log=said.append)
    assert said == [] and 0 < ms < 1000


def test_a_program_another_process_is_lowering_is_skipped(tmp_path):
    """Two lowering processes share the cache: a program whose lock is held is left to its holder, and the call
    that skipped it says the cache is not complete yet instead of timing a missing program."""
    pytest.importorskip("executorch")
    from filelock import FileLock

    from hand_nas.cost.predictor import lower_programs, program_path

    cfg = load_space("tiny").base_cfg()
    path = program_path(cfg, "executorch", tmp_path)
    path.parent.mkdir(parents=True)
    with FileLock(path.with_suffix(".lock")):
        with pytest.raises(HandNasError, match="1 of 1 programs are still being lowered by another process"):
            lower_programs([cfg], "executorch", tmp_path, log=lambda *_: None)
    assert not path.exists()


def test_a_program_is_keyed_by_the_architecture_not_its_name(tmp_path):
    """lwa_mobile's samples are lwa's under other names: the same programs, lowered once."""
    from hand_nas.cost.predictor import program_path, sample_configs

    a, b = sample_configs(load_space("lwa"), 3, 1), sample_configs(load_space("lwa_mobile"), 3, 1)
    assert [c.name for c in a] != [c.name for c in b]
    assert [program_path(c, "executorch-int8", tmp_path) for c in a] == \
        [program_path(c, "executorch-int8", tmp_path) for c in b]


def test_validation_measures_how_far_the_machine_moved_since_calibration():
    """An architecture timed at calibration and again at validation (matched by its features) gives the drift."""
    from hand_nas.cost.predictor import speed_drift

    cal = [{"features": [1.0, 2.0], "measured_ms": 8.0}, {"features": [1.0, 3.0], "measured_ms": 4.0}]
    now = [{"features": [1.0, 2.0], "measured_ms": 9.0}, {"features": [5.0, 5.0], "measured_ms": 1.0}]
    assert speed_drift(cal, now) == pytest.approx(9.0 / 8.0)
    assert speed_drift(cal, [{"features": [0.0, 0.0], "measured_ms": 1.0}]) is None
