"""The image part: encoder, image decoders (heatmaps, segmentation) and fusion into per-level maps.

Everything here is the "image part" of the papers' FLOPs split; the graph decoder that consumes
``ImageFeatures`` is the "pose part".

Decoders follow IntagHand's "simple" decoder: 1x1 conv from the deepest map, then three stages of
bilinear x2 upsampling and a 3x3 conv (conv -> ReLU -> BN), and a final 1x1 head at stride 4. Fusion
follows IntagHand's mid model: at each graph level (strides 32, 16, 8) a 1x1 conv over the decoders'
stage features (and, past level 0, the encoder map at that stride).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hand_nas.config import DecoderCfg, ModelCfg
from hand_nas.layers.conv import conv_bn
from hand_nas.registry import BRIDGES, DECODERS, ENCODERS

DECODER_OUT = {"heatmap2d": 42, "heatmap25d": 84, "segmentation": 8}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ImageFeatures:
    """Image-part outputs.

    Attributes:
        fmaps: per graph level (coarsest first), (B, C_l, H/32 * 2^l, W/32 * 2^l).
        global_feat: (B, C_g).
        tokens: (B, M, d) global tokens or None.
        maps: the encoder's maps at strides 4/8/16/32.
        heatmaps: (B, 42, H/4, W/4) 2D joint heatmap logits (left hand's 21 first), or None.
        depth: (B, 42, H/4, W/4) per-joint relative depth maps (2.5D decoders), or None.
        masks: (B, 2, H/4, W/4) hand mask logits (left, right), or None.
        dense: (B, 6, H/4, W/4) dense-correspondence colours, or None.
    """

    fmaps: tuple[torch.Tensor, ...]
    global_feat: torch.Tensor
    tokens: torch.Tensor | None
    maps: tuple[torch.Tensor, ...]
    heatmaps: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    dense: torch.Tensor | None = None


class SimpleDecoder(nn.Module):
    """Deepest map -> stride 4 in three bilinear x2 stages; returns (output, stage features)."""

    def __init__(self, cin: int, cfg: DecoderCfg) -> None:
        super().__init__()
        if cfg.kind not in DECODER_OUT:
            raise ValueError(f"decoder kind {cfg.kind!r}: expected one of {sorted(DECODER_OUT)}")
        ch = cfg.channels
        self.stages = nn.ModuleList([conv_bn(cin, ch, 1, act=nn.ReLU, act_first=True)])
        for _ in range(3):
            if cfg.separable:
                conv = nn.Sequential(conv_bn(ch, ch, 3, groups=ch, act=nn.ReLU, act_first=True),
                                     conv_bn(ch, ch, 1, act=nn.ReLU, act_first=True))
            else:
                conv = conv_bn(ch, ch, 3, act=nn.ReLU, act_first=True)
            self.stages.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), conv))
        self.final = nn.Conv2d(ch, DECODER_OUT[cfg.kind], 1)

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return self.final(x), feats


for _kind in DECODER_OUT:
    DECODERS.register(_kind)(SimpleDecoder)


class ImagePart(nn.Module):
    def __init__(self, cfg: ModelCfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        enc_cls = ENCODERS.get(cfg.encoder.type)
        bridge_cls = BRIDGES.get(cfg.bridge.attention)
        extra = {"tokens_read": bridge_cls.reads_tokens} if getattr(enc_cls, "has_tokens", False) else {}
        self.encoder = enc_cls(cfg.encoder, **extra)
        info = self.encoder.info
        self.decoders = nn.ModuleDict({d.kind: DECODERS.get(d.kind)(info.channels[3], d) for d in cfg.decoders})
        if len(self.decoders) != len(cfg.decoders):
            raise ValueError("decoders: each kind may appear once")
        self.fusion = nn.ModuleList()
        fmap_channels = []
        if cfg.head == "graph" and bridge_cls.reads_maps:  # only bridges read the fused maps
            levels = cfg.bridge.levels
            if len(cfg.fusion.channels) < levels:
                raise ValueError(f"fusion.channels: {len(cfg.fusion.channels)} values for {levels} bridge levels")
            for lvl in range(levels):
                cin = sum(d.channels for d in cfg.decoders)
                if cfg.fusion.with_encoder and lvl > 0 or not cfg.decoders:
                    cin += info.channels[3 - lvl]
                self.fusion.append(conv_bn(cin, cfg.fusion.channels[lvl], 1, act=nn.ReLU, act_first=True))
                fmap_channels.append(cfg.fusion.channels[lvl])
        gdim = cfg.fusion.global_dim
        self.global_proj = nn.Linear(info.global_dim, gdim) if gdim else None
        self.global_dim = gdim or info.global_dim
        self.fmap_channels = tuple(fmap_channels) or (0,) * cfg.bridge.levels

    def forward(self, image: torch.Tensor) -> ImageFeatures:
        x = (image - self.mean) / self.std
        enc = self.encoder(x)
        outs, stage_feats = {}, []
        for kind, dec in self.decoders.items():
            out, feats = dec(enc.maps[3])
            outs[kind] = out
            stage_feats.append(feats)
        fmaps = []
        for lvl, fuse in enumerate(self.fusion):
            parts = [f[lvl] for f in stage_feats]
            if self.cfg.fusion.with_encoder and lvl > 0 or not stage_feats:
                parts.append(enc.maps[3 - lvl])
            fmaps.append(fuse(torch.cat(parts, 1) if len(parts) > 1 else parts[0]))
        g = enc.global_feat if self.global_proj is None else self.global_proj(enc.global_feat)
        feats = ImageFeatures(tuple(fmaps), g, enc.tokens, enc.maps)
        if "heatmap2d" in outs:
            feats.heatmaps = outs["heatmap2d"]
        if "heatmap25d" in outs:
            feats.heatmaps, feats.depth = outs["heatmap25d"].split(42, dim=1)
        if "segmentation" in outs:
            feats.masks, feats.dense = outs["segmentation"].split([2, 6], dim=1)
        return feats
