"""MobileViTv2 separable (linear) self-attention, O(N d).

Three projections of width 1, d and d give a scalar "input" score I, keys K and values V (MobileViTv2
fuses them into one d -> 1 + 2d layer; hand-nas keeps them as separate layers, same MACs, so that
structured pruning sees each one as a module). Context scores are softmax_N(I); the context vector
is sum_N K * scores; the output is proj(relu(V) * context). No N x N matrix exists; the
score/context products are element-wise (fvcore does not count them, as the MobileViTv2 papers'
MAC counts do not). In cross mode, I and K come from another token set.
"""
from __future__ import annotations

import torch
from torch import nn


class SeparableAttention(nn.Module):
    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x: (..., N, d) values; context (..., M, d) gives scores and keys (default x)."""
        c = x if context is None else context
        scores = self.drop(self.score(c).softmax(dim=-2))
        ctx = (self.k(c) * scores).sum(dim=-2, keepdim=True)
        return self.proj(torch.relu(self.v(x)) * ctx)
