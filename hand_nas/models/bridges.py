"""Image -> graph bridges: how a level's image features reach the vertex features of one hand.

* ``mhsa``: IntagHand's PIFA. The level's map becomes g x g grid tokens (a patch conv of stride
  H_l / g, ReLU, learned position embedding, self-attention at the grid width); the grid tokens are
  projected to the vertex width, appended after the vertex tokens, and one self-attention runs over
  both; the vertex part is kept.
* ``light_cross``: LWA-HAND's bridge. Global tokens Z read the level's map through Mobile->Former
  lightweight cross attention (only W^Q and W^O; keys = values = the map pooled to g x g pixels),
  are mapped to the vertex width (M_i = W Z_i) and fused directly into the vertices: each vertex adds
  a softmax-weighted mix of the M token features, with no further projections.
* ``none``: no bridge.

Bridges for the two hands are separate modules; ``light_cross`` shares the token update per level.

Each registered class carries its traits, read by the image part, the graph decoder, the validator and
the cost model instead of its name: ``reads_tokens`` (the encoder's global tokens reach it through a
``TokenUpdate`` per level), ``reads_maps`` (the image part fuses maps for it) and ``min_input`` (the
smallest input side it runs on). Its MAC formula, deployment form and latency features are tables
keyed by the class (``cost.analytic.BRIDGE_MACS``, ``models.hand_batched.DEPLOY_BRIDGE``,
``cost.predictor.BRIDGE_FEATURES``); ``tests/test_registry_traits.py`` checks every registered class has all.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from hand_nas.layers.attention import SelfAttention, attend
from hand_nas.layers.mobile_former import MobileToFormer
from hand_nas.registry import BRIDGES


def map_side(level: int, size: int = 256) -> int:
    """Side of pyramid level ``level``'s fused map on a ``size`` input (stride 32, doubling per level); the
    bridges' weights are laid out for ``size`` 256."""
    return size // 32 * 2 ** level


@BRIDGES.register("mhsa")
class PifaBridge(nn.Module):
    reads_tokens, reads_maps = False, True

    @staticmethod
    def min_input(image_tokens: int) -> int:
        """The patch convolution needs at least one pixel per grid cell on the coarsest map."""
        return 256 // max(1, math.isqrt(image_tokens))

    def __init__(self, fmap_channels: int, fmap_size: int, dim: int, grid_dim: int, image_tokens: int = 64,
                 heads: int = 4, dropout: float = 0.0, token_dim: int = 0, tokens: int = 0) -> None:
        super().__init__()
        g = math.isqrt(image_tokens)
        if g * g != image_tokens or fmap_size % g:
            raise ValueError(f"bridge.image_tokens {image_tokens}: must be a square whose side divides {fmap_size}")
        p = fmap_size // g
        self.to_grid = nn.Conv2d(fmap_channels, grid_dim, p, p)
        self.grid_pos = nn.Parameter(torch.randn(image_tokens, grid_dim) * 0.02)
        self.grid_attn = SelfAttention(grid_dim, heads, dropout)
        self.grid_proj = nn.Linear(grid_dim, dim)
        self.joint_attn = SelfAttention(dim, heads, dropout)

    def forward(self, verts: torch.Tensor, fmap: torch.Tensor, tokens=None) -> torch.Tensor:
        grid = torch.relu(self.to_grid(fmap))
        pos = self.grid_pos
        if grid.shape[-2] * grid.shape[-1] != pos.shape[0]:  # trained below 256: fewer grid cells
            g = math.isqrt(pos.shape[0])
            pos = nn.functional.interpolate(pos.T.reshape(1, -1, g, g), size=grid.shape[-2:], mode="bilinear",
                                            align_corners=False).reshape(pos.shape[1], -1).T
        grid = grid.flatten(2).transpose(1, 2) + pos
        grid = self.grid_proj(self.grid_attn(grid))
        n = verts.shape[1]
        return self.joint_attn(torch.cat([verts, grid], 1))[:, :n]


@BRIDGES.register("light_cross")
class LightCrossBridge(nn.Module):
    """Per hand: vertices gather the level's token features (the token update is shared, see TokenUpdate)."""

    reads_tokens, reads_maps = True, True

    @staticmethod
    def min_input(image_tokens: int) -> int:
        return 0

    def __init__(self, fmap_channels: int, fmap_size: int, dim: int, grid_dim: int = 0, image_tokens: int = 64,
                 heads: int = 2, dropout: float = 0.0, token_dim: int = 0, tokens: int = 0) -> None:
        super().__init__()

    def forward(self, verts: torch.Tensor, fmap: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return verts + attend(verts, tokens, tokens, heads=1)


class TokenUpdate(nn.Module):
    """Shared part of ``light_cross``: Z <- MobileToFormer(pooled map, Z); M = W Z (vertex width)."""

    def __init__(self, fmap_channels: int, token_dim: int, dim: int, image_tokens: int, heads: int = 2) -> None:
        super().__init__()
        g = math.isqrt(image_tokens)
        if g * g != image_tokens:
            raise ValueError(f"bridge.image_tokens {image_tokens}: must be a square number")
        self.pool = nn.AdaptiveAvgPool2d(g)
        self.m2f = MobileToFormer(fmap_channels, token_dim, heads)
        self.to_vertex = nn.Linear(token_dim, dim)

    def forward(self, fmap: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # A map smaller than g x g (inputs below 256 px) would be "pooled" by replicating each pixel
        # equally often, which leaves the attention unchanged: use it as it is (ONNX cannot export
        # an adaptive pool that upsamples).
        g = self.pool.output_size
        small = fmap.shape[-1] < g and g % fmap.shape[-1] == 0 and fmap.shape[-2] == fmap.shape[-1]
        z = self.m2f(fmap if small else self.pool(fmap), z)
        return z, self.to_vertex(z)


@BRIDGES.register("none")
class NoBridge(nn.Module):
    reads_tokens, reads_maps = False, False

    @staticmethod
    def min_input(image_tokens: int) -> int:
        return 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, verts, fmap, tokens=None):
        return verts
