"""The deployment form of the graph decoder: the two hands' per-hand modules run as one batched op.

Training keeps one module per hand (``graph[lvl][h]``, ``init[h]``, ``norm_l``/``norm_r``, ``mlp_l``/``mlp_r``:
checkpoints and pruning see them as they are). For export, ``hand_batched`` copies a trained
``TwoHandNet`` into the same computation on a hand axis: vertex features are (2, B, V, C), hand 0 the
left; a per-hand Linear becomes one MatMul with the two weights stacked to (2, 1, C_in, C_out), a per-hand
LayerNorm one LayerNorm plus a stacked scale and shift, and the cross-hand modules read the other hand
as ``x.flip(0)``. On pruned lwa_hand (0.248 GMACs) the pose part of the graph onnxruntime runs drops
from 164 to 91 MatMul/Gemm/FusedMatMul nodes (whole graph: 1103 -> 838 nodes) and ORT fp32 from
7.67 to 7.21 ms (1 thread, batch 1, shared 2-core Xeon).

MACs are unchanged: every product keeps its batched operand first with the full hand axis (the
Laplacian is stacked, not broadcast), so fvcore counts what it counts on the training module. Types
without a batched form here (the ``mhsa`` bridge) run per hand on the hand axis, unchanged.
Module names stay where the int8 float tail looks for them (``coord``, ``cam``, ``avg``, ``upsample``,
``rel_root``, ``cross.<lvl>.attn``).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from hand_nas.layers.attention import MLP, SelfAttention
from hand_nas.layers.cross_hand import ElementwiseCrossHand, NoCrossHand, SeparableCrossHand, SoftmaxCrossHand
from hand_nas.layers.graph_conv import ChebConv, GraphLayer, GraphResBlock, chebyshev_features
from hand_nas.models.bridges import LightCrossBridge, NoBridge, PifaBridge
from hand_nas.models.graph_decoder import COORD_SCALE, GraphDecoder, mesh_output
from hand_nas.models.output import HandOutput


def _stacked(pair) -> torch.Tensor:
    return torch.stack([t.detach().clone() for t in pair])


# Shape operations written as mobile runtimes' delegates take them (ExecuTorch's XNNPACK partitioner leaves
# `flip`, a non-trailing `unsqueeze`, a broadcasting `expand`, `repeat_interleave` and a concatenation of one
# tensor with itself on portable kernels, each a partition boundary): the same values from slices,
# concatenations, reshapes and products with a constant of ones; no counted MAC moves.
HANDS = torch.ones(2, 1, 1, 1)
def other_hand(x: torch.Tensor) -> torch.Tensor:
    """``x.flip(0)`` on the hand axis (size 2)."""
    return torch.cat([x[1:], x[:1]])


def both_hands(x: torch.Tensor, hands: torch.Tensor) -> torch.Tensor:
    """(B, N, C) -> (2, B, N, C): the same tensor for each hand; ``hands`` is the module's copy of ``HANDS``."""
    return x.reshape(1, *x.shape) * hands


def stack_hands(pair) -> torch.Tensor:
    """``torch.stack(pair)`` as reshape + concatenation."""
    return torch.cat([t.reshape(1, *t.shape) for t in pair])


