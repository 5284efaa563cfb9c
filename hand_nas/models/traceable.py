"""The one adapter from a model's ``HandOutput`` to the tuple of tensors that tracers need.

fvcore's JIT trace, torch-pruning's dependency graph and the ONNX exporter all want plain tensor
outputs. ``ALL_OUTPUTS`` keeps every head (a trace drops what no output reads, so counting MACs
must see them all); ``DEPLOY_OUTPUTS`` are what a deployed model returns (meshes, joints, camera).
"""
from __future__ import annotations

from dataclasses import fields

import torch
from torch import nn

from hand_nas.models.output import HandOutput

ALL_OUTPUTS = tuple(f.name for f in fields(HandOutput))
DEPLOY_OUTPUTS = ("verts", "joints", "camera", "rel_root", "verts2d")


def output_tensors(out: HandOutput, names=ALL_OUTPUTS) -> tuple[torch.Tensor, ...]:
    """The present (non-None) outputs among ``names``, in that order."""
    return tuple(getattr(out, k) for k in names if getattr(out, k) is not None)


def present_outputs(model: nn.Module, size: int, names=DEPLOY_OUTPUTS) -> list[str]:
    """Names of the outputs among ``names`` a model produces (one forward pass at ``size``)."""
    was = model.training
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 3, size, size))
    model.train(was)
    return [k for k in names if getattr(out, k) is not None]


class TupleOutputs(nn.Module):
    """Wraps a two-hand model so that it returns ``output_tensors(out, names)``.

    The child is named ``net``: exported ONNX node names start with ``/net/`` and fvcore's
    per-module counts with ``net.`` (``net.image``, ``net.pose``).
    """

    def __init__(self, net: nn.Module, names=ALL_OUTPUTS) -> None:
        super().__init__()
        self.net, self.names = net, tuple(names)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return output_tensors(self.net(image), self.names)
