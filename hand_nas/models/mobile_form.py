"""The mobile form of a deployment module: the blocks written as ExecuTorch's XNNPACK delegate takes them.

``hand_batched`` gives the graph onnxruntime runs. ExecuTorch's XNNPACK partitioner (1.5.1) leaves some of
its operations on portable kernels, and every one of those splits the model into another delegate
partition: a LayerNorm (no XNNPACK LayerNorm; no mean over a non-spatial axis either), a softmax or a sum
that is not over the last axis, an adaptive average pool. ``xnnpack_form`` swaps each such module for one
that computes the same values from operations XNNPACK has: a mean is a matmul by a constant 1/C column, the
separable attention's softmax runs on the last axis and its context sum is a matmul, a pool whose output
divides its input is a fixed average pool. One form is for speed, not coverage: Mobile-Former's Mobile->Former
attention reads the feature map once for all heads (``OneProductMobileToFormer``) instead of transposing it per
head, which XNNPACK runs as copies of the whole map. The copy is for export only: MAC counts, checkpoints and the
ONNX graph keep the modules as they are (a matmul mean would add MACs that fvcore counts).

Swaps are keyed by class in ``XNNPACK_FORMS``; a new block with an operation XNNPACK lacks adds its form
here (``hand_nas.export_executorch`` reports the ops that still fall to portable kernels, with their source lines).

``quantizable=True`` adds the forms int8 needs (``QUANTIZABLE_FORMS``): PT2E quantizers annotate ``linear``
and convolutions, not a matmul with a stacked (2, 1, C_in, C_out) weight or a constant Laplacian, so the
hand-batched pose part would stay fp32. There each hand's stacked weight is its own ``nn.Linear`` again
(``PairLinear``) and the Laplacian products of a Chebyshev convolution are a bias-free ``nn.Linear`` over
the vertex axis (``LinearChebConv``); same values, every graph-convolution weight seen by the quantizer.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from hand_nas.layers.attention import attend
from hand_nas.layers.mobile_former import MobileToFormer
from hand_nas.layers.mobilevit_block import SoftmaxTokens
from hand_nas.layers.separable_attention import SeparableAttention
from hand_nas.models.hand_batched import (StackedChebConv, StackedLayerNorm, StackedLinear, one_hand_each,
                                          stack_hands)


class MatmulLayerNorm(nn.Module):
    """LayerNorm over the last axis with both means as a matmul by a constant (C, 1) column of 1/C."""

    def __init__(self, channels: int, eps: float, weight: torch.Tensor | None, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.register_buffer("mean_col", torch.full((channels, 1), 1.0 / channels), persistent=False)
        self.register_buffer("eps", torch.tensor(float(eps)), persistent=False)
        self.weight = None if weight is None else nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # 2-D products: a 3-D/4-D one broadcasts the column (an expand)
        d = x - torch.matmul(x, self.mean_col)
        y = (d * torch.rsqrt(torch.matmul(d * d, self.mean_col) + self.eps)).reshape(shape)
        if self.weight is not None:
            y = y * self.weight
        return y if self.bias is None else y + self.bias

    @classmethod
    def of(cls, m: nn.LayerNorm | StackedLayerNorm) -> nn.Module:
        if len(m.shape if isinstance(m, StackedLayerNorm) else m.normalized_shape) != 1:
            return m  # a LayerNorm over several axes keeps its form
        channels = (m.shape if isinstance(m, StackedLayerNorm) else m.normalized_shape)[0]
        return cls(channels, m.eps, m.weight, m.bias)  # StackedLayerNorm's (2, 1, 1, C) affine broadcasts alike


class MatmulSeparableAttention(nn.Module):
    """``SeparableAttention`` with the context scores' softmax on the last axis and the context sum a matmul."""

    def __init__(self, m: SeparableAttention) -> None:
        super().__init__()
        self.score, self.k, self.v, self.proj = m.score, m.k, m.v, m.proj

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        c = x if context is None else context
        scores = self.score(c).transpose(-1, -2).softmax(-1)  # (..., 1, M)
        ctx = torch.matmul(scores, self.k(c))  # (..., 1, d) = sum over M of k * scores
        return self.proj(torch.relu(self.v(x)) * ctx)


class OneProductMobileToFormer(nn.Module):
    """Mobile-Former's Mobile->Former with every head in one pair of products over the pixels, read once.

    The training form splits the flattened map into heads for the keys and again for the values: four
    transposes of a (B, HW, C) tensor per block, which XNNPACK runs as copies of the whole map (at 128x128 px
    they cost more than the products). Here the tokens' queries form a block-diagonal (heads*M, C) matrix
    (head h's queries in its own channels, zeros elsewhere), one product with the pixels gives every head's
    scores, one product of the weights with the pixels every head's output, whose diagonal blocks are the
    heads' results. Same values; the extra products are with zeros, on the token side (M rows per head).
    """

    def __init__(self, m: MobileToFormer) -> None:
        super().__init__()
        self.heads, self.q, self.out, self.norm = m.heads, m.q, m.out, m.norm

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape
        m, d = z.shape[1], c // self.heads
        pix = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        q = self.q(z) * d ** -0.5
        blocks = torch.cat([F.pad(q[..., h * d:(h + 1) * d], (h * d, c - (h + 1) * d)) for h in range(self.heads)], 1)
        weights = torch.matmul(blocks, pix.transpose(1, 2)).softmax(-1)  # (B, heads*M, HW)
        full = torch.matmul(weights, pix)  # (B, heads*M, C): head h's rows, all channels
        att = torch.cat([full[:, h * m:(h + 1) * m, h * d:(h + 1) * d] for h in range(self.heads)], -1)
        return self.norm(z + self.out(att))


