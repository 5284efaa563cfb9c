"""Registering a block is the whole of adding one: every registered op choice has its traits, its MAC formula,
its deployment form and its latency features (tables keyed by the class, not by the registered name)."""
import pytest

from hand_nas.cost.analytic import BRIDGE_MACS, CROSS_MACS
from hand_nas.cost.predictor import BRIDGE_FEATURES, CROSS_FEATURES, FEATURES
from hand_nas.models.hand_batched import DEPLOY_BRIDGE, DEPLOY_CROSS
from hand_nas.registry import BRIDGES, CROSS_HAND, HEADS


@pytest.mark.parametrize("name", BRIDGES.names())
def test_every_bridge_has_traits_cost_deployment_and_features(name):
    cls = BRIDGES.get(name)
    assert isinstance(cls.reads_tokens, bool) and isinstance(cls.reads_maps, bool)
    assert cls.min_input(16) >= 0
    assert cls in BRIDGE_MACS, f"bridge {name}: no MAC formula in cost.analytic.BRIDGE_MACS"
    assert cls in DEPLOY_BRIDGE, f"bridge {name}: no deployment form in models.hand_batched.DEPLOY_BRIDGE"
    assert cls in BRIDGE_FEATURES, f"bridge {name}: no latency features in cost.predictor.BRIDGE_FEATURES"
    assert all(f in FEATURES for f, _ in BRIDGE_FEATURES[cls])


@pytest.mark.parametrize("name", CROSS_HAND.names())
def test_every_cross_hand_type_has_cost_deployment_and_features(name):
    cls = CROSS_HAND.get(name)
    assert cls in CROSS_MACS, f"cross-hand {name}: no MAC formula in cost.analytic.CROSS_MACS"
    assert CROSS_MACS[cls](63, 32) >= 0
    assert cls in DEPLOY_CROSS, f"cross-hand {name}: no deployment form in models.hand_batched.DEPLOY_CROSS"
    assert cls in CROSS_FEATURES, f"cross-hand {name}: no latency features in cost.predictor.CROSS_FEATURES"
    assert all(f in FEATURES for f, _ in CROSS_FEATURES[cls])


def test_heads_are_registered():
    assert set(HEADS.names()) == {"graph", "posenet"}