def one_hand_each(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x[0], x[1])`` as slices and reshapes (an index on the hand axis is a select)."""
    return x[:1].reshape(x.shape[1:]), x[1:].reshape(x.shape[1:])


def repeat_vertices(x: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """``x.repeat_interleave(len(times), dim=2)`` of (2, B, V, C): each vertex's row repeated in place;
    ``times`` is a (T, 1) buffer of ones."""
    h, b, v, c = x.shape
    return (x.reshape(h, b, v, 1, c) * times).reshape(h, b, v * times.shape[0], c)


class StackedLinear(nn.Module):
    """Two Linear layers of equal shape as one MatMul: (2, B, N, C_in) -> (2, B, N, C_out)."""

    def __init__(self, pair: tuple[nn.Linear, nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(_stacked([m.weight.t() for m in pair]).unsqueeze(1), requires_grad=False)
        self.bias = None if pair[0].bias is None else \
            nn.Parameter(_stacked([m.bias for m in pair])[:, None, None], requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x, self.weight)
        return y if self.bias is None else y + self.bias


class StackedLayerNorm(nn.Module):
    """Two LayerNorms over the channel axis: one normalisation, then the stacked affine (2, 1, 1, C)."""

    def __init__(self, pair: tuple[nn.LayerNorm, nn.LayerNorm]) -> None:
        super().__init__()
        self.shape, self.eps = tuple(pair[0].normalized_shape), pair[0].eps
        self.weight = nn.Parameter(_stacked([m.weight for m in pair])[:, None, None], requires_grad=False)
        self.bias = nn.Parameter(_stacked([m.bias for m in pair])[:, None, None], requires_grad=False)
        # a unit scale inside: fvcore counts an affine LayerNorm at 5 per element, as on the training module
        self.register_buffer("unit", torch.ones(self.shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.shape, self.unit, eps=self.eps) * self.weight + self.bias


class StackedChebConv(nn.Module):
    def __init__(self, pair: tuple[ChebConv, ChebConv]) -> None:
        super().__init__()
        self.order = pair[0].order
        # (2, 1, V, V): batched operand first for fvcore, which counts prod(first) x last dim of the second
        self.register_buffer("lap", pair[0].lap.expand(2, 1, -1, -1).clone(), persistent=False)
        self.fc = StackedLinear((pair[0].fc, pair[1].fc))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(chebyshev_features(self.lap, x, self.order))


class StackedGraphLayer(nn.Module):
    def __init__(self, pair: tuple[GraphLayer, GraphLayer]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        for a, b in zip(pair[0].blocks, pair[1].blocks):
            blk = nn.Module()
            blk.conv1, blk.conv2 = StackedChebConv((a.conv1, b.conv1)), StackedChebConv((a.conv2, b.conv2))
            blk.norm1, blk.norm2 = StackedLayerNorm((a.norm1, b.norm1)), StackedLayerNorm((a.norm2, b.norm2))
            blk.shortcut = StackedLinear((a.shortcut, b.shortcut))
            self.blocks.append(blk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, blk in enumerate(self.blocks):
            y = blk.conv2(torch.relu(blk.norm1(blk.conv1(x))))
            x = blk.norm2(y + blk.shortcut(x))
            if i < len(self.blocks) - 1:
                x = torch.relu(x)
        return x


class StackedMLP(nn.Module):
    def __init__(self, pair: tuple[MLP, MLP]) -> None:
        super().__init__()
        if not all(type(m.act) is nn.ReLU for m in pair):
            raise ValueError("StackedMLP: only ReLU MLPs are restacked")
        self.norm = StackedLayerNorm((pair[0].norm, pair[1].norm))
        self.fc1, self.fc2 = StackedLinear((pair[0].fc1, pair[1].fc1)), StackedLinear((pair[0].fc2, pair[1].fc2))

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


def _attend(q, k, v, heads: int) -> torch.Tensor:
    """``hand_nas.layers.attention.attend`` over any leading axes: q (..., N, C), k (..., M, C), v (..., M, Cv).
    One head needs no reshapes."""
    if heads == 1:
        return torch.matmul((torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)).softmax(-1), v)
    *lead, n, _ = q.shape
    m = k.shape[-2]
    q = q.reshape(*lead, n, heads, -1).transpose(-3, -2)
    k = k.reshape(*lead, m, heads, -1).transpose(-3, -2)
    v = v.reshape(*lead, m, heads, -1).transpose(-3, -2)
    a = (torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)).softmax(-1)
    return torch.matmul(a, v).transpose(-3, -2).reshape(*lead, n, -1)


class StackedSelfAttention(nn.Module):
    def __init__(self, pair: tuple[SelfAttention, SelfAttention]) -> None:
        super().__init__()
        a, b = pair
        self.heads = a.attn.heads
        self.norm = StackedLayerNorm((a.norm, b.norm))
        self.q, self.k, self.v = (StackedLinear((getattr(a.attn, n), getattr(b.attn, n))) for n in "qkv")
        self.fc = StackedLinear((a.attn.fc, b.attn.fc))
        self.mlp = StackedMLP((a.mlp, b.mlp))

    def forward(self, x):
        n = self.norm(x)
        return self.mlp(x + self.fc(_attend(self.q(n), self.k(n), self.v(n), self.heads)))


class StackedSoftmaxCross(nn.Module):
    def __init__(self, m: SoftmaxCrossHand) -> None:
        super().__init__()
        self.self_attn = StackedSelfAttention((m.self_l, m.self_r))
        self.norm = StackedLayerNorm((m.norm_l, m.norm_r))
        self.cross = m.cross  # shared by both directions
        self.mlp = StackedMLP((m.mlp_l, m.mlp_r))

    def forward(self, x):
        x = self.self_attn(x)
        n = self.norm(x)
        c, other = self.cross, other_hand(n)
        x = x + c.fc(_attend(c.q(n), c.k(other), c.v(other), c.heads))
        return self.mlp(x)


class StackedSeparableCross(nn.Module):
    def __init__(self, m: SeparableCrossHand) -> None:
        super().__init__()
        self.norm = StackedLayerNorm((m.norm_l, m.norm_r))
        self.attn = m.attn  # shared; keeps its name (the int8 float tail keeps attn.score float)
        self.mlp = StackedMLP((m.mlp_l, m.mlp_r))

    def forward(self, x):
        n = self.norm(x)
        return self.mlp(x + self.attn(n, context=other_hand(n)))


class StackedElementwiseCross(nn.Module):
    def __init__(self, m: ElementwiseCrossHand) -> None:
        super().__init__()
        coef = torch.stack([torch.sigmoid(m.beta), torch.sigmoid(m.alpha)]).detach()  # left keeps beta of itself
        self.register_buffer("coef", coef[:, None, None], persistent=False)
        self.register_buffer("other_coef", 1 - self.coef, persistent=False)

    def forward(self, x):
        return self.coef * x + self.other_coef * other_hand(x)


class PerHandCross(nn.Module):
    """Fallback: the training module on the two slices of the hand axis."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x):
        return stack_hands(self.m(*one_hand_each(x)))


