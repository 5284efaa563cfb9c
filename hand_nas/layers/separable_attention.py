"""MobileViTv2 separable (linear) self-attention, O(N d).

One projection d -> 1 + 2d gives a scalar "input" score I, keys K and values V. Context scores are
softmax_N(I); the context vector is sum_N K * scores; the output is proj(relu(V) * context). No N x N
matrix exists; the score/context products are element-wise (fvcore does not count them, as the
MobileViTv2 papers' MAC counts do not). In cross mode, I and K come from another token set.
"""
from __future__ import annotations

import torch
from torch import nn


class SeparableAttention(nn.Module):
    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.qkv = nn.Linear(dim, 1 + 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x: (..., N, d) values; context (..., M, d) gives scores and keys (default x)."""
        if context is None:
            i, k, v = self.qkv(x).split([1, self.dim, self.dim], dim=-1)
        else:
            # Cross mode: the weights are shared; scores and keys from the context set, values from x.
            w_ik, w_v = self.qkv.weight.split([1 + self.dim, self.dim], 0)
            b_ik, b_v = self.qkv.bias.split([1 + self.dim, self.dim], 0)
            i, k = nn.functional.linear(context, w_ik, b_ik).split([1, self.dim], dim=-1)
            v = nn.functional.linear(x, w_v, b_v)
        scores = self.drop(i.softmax(dim=-2))
        ctx = (k * scores).sum(dim=-2, keepdim=True)
        return self.proj(torch.relu(v) * ctx)
