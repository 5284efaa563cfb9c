"""ResNet-50 written with torch.nn (torchvision's v1.5 layout: stride in the 3x3 conv).

The trunk of IntagHand and InterNet. No torchvision CPU build exists for this torch, so the few
layers are written here; parameter names follow torchvision's, so its ImageNet weights load with
``load_state_dict`` where they are available.
"""
from __future__ import annotations

import torch
from torch import nn

from hand_nas.config import EncoderCfg
from hand_nas.models.encoder_base import EncoderOut, FeatureInfo
from hand_nas.registry import ENCODERS


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


@ENCODERS.register("resnet50")
class ResNet50(nn.Module):
    def __init__(self, cfg: EncoderCfg | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, layers = 64, []
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            seq = [Bottleneck(cin, width, stride)] + [Bottleneck(width * 4, width) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*seq))
            cin = width * 4
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.info = FeatureInfo((256, 512, 1024, 2048), 2048)

    def forward(self, x: torch.Tensor) -> EncoderOut:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c4 = self.layer1(x)
        c8 = self.layer2(c4)
        c16 = self.layer3(c8)
        c32 = self.layer4(c16)
        return EncoderOut((c4, c8, c16, c32), self.pool(c32).flatten(1))
