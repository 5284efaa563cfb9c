"""Structured pruning to a GMACs target with torch-pruning's dependency graph (DepGraph).

Every coupled set of channels (a residual stream, a depthwise conv with its producer, the channels
an attention matmul ties together, a graph-conv's Chebyshev terms) is one DepGraph group and is
pruned as one; the module keeps working and stays a plain ``nn.Module``. Kept as they are:

* the outputs (``output_layers``): vertex/camera/root heads, the 252 -> 778 upsampling, the
  vertex-averaging layer, image-decoder heads, PoseNet heads and the separable attention's score;
* head structure: every projection that splits into heads is registered with its head count, so
  torch-pruning removes the same channels from every head (``prune_heads`` also removes whole
  heads, and the modules' ``heads`` are updated after the step, before any forward).

The ratio is found by bisection on a uniform per-layer ratio until the fvcore count (the project's
MAC convention) lands within ``tolerance`` of the target. The result's shapes are recorded in
``ShapeRecord`` (plain JSON) so a checkpoint of a pruned model is rebuilt without pickles.
"""
from __future__ import annotations

import copy
import dataclasses
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from hand_nas.cost.flops import model_cost
from hand_nas.models.traceable import output_tensors
from hand_nas.errors import HandNasError

HEAD_PROJECTIONS = ("q", "k", "v", "qkv")


@dataclass(frozen=True)
class PruneCfg:
    """How to prune.

    Attributes:
        target_gmacs: GMACs (fvcore convention, 3x256x256, batch 1) to land on; or
        ratio: a fixed per-layer channel ratio instead of a target.
        tolerance: relative tolerance on the target.
        prune_heads: also remove whole attention heads (else only channels within each head).
        max_ratio: no layer loses more than this share of its channels.
        round_to: keep channel counts multiples of this (8: the SIMD width onnxruntime's blocked conv kernels
            want; measured on lwa_hand at 0.25 GMACs: 13.4 ms vs 14.7 ms with None).
    """

    target_gmacs: float | None = None
    ratio: float | None = None
    tolerance: float = 0.03
    prune_heads: bool = False
    max_ratio: float = 0.9
    round_to: int | None = 8


@dataclass
class PruneResult:
    model: nn.Module
    ratio: float
    gmacs_before: float
    gmacs_after: float
    params_m_before: float
    params_m_after: float
    tries: list  # (ratio, gmacs) of every bisection step


def output_layers(model: nn.Module) -> list[nn.Module]:
    """Layers whose output width is part of the model's contract (never pruned on the output side)."""
    from hand_nas.layers.separable_attention import SeparableAttention
    from hand_nas.models.graph_decoder import GraphDecoder
    from hand_nas.models.image_part import SimpleDecoder
    from hand_nas.models.posenet import PoseNet

    keep: list[nn.Module] = []
    for m in model.modules():
        if isinstance(m, GraphDecoder):
            keep += [m.coord, m.cam, m.avg, m.upsample, m.rel_root]
            # the direct head's 756 outputs are (252, 3) offsets: without this, torch-pruning's dependency search
            # over them ran for minutes without finishing (measured on lwa.yaml subnets with graph.direct)
            keep += list(m.direct) if m.direct is not None else []
        elif isinstance(m, SimpleDecoder):
            keep.append(m.final)
        elif isinstance(m, PoseNet):
            keep += [b[-1] for b in m.branches] + [m.root_fc[-1], m.hand_fc[-1]]
        elif isinstance(m, SeparableAttention):
            keep.append(m.score)
    return keep


def head_layers(model: nn.Module) -> dict[nn.Module, int]:
    """{projection: heads} for every module that splits its channels into ``heads`` heads."""
    out = {}
    for m in model.modules():
        heads = getattr(m, "heads", None)
        if isinstance(heads, int) and heads > 1:
            for name in HEAD_PROJECTIONS:
                layer = getattr(m, name, None)
                if isinstance(layer, nn.Linear):
                    out[layer] = heads
    return out


def _unwrapped(model: nn.Module) -> list[tuple[nn.Parameter, int]]:
    """Parameters used outside modules (token sets, node embeddings): their channel axis is the last one."""
    owned = {id(p) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.LayerNorm,
                                                               nn.BatchNorm2d)) for p in m.parameters(recurse=False)}
    return [(p, p.dim() - 1) for p in model.parameters() if id(p) not in owned and p.dim() >= 2]


def _example(model: nn.Module) -> torch.Tensor:
    return torch.zeros(1, 3, 256, 256)


