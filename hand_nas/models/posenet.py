"""InterNet's pose head (Moon et al., ECCV 2020): 3D joint heatmaps from ResNet-50's last map.

Two identical branches (one per hand): stride-2 4x4 deconvolutions (BN, ReLU) to 64x64, then a 1x1
conv to 21 x 64 depth bins, i.e. a 21x64x64x64 3D heatmap; plus a root-depth MLP (2048-512-64 bins)
and a handedness MLP (2048-512-2) on the pooled feature. Joints come from a soft-argmax: (u, v) in
[-1, 1] image coordinates and a relative depth in metres over InterNet's 400 mm box. The model
predicts no mesh, so ``HandOutput.verts`` is None.
"""
from __future__ import annotations

import torch
from torch import nn

from hand_nas.config import PoseNetCfg
from hand_nas.models.output import HandOutput

DEPTH_BOX_M = 0.4


def _mlp(dims):
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class PoseNet(nn.Module):
    def __init__(self, cfg: PoseNetCfg, in_channels: int = 2048, global_dim: int = 2048) -> None:
        super().__init__()
        self.bins = cfg.depth_bins
        branches = []
        for _ in range(2):
            layers, cin = [], in_channels
            for _ in range(cfg.deconvs):
                layers += [nn.ConvTranspose2d(cin, cfg.channels, 4, 2, 1, bias=False), nn.BatchNorm2d(cfg.channels),
                           nn.ReLU(inplace=True)]
                cin = cfg.channels
            layers.append(nn.Conv2d(cin, 21 * cfg.depth_bins, 1))
            branches.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(branches)
        self.root_fc = _mlp([global_dim, 512, cfg.depth_bins])
        self.hand_fc = _mlp([global_dim, 512, 2])

    def forward(self, feats) -> HandOutput:
        c32 = feats.maps[3]
        joints = []
        for h in (1, 0):  # InterNet's first branch is the right hand
            hm = self.branches[h](c32)
            b, _, hh, ww = hm.shape
            prob = hm.reshape(b, 21, -1).softmax(-1).reshape(b, 21, self.bins, hh, ww)
            ramp = lambda n: torch.linspace(-1, 1, n, device=hm.device)  # noqa: E731
            u = (prob.sum((2, 3)) * ramp(ww)).sum(-1)
            v = (prob.sum((2, 4)) * ramp(hh)).sum(-1)
            z = (prob.sum((3, 4)) * ramp(self.bins)).sum(-1) * DEPTH_BOX_M / 2
            joints.append(torch.stack([u, v, z], -1))
        joints = torch.stack(joints[::-1], 1)  # left first
        root_prob = self.root_fc(feats.global_feat).softmax(-1)
        rel = (root_prob * torch.linspace(-1, 1, self.bins, device=root_prob.device)).sum(-1, keepdim=True)
        self.hand_fc(feats.global_feat)  # handedness logits (part of InterNet's cost)
        rel_root = torch.cat([torch.zeros_like(rel), torch.zeros_like(rel), rel * DEPTH_BOX_M], -1)
        return HandOutput(verts=None, joints=joints, rel_root=rel_root)
