"""The two-hand network: ``image`` (the papers' image part) then ``pose`` (the pose part)."""
from __future__ import annotations

import torch
from torch import nn

from hand_nas.config import ModelCfg
from hand_nas.models.image_part import ImagePart
from hand_nas.models.output import HandOutput
from hand_nas.registry import HEADS


class TwoHandNet(nn.Module):
    """Image (B, 3, H, W) in [0, 1], H and W multiples of 32 -> ``HandOutput``.

    The module names ``image`` and ``pose`` are the FLOPs split of the papers' tables.
    """

    def __init__(self, cfg: ModelCfg, mano_dir=None) -> None:
        super().__init__()
        self.cfg = cfg
        self.image = ImagePart(cfg)
        self.pose = HEADS.get(cfg.head)(cfg, self.image, mano_dir)

    def forward(self, image: torch.Tensor) -> HandOutput:
        if not torch.jit.is_tracing() and (image.shape[-1] % 32 or image.shape[-2] % 32):
            raise ValueError(f"input {tuple(image.shape[-2:])}: height and width must be multiples of 32")
        feats = self.image(image)
        out = self.pose(feats)
        out.heatmaps, out.masks, out.dense = feats.heatmaps, feats.masks, feats.dense
        return out


def build_model(cfg: ModelCfg, mano_dir=None) -> TwoHandNet:
    """The network described by ``cfg`` (weights freshly initialised)."""
    return TwoHandNet(cfg, mano_dir)


@HEADS.register("posenet")
def posenet_head(cfg: ModelCfg, image: ImagePart, mano_dir=None) -> nn.Module:
    """InterNet's PoseNet on the encoder's last map and global feature."""
    from hand_nas.models.posenet import PoseNet

    info = image.encoder.info
    return PoseNet(cfg.posenet, info.channels[3], info.global_dim)


@HEADS.register("graph")
def graph_head(cfg: ModelCfg, image: ImagePart, mano_dir=None) -> nn.Module:
    """The graph decoder over the hand mesh hierarchy, reading the image part's fused maps and tokens."""
    from hand_nas.hand.hierarchy import load_hierarchy
    from hand_nas.hand.mano import hand_topology
    from hand_nas.models.graph_decoder import GraphDecoder

    topo = hand_topology(mano_dir)
    info = image.encoder.info
    return GraphDecoder(cfg, image.global_dim, image.fmap_channels, (info.token_dim, info.tokens),
                        load_hierarchy(topo.faces), topo)