def prune_once(model: nn.Module, ratio: float, cfg: PruneCfg = PruneCfg(), pose_ratio: float | None = None
               ) -> nn.Module:
    """A pruned deep copy of ``model`` at a per-layer channel ``ratio`` (L2 magnitude importance).

    ``pose_ratio`` (optional) applies another ratio to the pose part (``model.pose``).
    """
    import torch_pruning as tp

    net = copy.deepcopy(model).eval()
    heads = head_layers(net)
    per_part = {net.pose: pose_ratio} if pose_ratio is not None and hasattr(net, "pose") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tp's notices about unwrapped parameters (we pass them)
        pruner = tp.pruner.MetaPruner(
            net, _example(net), importance=tp.importance.GroupMagnitudeImportance(p=2), pruning_ratio=ratio,
            pruning_ratio_dict=per_part,
            max_pruning_ratio=cfg.max_ratio, ignored_layers=output_layers(net), num_heads=heads,
            prune_num_heads=cfg.prune_heads, prune_head_dims=True, head_pruning_ratio=ratio if cfg.prune_heads else 0.0,
            round_to=cfg.round_to, unwrapped_parameters=_unwrapped(net), output_transform=output_tensors)
        with torch.no_grad():
            pruner.step()
    seen = set(pruner.DG.module2node)
    unseen = [n for n, m in net.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and m not in seen
              and m not in output_layers(net)]
    if cfg.prune_heads:  # attention reshapes by ``heads``: update it before anything runs
        for m in net.modules():
            for name in HEAD_PROJECTIONS:
                layer = getattr(m, name, None)
                if layer in pruner.num_heads and isinstance(getattr(m, "heads", None), int):
                    m.heads = pruner.num_heads[layer]
    try:
        with torch.no_grad():
            net(_example(net))
    except RuntimeError as exc:
        raise HandNasError(f"the pruned model does not run ({str(exc).splitlines()[0]}); layers outside the "
                           f"dependency graph (their output reaches no model output): {unseen[:5] or 'none'}") from None
    return net


def prune_to_target(model: nn.Module, cfg: PruneCfg, progress=None) -> PruneResult:
    """Bisection on the ratio until the fvcore GMACs land within ``cfg.tolerance`` of the target.

    Args:
        progress: optional ``fn(ratio, gmacs)`` called after every try.
    """
    before = model_cost(model)
    tries = []

    run_cfg = cfg

    def attempt(r, pose_r=None):
        net = prune_once(model, r, run_cfg, pose_r)
        g = model_cost(net).gmacs_total
        tries.append((round(r, 4), round(g, 4)) if pose_r is None else (round(r, 4), round(g, 4), round(pose_r, 4)))
        if progress:
            progress(r if pose_r is None else pose_r, g)
        return net, g

    if cfg.ratio is not None:
        net, g = attempt(cfg.ratio)
        return PruneResult(net, cfg.ratio, before.gmacs_total, g, before.params_m, _params_m(net), tries)
    target = cfg.target_gmacs
    if target is None or not 0 < target < before.gmacs_total:
        raise HandNasError(f"target_gmacs {target}: expected a value between 0 and the model's "
                           f"{before.gmacs_total:.4f} GMACs")
    # A uniform ratio moves the count in steps (channel counts are integers, heads round them), so
    # when the steps straddle the target a second bisection moves the pose part's ratio alone.
    best = None

    def bisect(make, lo, hi, steps=10):
        nonlocal best
        for _ in range(steps):
            mid = (lo + hi) / 2
            net, g = attempt(*make(mid))
            if best is None or abs(g - target) < abs(best[1] - target):
                best = (net, g, mid)
            if abs(g - target) <= cfg.tolerance * target:
                return True
            lo, hi = (mid, hi) if g > target else (lo, mid)
        return False

    def search() -> bool:
        start = len(tries)
        if bisect(lambda r: (r, None), 0.0, cfg.max_ratio):
            return True
        above = [t[0] for t in tries[start:] if len(t) == 2 and t[1] > target]
        r0 = max(above) if above else 0.0
        return bisect(lambda r: (r0, r), r0, cfg.max_ratio)

    # Rounding channel counts to 8 can make the count jump past the target (small models, widths that
    # are not multiples of 8): then the search runs again without rounding.
    if not search() and cfg.round_to:
        run_cfg = dataclasses.replace(cfg, round_to=None)
        search()
    net, g, r = best
    if abs(g - target) > cfg.tolerance * target:
        raise HandNasError(f"pruning could not land within {cfg.tolerance:.0%} of {target} GMACs "
                           f"(closest {g:.4f} at ratio {r:.3f}; tries {tries})")
    return PruneResult(net, r, before.gmacs_total, g, before.params_m, _params_m(net), tries)


def _params_m(model: nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6
