"""The deployment graph: fp32 ONNX export of a two-hand model, the one exporter hand-nas has.

``hand-nas cost --latency`` times this graph and compression bundles ship it (``compress``
builds its int8 graphs from the same export), so a latency figure always belongs to the graph a
user deploys. TorchScript exporter (``dynamo=False``): the dynamo path keeps quantization scales
as graph inputs and onnxruntime cannot fuse them (reference: peer_tools_and_pitfalls §3d).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from hand_nas.models.hand_batched import hand_batched
from hand_nas.models.traceable import DEPLOY_OUTPUTS, TupleOutputs, present_outputs

OPSET = 17


def export_onnx(model: nn.Module, path: str | Path, size: int = 256, batch: int = 1, batched: bool = True) -> Path:
    """Write ``model``'s deployment outputs (``DEPLOY_OUTPUTS``, named) as fp32 ONNX at batch x 3 x S x S.

    The graph is that of ``hand_batched(model)``: the two hands' identical computations as one batched op
    (``batched=False``: the training module's per-hand graph, which onnxruntime's static int8 quantizer
    needs: its per-channel QLinearMatMul takes no stacked (2, 1, C, D) weight).
    """
    path = Path(path)
    was = model.training
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TupleOutputs(hand_batched(model.eval()) if batched else model, DEPLOY_OUTPUTS).eval(), (torch.rand(batch, 3, size, size),), str(path),
                          opset_version=OPSET, input_names=["image"],
                          output_names=present_outputs(model, size), dynamo=False)
    model.train(was)
    return path
