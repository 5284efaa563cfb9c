"""Structural checks of a ModelCfg that need no model instance (names registered, ranges, lengths)."""
from __future__ import annotations

import math

from hand_nas.config import ModelCfg
from hand_nas.registry import BRIDGES, CROSS_HAND, ENCODERS


def problems(cfg: ModelCfg) -> list[str]:
    """Every structural problem of ``cfg`` as 'field: what is wrong' (empty when buildable)."""
    import hand_nas.models  # noqa: F401  (fills the registries)

    out = []
    e, b, g = cfg.encoder, cfg.bridge, cfg.graph
    if e.type not in ENCODERS:
        out.append(f"encoder.type: {e.type!r} is not one of {ENCODERS.names()}")
    if e.type == "mobile_former" and not 1 <= e.tokens <= 6:
        out.append(f"encoder.tokens: {e.tokens}, Mobile-Former uses 1..6")
    if e.type == "mobile_former" and e.token_dim % 4:
        out.append(f"encoder.token_dim: {e.token_dim} must be a multiple of 4 (attention heads)")
    if e.attention not in ("separable", "softmax"):
        out.append(f"encoder.attention: {e.attention!r} is not 'separable' or 'softmax'")
    for i, s in enumerate(e.stages):
        if s.width < 1 or s.depth < 1 or s.stride not in (1, 2) or s.expansion <= 0:
            out.append(f"encoder.stages[{i}]: width/depth >= 1, stride 1 or 2, expansion > 0 needed")
        if s.attn_dim and s.attn_dim % 4:
            out.append(f"encoder.stages[{i}].attn_dim: {s.attn_dim} must be a multiple of 4")
    if e.type != "resnet50":
        strides, st = set(), 2
        for s in e.stages:
            st *= s.stride
            strides.add(st)
        if not {4, 8, 16, 32} <= strides:
            out.append(f"encoder.stages: strides reach {sorted(strides)}, need 4, 8, 16 and 32")
    if cfg.head == "graph":
        if not 1 <= b.levels <= 3:
            out.append(f"bridge.levels: {b.levels}, expected 1..3")
        if b.blocks < 1:
            out.append(f"bridge.blocks: {b.blocks}, expected >= 1")
        if b.attention not in BRIDGES:
            out.append(f"bridge.attention: {b.attention!r} is not one of {BRIDGES.names()}")
        side = math.isqrt(b.image_tokens)
        if side * side != b.image_tokens or side < 1 or 8 % side:
            out.append(f"bridge.image_tokens: {b.image_tokens}, expected 1, 4, 16 or 64")
        if g.cross_hand not in CROSS_HAND:
            out.append(f"graph.cross_hand: {g.cross_hand!r} is not one of {CROSS_HAND.names()}")
        if len(g.dims) < b.levels + 1:
            out.append(f"graph.dims: {len(g.dims)} widths, need levels + 1 = {b.levels + 1}")
        elif any(d % g.heads for d in g.dims[1:b.levels + 1]):
            out.append(f"graph.dims: widths must be multiples of graph.heads ({g.heads})")
        if len(cfg.fusion.channels) < b.levels:
            out.append(f"fusion.channels: {len(cfg.fusion.channels)} values, need {b.levels}")
        if g.dims and g.dims[0] <= 3:
            out.append("graph.dims[0]: must exceed 3 (3 channels hold the positional code)")
        if not 1 <= g.cheb_order <= 3:
            out.append(f"graph.cheb_order: {g.cheb_order}, expected 1..3")
    return out
