"""One contract for both executors: the same small search on the tiny space, in this process and on Ray,
gives the same trials, states, costs and (to float noise) held-out MPJPE (house style rule 7)."""
from __future__ import annotations

import importlib.util

import pytest
import yaml

from hand_nas.config import StudyCfg
from hand_nas.search.runner import run_search
from hand_nas.search.storage import read_records

EXECUTORS = ["local", "ray"]


@pytest.fixture(scope="module")
def space_file(tmp_path_factory, hand_home):
    """search_spaces/tiny.yaml with a two-step proxy on 24 samples (seconds per trial)."""
    from hand_nas.search.space import load_space

    spec = yaml.safe_load(open(load_space("tiny").source))
    spec["name"] = "tiny_quick"
    spec["proxy"].update(steps=2, eval_every=1, warmup=1, batch=4)
    spec["data"]["synthetic_n"] = 24
    path = tmp_path_factory.mktemp("tiny") / "tiny_quick.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _search(tmp_path, space_file, executor: str):
    cfg = StudyCfg(space=str(space_file), study="s", storage=f"sqlite:///{tmp_path}/{executor}.db", trials=3,
                   workers=2, executor=executor, out=str(tmp_path / executor), backend="optuna", sampler="random",
                   pruner="none", seed=7, budget_gmacs=0.40)
    summary = run_search(cfg, progress=False)
    return summary, read_records("s", cfg.storage)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, space_file):
    """The outcome every executor must reproduce: the search run in this process."""
    return _search(tmp_path_factory.mktemp("reference"), space_file, "local")[1]


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.ray
@pytest.mark.slow
def test_the_same_search_has_the_same_outcome_on_every_executor(tmp_path, space_file, reference, executor):
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed")
    summary, records = _search(tmp_path, space_file, executor)
    assert summary.finished == summary.ran == 3 and summary.recovered == 0
    assert [r.number for r in records] == [0, 1, 2]
    assert {r.state for r in records} <= {"complete", "infeasible"} and "complete" in {r.state for r in records}
    assert [(r.params, r.state, r.gmacs, r.error) for r in records] == \
        [(r.params, r.state, r.gmacs, r.error) for r in reference]
    for r, ref in zip(records, reference):
        assert r.backend == "optuna" and r.proxy == ref.proxy and r.node
        if r.state == "complete":
            assert r.mpjpe_mm == pytest.approx(ref.mpjpe_mm, rel=1e-3) and r.checkpoint.endswith(f"trial_{r.number:04d}")
