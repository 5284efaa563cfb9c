from __future__ import annotations

import numpy as np
import pytest

from hand_nas.errors import HandNasError
from hand_nas.cost.gate import gate
from hand_nas.search.space import load_space

SPACES = ["tiny", "lwa", "lagc", "joint", "lwa_latency", "lwa_mobile"]


@pytest.mark.parametrize("name", SPACES)
def test_shipped_spaces_load_and_sample(name):
    space = load_space(f"search_spaces/{name}.yaml")
    rng = np.random.default_rng(0)
    feasible = 0
    for _ in range(20):
        cfg = space.build(space.random_params(rng))
        feasible += gate(cfg, space.budget_gmacs).feasible
    assert feasible > 0


BAD = {
    "unknown field": ("params:\n  graph.colour: {choices: [1, 2]}", "params.graph.colour: unknown field 'colour'"),
    "empty choices": ("params:\n  encoder.tokens: {choices: []}", "params.encoder.tokens.choices: expected a non-empty list"),
    "wrong type": ("params:\n  encoder.tokens: {choices: [2, four]}", "params.encoder.tokens.choices: 'four' is not a valid int"),
    "bad registry name": ("params:\n  graph.cross_hand: {choices: [separable, telepathy]}", "params.graph.cross_hand: value 'telepathy'"),
    "range on a string": ("params:\n  bridge.attention: {low: 1, high: 2}", "params.bridge.attention: a range needs a numeric field"),
    "low above high": ("params:\n  bridge.blocks: {low: 4, high: 1}", "params.bridge.blocks: low (4) is above high (1)"),
    "index out of range": ("params:\n  encoder.stages.9.width: {choices: [8]}", "params.encoder.stages.9.width: index '9' out of range"),
    "unknown top-level key": ("params:\n  encoder.tokens: {choices: [2]}\nbudgett: 1", "budgett: unknown field"),
    "bad objective": ("objectives: [gmacs]\nparams:\n  encoder.tokens: {choices: [2]}", "objectives: expected mpjpe first"),
    "unknown proxy field": ("proxy: {epochs: 3}\nparams:\n  encoder.tokens: {choices: [2]}", "proxy.epochs: unknown field"),
    "unknown reference field": ("reference: {stpes: 3}\nparams:\n  encoder.tokens: {choices: [2]}",
                                "reference.stpes: unknown field"),
    "reference sets the length": ("reference: {steps: 3000}\nparams:\n  encoder.tokens: {choices: [2]}",
                                  "reference.steps: set by the proxy check"),
    "reference not a mapping": ("reference: [losses]\nparams:\n  encoder.tokens: {choices: [2]}",
                                "reference: expected a mapping of training fields"),
    "out-of-range value": ("params:\n  bridge.levels: {choices: [2, 5]}", "params.bridge.levels: value 5 gives an invalid model"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_spaces_give_one_line_errors_naming_the_field(tmp_path, case):
    body, expected = BAD[case]
    path = tmp_path / "space.yaml"
    budget = "" if "budgett" in body else "budget: {gmacs: 0.47}\n"
    path.write_text(f"base: lwa_hand\n{budget}{body}\n")
    with pytest.raises(HandNasError) as err:
        load_space(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and expected in msg, msg


def test_a_space_extends_another_and_replaces_whole_fields(tmp_path):
    """extends: the parent's fields, each one the file gives replacing the parent's whole; the name is its own."""
    mobile, lwa = load_space("lwa_mobile"), load_space("lwa")
    assert mobile.params == lwa.params and mobile.proxy == lwa.proxy and mobile.budget_gmacs == lwa.budget_gmacs
    assert (mobile.name, mobile.latency_runtime, mobile.objectives) == ("lwa_mobile", "executorch-int8",
                                                                       ("mpjpe", "latency"))
    (tmp_path / "parent.yaml").write_text("base: lwa_hand\nbudget: {gmacs: 0.47}\nparams:\n"
                                          "  encoder.tokens: {choices: [2, 4]}\n  bridge.blocks: {low: 1, high: 4}\n")
    (tmp_path / "child.yaml").write_text("extends: parent.yaml\nparams:\n  encoder.tokens: {choices: [3]}\n")
    child = load_space(tmp_path / "child.yaml")
    assert child.name == "child" and [p.path for p in child.params] == ["encoder.tokens"]


@pytest.mark.parametrize("body, expected", [
    ("extends: nowhere", "extends: 'nowhere': no such space"),
    ("extends: [lwa]", "extends: expected a shipped space's name or a YAML path"),
    ("extends: space.yaml", "extends: 'space.yaml': a cycle of spaces extending each other"),
])
def test_a_bad_extends_is_one_line_naming_the_file(tmp_path, body, expected):
    path = tmp_path / "space.yaml"
    path.write_text(body + "\n")
    with pytest.raises(HandNasError) as err:
        load_space(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path)) and expected in msg, msg


def test_an_unreachable_budget_is_refused_before_training(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("base: lwa_hand\nbudget: {gmacs: 0.05}\nparams:\n  encoder.tokens: {choices: [2, 4]}\n")
    with pytest.raises(HandNasError, match=r"budget.gmacs: 0.05 is below every configuration .*cheapest found 0\.\d+"):
        load_space(path)


def test_gate_is_fast():
    """The gate's numbers equal fvcore's: tests/test_analytic.py checks them on every preset and space."""
    import time

    space = load_space("search_spaces/lwa.yaml")
    rng = np.random.default_rng(1)
    cfgs = [space.build(space.random_params(rng)) for _ in range(60)]
    t = time.perf_counter()
    for c in cfgs:
        gate(c, space.budget_gmacs)
    rate = len(cfgs) / (time.perf_counter() - t)
    assert rate > 20, rate  # the floor: 20 configurations per second through the gate