class SlicedSoftmaxTokens(nn.Module):
    """MobileViT's softmax token attention with q, k, v taken from the fused projection by slices (``chunk`` is a
    split, which XNNPACK lacks; the training form keeps ``chunk``, which torch-pruning's graph follows)."""

    def __init__(self, m: SoftmaxTokens) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = m.heads, m.qkv, m.proj

    def forward(self, x):
        b, p, n, d = x.shape
        qkv = self.qkv(x.reshape(b * p, n, d))
        q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
        return self.proj(attend(q, k, v, self.heads)).reshape(b, p, n, d)


class FixedAvgPool(nn.Module):
    """``AdaptiveAvgPool2d(g)`` as the fixed average pool it equals when g divides the map's sides."""

    def __init__(self, m: nn.AdaptiveAvgPool2d) -> None:
        super().__init__()
        self.output_size = m.output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.output_size
        gh, gw = (g, g) if isinstance(g, int) else g
        h, w = x.shape[-2:]
        if gh and gw and h % gh == 0 and w % gw == 0:
            return F.avg_pool2d(x, (h // gh, w // gw))
        return F.adaptive_avg_pool2d(x, g)


class PairLinear(nn.Module):
    """``StackedLinear`` as one ``nn.Linear`` per hand on the hand axis' two slices."""

    def __init__(self, m: StackedLinear) -> None:
        super().__init__()
        w = m.weight.detach()  # (2, 1, C_in, C_out)
        self.hands = nn.ModuleList()
        for h in range(2):
            lin = nn.Linear(w.shape[2], w.shape[3], bias=m.bias is not None)
            lin.weight.data.copy_(w[h, 0].t())
            if m.bias is not None:
                lin.bias.data.copy_(m.bias.detach()[h].reshape(-1))
            self.hands.append(lin.requires_grad_(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stack_hands([lin(xh) for lin, xh in zip(self.hands, one_hand_each(x))])


class LinearChebConv(nn.Module):
    """``StackedChebConv`` with L x computed as ``nn.Linear(V, V)`` (weight L) on the vertex axis."""

    def __init__(self, m: StackedChebConv) -> None:
        super().__init__()
        self.order = m.order
        v = m.lap.shape[-1]
        self.lap = nn.Linear(v, v, bias=False).requires_grad_(False)
        self.lap.weight.data.copy_(m.lap[0, 0])  # both hands' Laplacian is the same mesh's
        self.register_buffer("two", torch.tensor(2.0), persistent=False)
        self.fc = PairLinear(m.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        terms = [x.transpose(-1, -2)]  # (2, B, C, V): vertices last, where the Linear applies L
        if self.order > 1:
            terms.append(self.lap(terms[0]))
        for _ in range(2, self.order):
            terms.append(self.two * self.lap(terms[-1]) - terms[-2])
        feats = torch.cat(terms, -2).transpose(-1, -2) if len(terms) > 1 else x  # [x, Lx, ...] on channels
        return self.fc(feats)


XNNPACK_FORMS = {nn.LayerNorm: MatmulLayerNorm.of, StackedLayerNorm: MatmulLayerNorm.of,
                 SeparableAttention: MatmulSeparableAttention, nn.AdaptiveAvgPool2d: FixedAvgPool,
                 SoftmaxTokens: SlicedSoftmaxTokens, MobileToFormer: OneProductMobileToFormer}
QUANTIZABLE_FORMS = {StackedLinear: PairLinear, StackedChebConv: LinearChebConv}


def _swap(module: nn.Module, forms: dict) -> None:
    for name, child in module.named_children():
        form = forms.get(type(child))
        if form is not None:
            setattr(module, name, form(child))
            _swap(getattr(module, name), forms)  # a form may keep the block's own parts (a LayerNorm) as they were
        else:
            _swap(child, forms)


def xnnpack_form(module: nn.Module, quantizable: bool = False) -> nn.Module:
    """A copy of ``module`` (a deployment module, eval mode) with every block of ``XNNPACK_FORMS`` swapped
    (and of ``QUANTIZABLE_FORMS`` with ``quantizable``)."""
    out = copy.deepcopy(module).eval()
    _swap(out, {**XNNPACK_FORMS, **(QUANTIZABLE_FORMS if quantizable else {})})
    return out
