"""The hand-batched deployment decoder equals the training module and halves the per-hand nodes."""
from __future__ import annotations

import warnings
from collections import Counter

import pytest
import torch

from hand_nas.cost.flops import model_cost
from hand_nas.export import OPSET, export_onnx
from hand_nas.models import build_model
from hand_nas.models.hand_batched import HandBatchedNet, hand_batched
from hand_nas.models.traceable import DEPLOY_OUTPUTS, TupleOutputs
from tests.model_configs import small_model

CASES = [("light_cross", "separable", 2, False), ("mhsa", "softmax", 2, False), ("none", "elementwise", 3, False),
         ("light_cross", "none", 1, False), ("light_cross", "separable", 2, True)]


def _model(bridge, cross, order, levels=3, direct=False):
    from dataclasses import replace

    torch.manual_seed(0)
    cfg = small_model(bridge=bridge, cross=cross, cheb_order=order, levels=levels)
    cfg = replace(cfg, graph=replace(cfg.graph, direct=direct))
    m = build_model(cfg).eval()
    with torch.no_grad():  # left and right weights must differ, and LayerNorm affines be non-trivial
        for p in m.pose.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return m


@pytest.mark.parametrize("bridge,cross,order,direct", CASES)
def test_outputs_and_macs_equal(bridge, cross, order, direct):
    m = _model(bridge, cross, order, levels=2 if cross == "none" else 3, direct=direct)
    d = hand_batched(m)
    assert isinstance(d, HandBatchedNet)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a, b = m(x), d(x)
    for k in ("verts", "joints", "camera", "rel_root", "verts2d", "coarse"):
        ref = getattr(a, k)
        assert torch.allclose(getattr(b, k), ref, rtol=0, atol=1e-5 * (ref.abs().max().item() + 1e-6)), k
    ca, cb = model_cost(m, 64), model_cost(d, 64)
    assert (ca.gmacs_image, ca.gmacs_pose) == (cb.gmacs_image, cb.gmacs_pose)


def _matmul_nodes(path) -> int:
    import onnx

    ops = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    return ops["MatMul"] + ops["Gemm"]


def test_export_has_fewer_matmuls(tmp_path):
    import numpy as np
    import onnxruntime as ort

    m = _model("light_cross", "separable", 2)
    before = tmp_path / "per_hand.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TupleOutputs(m, DEPLOY_OUTPUTS).eval(), (torch.rand(1, 3, 64, 64),), str(before),
                          opset_version=OPSET, input_names=["image"], dynamo=False)
    after = export_onnx(m, tmp_path / "batched.onnx", 64)
    assert _matmul_nodes(after) < _matmul_nodes(before) * 0.85
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = TupleOutputs(m, DEPLOY_OUTPUTS)(x)
    got = ort.InferenceSession(str(after), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})
    for r, g in zip(ref, got):
        assert np.abs(g - r.numpy()).max() <= 1e-4 * (r.abs().max().item() + 1e-6)


def test_models_without_a_graph_decoder_come_back_unchanged():
    lin = torch.nn.Linear(2, 2)
    assert hand_batched(lin) is lin
