"""Mobile-Former's bridges and Former, after the paper and its reference code.

* ``MobileToFormer``: lightweight cross attention from the feature map into M global tokens. Only
  W^Q (tokens -> C) and the output projection W^O (C -> d) exist; keys = values = the raw pixels,
  split into heads along channels. Residual + post-LayerNorm on the tokens.
* ``Former``: attention among the tokens with only a query projection (k = v = tokens), output
  projection, residual + LN, then an FFN (x2, GELU) with residual + LN.
* ``FormerToMobile``: pixels attend to the tokens; W^K, W^V on the token side only, no pixel-side
  projections; the result is added to the feature map.

The code's dynamic channel gate on Mobile->Former and DyReLU in the Mobile blocks are left out:
they are element-wise (uncounted) and not part of LWA-HAND's description.
"""
from __future__ import annotations

import torch
from torch import nn

from hand_nas.layers.attention import attend


class MobileToFormer(nn.Module):
    def __init__(self, channels: int, token_dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(token_dim, channels, bias=False)
        self.out = nn.Linear(channels, token_dim)
        self.norm = nn.LayerNorm(token_dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) features, z: (B, M, d) tokens -> updated tokens."""
        pix = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        return self.norm(z + self.out(attend(self.q(z), pix, pix, self.heads)))


class Former(nn.Module):
    def __init__(self, token_dim: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(token_dim, token_dim, bias=False)
        self.out = nn.Linear(token_dim, token_dim)
        self.norm1 = nn.LayerNorm(token_dim)
        self.ffn = nn.Sequential(nn.Linear(token_dim, 2 * token_dim), nn.GELU(), nn.Linear(2 * token_dim, token_dim))
        self.norm2 = nn.LayerNorm(token_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.norm1(z + self.out(attend(self.q(z), z, z, self.heads)))
        return self.norm2(z + self.ffn(z))


class FormerToMobile(nn.Module):
    def __init__(self, channels: int, token_dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.k = nn.Linear(token_dim, channels, bias=False)
        self.v = nn.Linear(token_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        pix = x.flatten(2).transpose(1, 2)
        out = attend(pix, self.k(z), self.v(z), self.heads)
        return x + out.transpose(1, 2).reshape(b, c, h, w)
