"""Every preset, encoder, bridge and cross-hand type builds, runs forward and backward, and is costed."""
from __future__ import annotations

import pytest
import torch

from hand_nas.cost.flops import model_cost
from hand_nas.models import build_model
from hand_nas.registry import BRIDGES, CROSS_HAND, ENCODERS, PRESETS

from model_configs import small_model

# Published / reference GMACs (fvcore convention) and the tolerance each is pinned to.
PINNED = {
    "intaghand": ((8.3695, 7.3111, 1.0585), (0.01, 0.01, 0.01)),
    "internet": ((11.9516, 5.3673, 6.584), (0.01, 0.01, 0.01)),
    "lwa_hand": ((0.47, 0.25, 0.22), (0.03, 0.05, 0.05)),
    "lagc_hand": ((0.81, None, None), (0.05, None, None)),
    "lagc_compact": ((1.023, None, None), (0.05, None, None)),
    "lagc_laencoder": ((2.091, None, None), (0.05, None, None)),
}


def _forward_backward(model, size=64, batch=2):
    model.train()
    out = model(torch.rand(batch, 3, size, size))
    loss = out.joints.square().mean()
    if out.verts is not None:
        assert out.verts.shape == (batch, 2, 778, 3) and out.verts2d.shape == (batch, 2, 778, 2)
        loss = loss + out.verts.square().mean()
    assert out.joints.shape == (batch, 2, 21, 3)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    return out


@pytest.mark.parametrize("name", sorted(PINNED))
def test_preset_cost_is_pinned(name):
    # MAC counts are integers computed from tensor shapes, so they are machine-independent; the relative
    # tolerance in PINNED covers only the published figures' rounding.
    r = model_cost(build_model(PRESETS.get(name)()))
    assert abs(r.gmacs_image + r.gmacs_pose - r.gmacs_total) < 1e-3
    for got, want, tol in zip((r.gmacs_total, r.gmacs_image, r.gmacs_pose), *PINNED[name]):
        if want is not None:
            assert abs(got - want) <= tol * want, (name, got, want)


def test_every_preset_is_pinned():
    assert sorted(PINNED) == PRESETS.names()


@pytest.mark.parametrize("name", PRESETS.names())
def test_preset_forward_backward(name):
    _forward_backward(build_model(PRESETS.get(name)()))


@pytest.mark.parametrize("encoder", [e for e in ENCODERS.names() if e != "resnet50"])
def test_every_encoder(encoder):
    cfg = small_model(encoder=encoder)
    m = build_model(cfg)
    _forward_backward(m)
    r = model_cost(m)
    assert 0 < r.gmacs_image < r.gmacs_total


@pytest.mark.parametrize("attention", ["softmax", "separable"])
def test_mobilevit_attention_types(attention):
    _forward_backward(build_model(small_model(encoder="mobilevit_v3", attention=attention)))


@pytest.mark.parametrize("bridge", BRIDGES.names())
@pytest.mark.parametrize("cross", CROSS_HAND.names())
def test_every_bridge_and_cross_hand_type(bridge, cross):
    m = build_model(small_model(encoder="mobile_former", bridge=bridge, cross=cross))
    _forward_backward(m)
    r = model_cost(m)
    assert r.gmacs_pose > 0


def test_attention_types_cost_in_the_expected_order():
    pose = {c: model_cost(build_model(small_model(cross=c))).gmacs_pose for c in CROSS_HAND.names()}
    assert pose["softmax"] > pose["separable"] > pose["elementwise"] == pose["none"]


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_pyramid_levels(levels):
    _forward_backward(build_model(small_model(levels=levels)))


def test_any_multiple_of_32_and_cost_at_256():
    m = build_model(PRESETS.get("lwa_hand")())
    for size in (96, 128, 160):
        _forward_backward(m, size=size, batch=1)
        m.zero_grad()
    with pytest.raises(ValueError, match="multiples of 32"):
        m(torch.rand(1, 3, 100, 100))
