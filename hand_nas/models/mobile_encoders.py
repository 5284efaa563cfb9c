"""Mobile encoders built from stage configs: MobileNetV2, Mobile-Former and MobileViTv3.

All three share the layout: a stride-2 stem, then ``EncoderCfg.stages``; each stage's first block
strides; the last stage output at each stride 4/8/16/32 becomes a feature map; an optional 1x1
expansion follows the last stage; the global feature is its average pool.

* mobilenet_v2: inverted residual blocks.
* mobile_former: every block is Mobile-Former's pair: Mobile->Former (tokens read the block input),
  the Former on the tokens, the inverted residual (Mobile), and optionally Former->Mobile. LWA-HAND
  keeps only the local->global direction (``former_to_mobile=False``).
* mobilevit_v3: inverted residual blocks; a stage with ``attn_dim`` > 0 ends in a MobileViTv3 block
  with ``attn_layers`` transformer layers (softmax or separable attention).
"""
from __future__ import annotations

import torch
from torch import nn

from hand_nas.config import EncoderCfg
from hand_nas.layers.conv import InvertedResidual, conv_bn
from hand_nas.layers.mobile_former import Former, FormerToMobile, MobileToFormer
from hand_nas.layers.mobilevit_block import MobileViTBlock
from hand_nas.models.encoder_base import EncoderOut, FeatureInfo
from hand_nas.registry import ENCODERS


class _DnaBlock(nn.Module):
    """One Mobile-Former block: (features, tokens) -> (features, tokens)."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: float, token_dim: int, heads: int,
                 former_to_mobile: bool, with_tokens: bool = True) -> None:
        super().__init__()
        self.m2f = MobileToFormer(cin, token_dim, heads) if with_tokens else None
        self.former = Former(token_dim) if with_tokens else None
        self.mobile = InvertedResidual(cin, cout, stride, expansion)
        self.f2m = FormerToMobile(cout, token_dim, heads) if former_to_mobile else None

    def forward(self, x, z):
        if self.m2f is not None:
            z = self.former(self.m2f(x, z))
        x = self.mobile(x)
        if self.f2m is not None:
            x = self.f2m(x, z)
        return x, z


class _StageEncoder(nn.Module):
    def __init__(self, cfg: EncoderCfg, act: type[nn.Module] = nn.ReLU6) -> None:
        super().__init__()
        if len(cfg.stages) == 0:
            raise ValueError("encoder.stages: at least one stage is needed")
        self.cfg = cfg
        self.stem = conv_bn(3, cfg.stem, 3, 2, act=act)
        blocks, taps, width, stride, cin = [], {}, {}, 2, cfg.stem
        for s in cfg.stages:
            for i in range(s.depth):
                blocks.append(self._block(cin, s.width, s.stride if i == 0 else 1, s.expansion))
                cin = s.width
            stride *= s.stride
            if s.attn_dim > 0:
                blocks.append(MobileViTBlock(cin, s.attn_dim, s.attn_layers, cfg.attention))
            taps[stride], width[stride] = len(blocks) - 1, cin  # the last stage at a stride is its tap
        if sorted(taps)[-4:] != [4, 8, 16, 32]:
            raise ValueError(f"encoder.stages: strides reached {sorted(taps)}, need 4, 8, 16 and 32")
        self.blocks = nn.ModuleList(blocks)
        self.taps = {taps[s]: k for k, s in enumerate((4, 8, 16, 32))}
        chans = [width[s] for s in (4, 8, 16, 32)]
        self.head = conv_bn(chans[3], cfg.head_channels, 1, act=act) if cfg.head_channels else None
        if self.head is not None:
            chans[3] = cfg.head_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.info = FeatureInfo(tuple(chans), chans[3])

    def _block(self, cin, cout, stride, expansion) -> nn.Module:
        return InvertedResidual(cin, cout, stride, expansion)

    def _features(self, x):
        x = self.stem(x)
        maps = [None] * 4
        for idx, blk in enumerate(self.blocks):
            x = blk(x)
            if idx in self.taps:
                maps[self.taps[idx]] = x
        return maps

    def forward(self, x: torch.Tensor) -> EncoderOut:
        maps = self._features(x)
        if self.head is not None:
            maps[3] = self.head(maps[3])
        return EncoderOut(tuple(maps), self.pool(maps[3]).flatten(1))


@ENCODERS.register("mobilenet_v2")
class MobileNetV2Encoder(_StageEncoder):
    pass


@ENCODERS.register("mobilevit_v3")
class MobileViTv3Encoder(_StageEncoder):
    def __init__(self, cfg: EncoderCfg) -> None:
        super().__init__(cfg, act=nn.SiLU)


@ENCODERS.register("mobile_former")
class MobileFormerEncoder(_StageEncoder):
    """``tokens_read``: something downstream reads the tokens (a ``light_cross`` bridge). Without it and
    without Former->Mobile the token path is dead code: it is not built (fvcore and ONNX drop it anyway,
    and structured pruning cannot see, so cannot keep consistent, layers whose output reaches nothing)."""

    has_tokens = True

    def __init__(self, cfg: EncoderCfg, tokens_read: bool = True) -> None:
        if not 1 <= cfg.tokens <= 6:
            raise ValueError(f"encoder.tokens: {cfg.tokens}; Mobile-Former uses 1..6 global tokens")
        self.token_path = cfg.former_to_mobile or tokens_read
        super().__init__(cfg)
        self.tokens = nn.Parameter(torch.randn(cfg.tokens, cfg.token_dim) * 0.02) if self.token_path else None
        self.info = FeatureInfo(self.info.channels, self.info.global_dim, cfg.token_dim, cfg.tokens)

    def _block(self, cin, cout, stride, expansion) -> nn.Module:
        c = self.cfg
        return _DnaBlock(cin, cout, stride, expansion, c.token_dim, c.bridge_heads, c.former_to_mobile, self.token_path)

    def forward(self, x: torch.Tensor) -> EncoderOut:
        x = self.stem(x)
        z = self.tokens.reshape(1, *self.tokens.shape).expand(x.shape[0], -1, -1) if self.tokens is not None else None
        maps = [None] * 4
        for idx, blk in enumerate(self.blocks):
            x, z = blk(x, z) if isinstance(blk, _DnaBlock) else (blk(x), z)
            if idx in self.taps:
                maps[self.taps[idx]] = x
        if self.head is not None:
            maps[3] = self.head(maps[3])
        return EncoderOut(tuple(maps), self.pool(maps[3]).flatten(1), z)
