"""Cross-hand attention between the two hands' vertex features, one class per registered type.

Every module maps (left, right), each (B, V, C), to updated (left, right).

* ``softmax``: IntagHand's CHA: self-attention on each hand, pre-LN cross attention with shared
  Q/K/V/output projections in both directions, then a residual MLP per hand.
* ``separable``: LWA-HAND's linear cross attention: MobileViTv2 separable attention in cross mode
  (scores and keys from the other hand, values from this one), merged by a pointwise MLP.
* ``elementwise``: LAGCHand's mixing HF_L = beta H_L + (1 - beta) H_R, HF_R = alpha H_R + (1 - alpha)
  H_L with learned per-channel alpha, beta.
* ``none``: identity.
"""
from __future__ import annotations

import torch
from torch import nn

from hand_nas.layers.attention import MLP, MultiHeadAttention, SelfAttention
from hand_nas.layers.separable_attention import SeparableAttention
from hand_nas.registry import CROSS_HAND


@CROSS_HAND.register("softmax")
class SoftmaxCrossHand(nn.Module):
    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_l, self.self_r = SelfAttention(dim, heads, dropout), SelfAttention(dim, heads, dropout)
        self.norm_l, self.norm_r = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.cross = MultiHeadAttention(dim, heads, dropout)
        self.mlp_l, self.mlp_r = MLP(dim, dim, dropout), MLP(dim, dim, dropout)

    def forward(self, left, right):
        left, right = self.self_l(left), self.self_r(right)
        nl, nr = self.norm_l(left), self.norm_r(right)
        left = left + self.cross(nl, nr)
        right = right + self.cross(nr, nl)
        return self.mlp_l(left), self.mlp_r(right)


@CROSS_HAND.register("separable")
class SeparableCrossHand(nn.Module):
    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm_l, self.norm_r = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SeparableAttention(dim, dropout)
        self.mlp_l, self.mlp_r = MLP(dim, dim, dropout), MLP(dim, dim, dropout)

    def forward(self, left, right):
        nl, nr = self.norm_l(left), self.norm_r(right)
        left = left + self.attn(nl, context=nr)
        right = right + self.attn(nr, context=nl)
        return self.mlp_l(left), self.mlp_r(right)


@CROSS_HAND.register("elementwise")
class ElementwiseCrossHand(nn.Module):
    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        # Start mostly self (sigmoid(2) ~ 0.88): a hand first trusts its own features.
        self.alpha = nn.Parameter(torch.full((dim,), 2.0))
        self.beta = nn.Parameter(torch.full((dim,), 2.0))

    def forward(self, left, right):
        a, b = torch.sigmoid(self.alpha), torch.sigmoid(self.beta)
        return b * left + (1 - b) * right, a * right + (1 - a) * left


@CROSS_HAND.register("none")
class NoCrossHand(nn.Module):
    def __init__(self, dim: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()

    def forward(self, left, right):
        return left, right
