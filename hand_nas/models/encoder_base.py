"""What every encoder returns, and how it announces its channels (timm's feature_info idea)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class EncoderOut:
    """Encoder features.

    Attributes:
        maps: feature maps at strides 4, 8, 16, 32 (finest first), (B, C_s, H/s, W/s).
        global_feat: (B, C_g) pooled global feature.
        tokens: (B, M, d) global tokens (Mobile-Former), or None.
    """

    maps: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    global_feat: torch.Tensor
    tokens: torch.Tensor | None = None


@dataclass(frozen=True)
class FeatureInfo:
    """Channels of an encoder's outputs: maps at strides 4/8/16/32, global width, token width (0 = none)."""

    channels: tuple[int, int, int, int]
    global_dim: int
    token_dim: int = 0
    tokens: int = 0
