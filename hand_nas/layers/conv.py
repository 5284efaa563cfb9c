"""Convolution + BatchNorm + activation, and MobileNetV2's inverted residual."""
from __future__ import annotations

from torch import nn


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = nn.ReLU,
            act_first: bool = False) -> nn.Sequential:
    """Conv (no bias) -> BN -> act, or conv -> act -> BN with ``act_first`` (IntagHand's order)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)]
    bn = nn.BatchNorm2d(cout)
    if act is None:
        layers.append(bn)
    elif act_first:
        layers += [act(inplace=True) if act in (nn.ReLU, nn.ReLU6) else act(), bn]
    else:
        layers += [bn, act(inplace=True) if act in (nn.ReLU, nn.ReLU6) else act()]
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise (stride) -> 1x1 project, identity skip if shapes match."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expansion: float = 4.0,
                 act: type[nn.Module] = nn.ReLU6) -> None:
        super().__init__()
        hidden = int(round(cin * expansion))
        layers: list[nn.Module] = []
        if hidden != cin:
            layers.append(conv_bn(cin, hidden, 1, act=act))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=act), conv_bn(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.skip else y
