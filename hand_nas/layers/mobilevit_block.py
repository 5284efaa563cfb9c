"""MobileViTv3 block (v1 family, as in MobileViTv3-XXS/XS/S).

Local: depthwise 3x3 (BN, SiLU) -> 1x1 to the transformer width d. Global: unfold 2x2 patches
(P = 4 pixel positions, N = HW/4 patches), L pre-LN transformer layers over N for every pixel
position, LN, fold, 1x1 d -> C (BN, SiLU). Fusion: 1x1 on concat(local d, global C) -> C (BN,
SiLU), plus the input residual. Attention is softmax MHSA (the published XXS) or MobileViTv2's
separable linear attention (LAGCHand's "linear attention encoder").
"""
from __future__ import annotations

import torch
from torch import nn

from hand_nas.layers.attention import attend
from hand_nas.layers.conv import conv_bn
from hand_nas.layers.separable_attention import SeparableAttention


class SoftmaxTokens(nn.Module):
    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, p, n, d = x.shape
        q, k, v = self.qkv(x.reshape(b * p, n, d)).chunk(3, dim=-1)
        return self.proj(attend(q, k, v, self.heads)).reshape(b, p, n, d)


class _Layer(nn.Module):
    def __init__(self, dim: int, ffn: int, attention: str, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SeparableAttention(dim) if attention == "separable" else SoftmaxTokens(dim, heads)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.SiLU(), nn.Linear(ffn, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class MobileViTBlock(nn.Module):
    def __init__(self, channels: int, dim: int, layers: int, attention: str = "softmax", heads: int = 4) -> None:
        super().__init__()
        if attention not in ("softmax", "separable"):
            raise ValueError(f"attention {attention!r}: expected 'softmax' or 'separable'")
        self.local = nn.Sequential(conv_bn(channels, channels, 3, groups=channels, act=nn.SiLU),
                                   nn.Conv2d(channels, dim, 1, bias=False))
        self.layers = nn.Sequential(*[_Layer(dim, 2 * dim, attention, heads) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.proj = conv_bn(dim, channels, 1, act=nn.SiLU)
        self.fuse = conv_bn(dim + channels, channels, 1, act=nn.SiLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        local = self.local(x)
        d = local.shape[1]
        # (B, d, H, W) -> (B, P=4, N=HW/4, d): pixel position within the 2x2 patch, then patch.
        t = local.reshape(b, d, h // 2, 2, w // 2, 2).permute(0, 3, 5, 2, 4, 1).reshape(b, 4, -1, d)
        t = self.norm(self.layers(t))
        g = t.reshape(b, 2, 2, h // 2, w // 2, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, h, w)
        g = self.proj(g)
        return x + self.fuse(torch.cat([local, g], 1))
