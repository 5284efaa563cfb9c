"""Softmax multi-head attention with explicit matmuls (so FLOP counters see every MAC).

``attend`` is the core; ``SelfAttention`` is IntagHand's pre-LN transformer block
(x + fc(attn(LN x)), then x + fc2(relu(fc1(LN x))), hidden width = model width).
"""
from __future__ import annotations

import torch
from torch import nn


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, dropout: nn.Module | None = None
           ) -> torch.Tensor:
    """Scaled dot-product attention, heads split from the channel axis.

    Args:
        q: (B, N, C), k: (B, M, C), v: (B, M, Cv).

    Returns:
        (B, N, Cv).
    """
    b, n, c = q.shape
    m = k.shape[1]
    q = q.reshape(b, n, heads, -1).transpose(1, 2)
    k = k.reshape(b, m, heads, -1).transpose(1, 2)
    v = v.reshape(b, m, heads, -1).transpose(1, 2)
    a = torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    a = a.softmax(-1)
    if dropout is not None:
        a = dropout(a)
    return torch.matmul(a, v).transpose(1, 2).reshape(b, n, -1)


class MultiHeadAttention(nn.Module):
    """Q/K/V/output projections around ``attend``; keys and values may come from another set."""

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.fc = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        c = x if context is None else context
        return self.fc(attend(self.q(x), self.k(c), self.v(c), self.heads, self.drop))


class MLP(nn.Module):
    """Pre-LN residual MLP: x + fc2(act(fc1(LN x)))."""

    def __init__(self, dim: int, hidden: int | None = None, dropout: float = 0.0, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        hidden = hidden or dim
        self.norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.act, self.drop = act(), nn.Dropout(dropout)

    def forward(self, x):
        return x + self.drop(self.fc2(self.act(self.fc1(self.norm(x)))))


class SelfAttention(nn.Module):
    """IntagHand's pre-LN transformer block over a token set (B, N, C)."""

    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, dropout)
        self.mlp = MLP(dim, dim, dropout)

    def forward(self, x):
        x = x + self.attn(self.norm(x))
        return self.mlp(x)