class LightCrossStacked(nn.Module):
    """``light_cross`` on both hands at once (the bridge has no weights of its own; one attention head)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("hands", HANDS.clone(), persistent=False)

    def forward(self, x, fmap, tokens):
        # ``_attend(x, tokens, tokens, 1)`` with the keys transposed before the hand axis is broadcast (litert-torch
        # 0.10 folds the product with ones into BROADCAST_TO and then sinks the transpose past it wrongly)
        keys_t = both_hands(tokens.transpose(-1, -2), self.hands)  # (2, B, C, M)
        a = (torch.matmul(x, keys_t) * (x.shape[-1] ** -0.5)).softmax(-1)
        return x + torch.matmul(a, both_hands(tokens, self.hands))


class PerHandBridge(nn.Module):
    def __init__(self, pair) -> None:
        super().__init__()
        self.pair = nn.ModuleList(pair)

    def forward(self, x, fmap, tokens):
        return stack_hands([self.pair[h](xh, fmap, tokens) for h, xh in enumerate(one_hand_each(x))])


def _plain(module: nn.Module) -> bool:
    """Only float torch layers are restacked (a quantized copy keeps its own modules)."""
    return all(type(m) in (nn.Linear, nn.LayerNorm) for m in module.modules()
               if isinstance(m, (nn.Linear, nn.LayerNorm)))


# The deployment form of every registered cross-hand and bridge type, keyed by its class (a type without a
# batched form runs per hand: PerHandCross, PerHandBridge).
DEPLOY_CROSS = {SeparableCrossHand: StackedSeparableCross, SoftmaxCrossHand: StackedSoftmaxCross,
                ElementwiseCrossHand: StackedElementwiseCross, NoCrossHand: lambda m: nn.Identity()}
DEPLOY_BRIDGE = {LightCrossBridge: lambda pair: LightCrossStacked(), NoBridge: lambda pair: nn.Identity(),
                 PifaBridge: PerHandBridge}


def _cross(m: nn.Module) -> nn.Module:
    return DEPLOY_CROSS.get(type(m), PerHandCross)(m)


def _bridge(pair) -> nn.Module:
    kinds = {type(b) for b in pair}
    return DEPLOY_BRIDGE.get(kinds.pop(), PerHandBridge)(pair) if len(kinds) == 1 else PerHandBridge(pair)


class HandBatchedDecoder(nn.Module):
    """``GraphDecoder`` with the hand axis batched; same outputs (to float rounding), same MACs."""

    def __init__(self, dec: GraphDecoder) -> None:
        super().__init__()
        self.levels = dec.levels
        self.init_fc = StackedLinear((dec.init[0][0], dec.init[1][0]))
        self.init_norm = StackedLayerNorm((dec.init[0][1], dec.init[1][1]))
        # (2, 1, 63, P): both hands' copy made once (at batch 1 the per-call expand is a no-op)
        self.register_buffer("hands", HANDS.clone(), persistent=False)
        self.register_buffer("pos_code", both_hands(dec.pos_code[None], self.hands), persistent=False)
        self.register_buffer("rows", torch.ones(63, 1), persistent=False)  # broadcasts the global feature to 63 rows
        self.register_buffer("twice", torch.ones(2, 1), persistent=False)
        self.register_buffer("upsample_rows", torch.ones(2 ** (3 - dec.levels), 1), persistent=False)
        self.node_emb = dec.node_emb
        self.graph = nn.ModuleList([StackedGraphLayer((g[0], g[1])) for g in dec.graph])
        self.bridge = nn.ModuleList([_bridge(tuple(b)) for b in dec.bridge])
        self.cross = nn.ModuleList([_cross(c) for c in dec.cross])
        self.tokens, self.own_tokens = dec.tokens, dec.own_tokens
        self.coord, self.avg, self.cam, self.upsample, self.rel_root = dec.coord, dec.avg, dec.cam, dec.upsample, \
            dec.rel_root
        # graph.direct: one (2, G, 756) stacked Linear from the global feature (same MACs as the pair)
        self.direct = StackedLinear(tuple(dec.direct)) if dec.direct is not None else None
        self.register_buffer("template", dec.template, persistent=False)
        self.register_buffer("avg_weight_t", dec.avg.weight.detach().t().clone(), persistent=False)  # (252, 1)
        self.register_buffer("regressor_t", dec.regressor_t, persistent=False)

    def forward(self, feats) -> HandOutput:
        gfeat = feats.global_feat
        bsz = gfeat.shape[0]
        # (2, B, 1, G): the hand axis is expanded before the product, so it is counted for both hands
        g = self.init_norm(self.init_fc(both_hands(gfeat.reshape(bsz, 1, -1), self.hands)))
        x = torch.cat([g * self.rows, self.pos_code.expand(-1, bsz, -1, -1)], -1)  # (2, B, 63, C)
        z = feats.tokens if self.own_tokens is None else \
            self.own_tokens.reshape(1, *self.own_tokens.shape).expand(bsz, -1, -1)
        for lvl in range(self.levels):
            x = self.graph[lvl](x + self.node_emb[lvl])
            fmap = feats.fmaps[lvl] if feats.fmaps else None
            tokens = None
            if len(self.tokens):
                z, tokens = self.tokens[lvl](fmap, z)
            x = self.bridge[lvl](x, fmap, tokens) if not isinstance(self.bridge[lvl], nn.Identity) else x
            x = self.cross[lvl](x)
            if lvl < self.levels - 1:
                x = repeat_vertices(x, self.twice)
        if self.levels < 3:
            x = repeat_vertices(x, self.upsample_rows)
        offsets = self.coord(x)  # (2, B, 252, 3), decimetres
        if self.direct is not None:
            offsets = offsets + self.direct(both_hands(gfeat.reshape(bsz, 1, -1), self.hands)).view(2, bsz, 252, 3)
        coarse = (offsets * COORD_SCALE).transpose(0, 1) + self.template  # (B, 2, 252, 3)
        # (2 B C, 252) @ (252, 1): a 2-D product with a constant weight (a 4-D one broadcasts it: an expand)
        xt = x.transpose(-1, -2)
        pooled = torch.matmul(xt.reshape(-1, xt.shape[-1]), self.avg_weight_t).reshape(2, bsz, -1) + self.avg.bias
        cam = self.cam(pooled).transpose(0, 1)  # (B, 2, 3)
        return mesh_output(self, coarse, cam, gfeat)


class HandBatchedNet(nn.Module):
    """A ``TwoHandNet`` whose pose part is ``HandBatchedDecoder``; the image part is the model's own."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.image, self.pose = net.image, HandBatchedDecoder(net.pose)

    def forward(self, image: torch.Tensor) -> HandOutput:
        feats = self.image(image)
        out = self.pose(feats)
        out.heatmaps, out.masks, out.dense = feats.heatmaps, feats.masks, feats.dense
        return out


def hand_batched(model: nn.Module) -> nn.Module:
    """The deployment module of ``model`` (eval mode): its graph decoder hand-batched, weights copied. Models
    without a float ``GraphDecoder`` (PoseNet heads, quantized copies) come back unchanged."""
    pose = getattr(model, "pose", None)
    if type(pose) is not GraphDecoder or not _plain(pose) or not hasattr(model, "image"):
        return model
    return HandBatchedNet(model).eval()
