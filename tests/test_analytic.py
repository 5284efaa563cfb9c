"""The closed-form MAC counts (``hand_nas.cost.analytic``) equal fvcore's, exactly, image and pose apart.

fvcore builds and traces each model (about 1 CPU-second a configuration, almost all of it JIT tracing
and fvcore's graph walk, so a smaller input saves nothing): the sampled-configuration tests are slow
on purpose, they are the only check of the budget gate's numbers.
"""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from model_configs import small_model

from hand_nas.cost.analytic import MacCount, model_macs
from hand_nas.cost.flops import model_cost
from hand_nas.models import build_model
from hand_nas.models.presets import PRESETS
from hand_nas.search.space import load_space

SPACES = ["tiny", "lwa", "lagc", "joint"]
CONFIGS_PER_SPACE = 25  # 100 fvcore traces, ~30 s on 2 cores


def fvcore_macs(cfg, size: int = 256) -> tuple[int, int]:
    """fvcore's (image, pose) MACs as integers (GMACs * 1e9 is exact to well under 0.5 at these sizes)."""
    r = model_cost(build_model(cfg), size)
    return round(r.gmacs_image * 1e9), round(r.gmacs_pose * 1e9)


def analytic_macs(cfg, size: int = 256) -> tuple[int, int]:
    c = model_macs(cfg, size)
    assert isinstance(c.image_macs, int) and isinstance(c.pose_macs, int)
    return c.image_macs, c.pose_macs


def test_mac_count_total():
    c = MacCount(image_macs=3, pose_macs=4)
    assert c.total_macs == 7


@pytest.mark.parametrize("name", PRESETS.names())
def test_every_preset_equals_fvcore(name):
    cfg = PRESETS.get(name)()
    if cfg.head != "graph":  # InterNet's PoseNet head is outside the closed form; the gate uses fvcore
        with pytest.raises(ValueError, match="graph-head"):
            model_macs(cfg)
        return
    assert analytic_macs(cfg) == fvcore_macs(cfg), name


@pytest.fixture(scope="module")
def sampled_counts():
    """{space: [(config key, analytic, fvcore)]} for CONFIGS_PER_SPACE distinct configurations of every space.

    fvcore's trace dominates (about 1 CPU-second a configuration), so the 200 counts run in one
    process per core.
    """
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    from model_configs import fvcore_macs_of

    todo = {}
    for name in SPACES:
        space = load_space(f"search_spaces/{name}.yaml")
        rng = np.random.default_rng(7)
        cfgs: dict[str, object] = {}
        for _ in range(20 * CONFIGS_PER_SPACE):  # distinct configurations only
            cfg = space.build(space.random_params(rng))
            cfgs.setdefault(json.dumps(cfg.to_dict(), sort_keys=True), cfg)
            if len(cfgs) == CONFIGS_PER_SPACE:
                break
        todo[name] = cfgs
    jobs = [(name, key, cfg) for name, cfgs in todo.items() for key, cfg in cfgs.items()]
    with ProcessPoolExecutor(min(2, os.cpu_count() or 1), mp_context=mp.get_context("spawn")) as pool:
        counts = list(pool.map(fvcore_macs_of, [cfg.to_dict() for _, _, cfg in jobs], chunksize=4))
    out = {name: [] for name in SPACES}
    for (name, key, cfg), fv in zip(jobs, counts):
        out[name].append((key, analytic_macs(cfg), fv))
    return out


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.slow
def test_sampled_configurations_equal_fvcore(space_name, sampled_counts):
    rows = sampled_counts[space_name]
    assert len(rows) == CONFIGS_PER_SPACE
    wrong = [r for r in rows if r[1] != r[2]]
    assert not wrong, f"{len(wrong)} of {len(rows)} differ (analytic, fvcore); first: {wrong[0]}"


# Corners the shipped spaces never sample: MobileNetV2, Former->Mobile, Chebyshev orders 1 and 3,
# no image decoders, a single level.
CORNERS = {
    "mobilenet_v2 mhsa softmax": small_model("mobilenet_v2", "mhsa", "softmax"),
    "mobile_former light_cross separable": small_model("mobile_former", "light_cross", "separable"),
    "mobilevit softmax, cheb 1": small_model("mobilevit_v3", "none", "elementwise", attention="softmax", cheb_order=1),
    "mobilenet_v2 cheb 3, one level": small_model("mobilenet_v2", "mhsa", "separable", levels=1, cheb_order=3),
    "no decoders": small_model("mobile_former", "light_cross", "softmax", decoders=()),
}


@pytest.mark.parametrize("case", sorted(CORNERS))
def test_family_corners_equal_fvcore(case):
    assert analytic_macs(CORNERS[case]) == fvcore_macs(CORNERS[case]), case


def test_former_to_mobile_equals_fvcore():
    base = small_model("mobile_former", "none", "none")
    cfg = replace(base, encoder=replace(base.encoder, former_to_mobile=True))
    assert analytic_macs(cfg) == fvcore_macs(cfg)


def _small_map_cfg():
    """LWA-HAND with 8x8 token grids: at 128 px its 4x4 first-level map is read unpooled."""
    cfg = PRESETS.get("lwa_hand")()
    return replace(cfg, bridge=replace(cfg.bridge, image_tokens=64))


@pytest.mark.parametrize("cfg", [PRESETS.get("lwa_hand")(), _small_map_cfg(), CORNERS["mobilevit softmax, cheb 1"]],
                         ids=["lwa_hand", "lwa_hand 64 tokens", "mobilevit"])
def test_below_256_equals_fvcore(cfg):
    assert analytic_macs(cfg, 128) == fvcore_macs(cfg, 128)


def test_pifa_below_256_equals_fvcore():
    """PIFA resizes its grid position embedding below 256 px (bilinear, 4 per output element)."""
    cfg = CORNERS["mobilenet_v2 mhsa softmax"]
    expected = fvcore_macs(cfg, 128)  # an uncounted op raises here: a failure, never a skip
    assert analytic_macs(cfg, 128) == expected
