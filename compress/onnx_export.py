"""ONNX files of a (pruned) model: fp32, brevitas QCDQ int8, onnxruntime static int8; op types, parity.

Several int8 routes are built because none is always faster (reference: peer_tools_and_pitfalls §3d):
brevitas' QCDQ export carries the QAT scales but leaves Linear layers on 3-D inputs as float Gemm
after onnxruntime's fusion; onnxruntime's own ``quantize_static`` (QOperator, uint8 activations,
per-channel int8 weights) quantizes MatMuls too, either everywhere but the output tail or on the
image part's convolution path only (which wins on CPUs without VNNI). The TorchScript exporter (``dynamo=False``) is used
throughout: the dynamo path keeps quantization scales as graph inputs and onnxruntime cannot fuse them.
"""
from __future__ import annotations

import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hand_nas.export import OPSET, export_onnx
from hand_nas.models.traceable import DEPLOY_OUTPUTS, TupleOutputs, present_outputs

INT8_OPS = ("QLinearConv", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat", "ConvInteger", "QGemm",
            "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearAveragePool", "QLinearGlobalAveragePool",
            "QLinearConcat", "QLinearSoftmax", "DynamicQuantizeMatMul", "QLinearLeakyRelu")


def output_names(model: nn.Module, size: int) -> list[str]:
    return present_outputs(model, size, DEPLOY_OUTPUTS)


def strip_initializer_inputs(path: str | Path) -> None:
    """Remove initializers listed as graph inputs (they block constant folding and Q/DQ fusion)."""
    import onnx

    m = onnx.load(str(path))
    inits = {i.name for i in m.graph.initializer}
    keep = [i for i in m.graph.input if i.name not in inits]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    onnx.save(m, str(path))


def export_fp32(model: nn.Module, path: str | Path, size: int, batched: bool = True) -> Path:
    """The deployment graph in fp32: hand-nas' one exporter (``hand_nas.export``); ``batched=False``: the
    per-hand graph, the input of ``export_ort_static``."""
    return export_onnx(model, path, size, batched=batched)


def export_qcdq(qmodel: nn.Module, path: str | Path, size: int) -> Path:
    """brevitas QCDQ (QuantizeLinear/Clip/DequantizeLinear around every quantized layer), dynamo=False."""
    from brevitas.export import export_onnx_qcdq

    path = Path(path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx_qcdq(TupleOutputs(qmodel, DEPLOY_OUTPUTS).eval(), args=torch.rand(1, 3, size, size), export_path=str(path),
                         dynamo=False, opset_version=OPSET, input_names=["image"],
                         output_names=output_names(qmodel, size))
    strip_initializer_inputs(path)
    return path


def onnx_scope(module_path: str) -> str:
    """The TorchScript exporter's node-name prefix of a module under ``TupleOutputs`` (exact for children of
    ModuleLists, which are not called themselves; used for the output heads): container indices stay
    on their parent's name ('pose.cross.0.attn' -> '/net/pose/cross.0/attn/'; 'pose.init.0.0' ->
    '/net/pose/init.0/init.0.0/')."""
    out, anchor, prev_digit = [], "", False
    for part in module_path.split("."):
        if part.isdigit() and out:
            anchor = f"{anchor if prev_digit else out.pop()}.{part}"
            out.append(anchor)
            prev_digit = True
        else:
            out.append(part)
            prev_digit = False
    return "/net/" + "/".join(out) + "/"


def float_tail(model: nn.Module, onnx_path: str | Path) -> list[str]:
    """ONNX node names kept float by onnxruntime quantization: the output heads and the pose module's own ops
    (template offset, 252 -> 778 upsampling, joint regression, root subtraction). Quantizing these
    costs millimetres for almost no MACs (measured on lwa_hand: 15 mm -> 2.5 mm mean vertex error)."""
    import onnx

    from compress.prune import output_layers

    names = {id(m): n for n, m in model.named_modules()}
    prefixes = [onnx_scope(names[id(m)]) for m in output_layers(model) if id(m) in names]
    tail = []
    for node in onnx.load(str(onnx_path)).graph.node:
        rest = node.name[len("/net/pose/"):] if node.name.startswith("/net/pose/") else None
        if any(node.name.startswith(p) for p in prefixes) or (rest is not None and "/" not in rest):
            tail.append(node.name)
    return tail


CONV_PATH_OPS = ("Conv", "Clip", "Relu", "Add", "Mul", "Concat", "Resize", "AveragePool", "GlobalAveragePool",
                 "MaxPool")


def conv_path_only(model: nn.Module, onnx_path: str | Path) -> list[str]:
    """ONNX node names outside the image part (the pose part and the heads). With ``CONV_PATH_OPS`` as
    the op types to quantize, onnxruntime then quantizes the image part's convolution chain alone and
    leaves its attention (MatMul, Softmax, LayerNorm) float: on a CPU without VNNI the int8 GEMMs on
    small matrices, QLinearSoftmax and the Q/DQ around LayerNorm cost more than they save."""
    import onnx

    return [node.name for node in onnx.load(str(onnx_path)).graph.node if not node.name.startswith("/net/image/")]


def export_ort_static(fp32_path: str | Path, path: str | Path, calib_images: np.ndarray,
                      keep_float=None, op_types: tuple[str, ...] | None = None, quant_format: str = "QOperator",
                      per_channel: bool = True) -> Path:
    """onnxruntime static quantization: int8 weights, uint8 activations; by default the QOperator format with
    per-channel weights (what bundles ship; ``quant_format`` "QDQ" and ``per_channel`` False are the others).

    Args:
        calib_images: (N, 3, H, W) float32 images at the file's input size, run one at a time.
        keep_float: ``fn(onnx_path) -> node names`` left in float (``float_tail``, ``conv_path_only``); it
            is applied to the file after onnxruntime's pre-processing, whose node names are the ones
            the quantizer matches.
        op_types: the op types to quantize (None: every op onnxruntime can).
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"image": img[None].astype(np.float32)} for img in calib_images])

        def get_next(self):
            return next(self.it, None)

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(path), Reader(), quant_format=getattr(QuantFormat, quant_format),
                        per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=list(keep_float(pre)) if keep_float else [],
                        **({"op_types_to_quantize": list(op_types)} if op_types else {}))
    return path


def optimized_op_types(path: str | Path) -> dict[str, int]:
    """Op type counts of the graph onnxruntime actually runs (after its CPU graph optimisations)."""
    from hand_nas.cost.latency import ort_session_with_graph

    _, graph = ort_session_with_graph(path)
    return dict(Counter(n.op_type for n in graph.node).most_common())


def int8_ops(op_types: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in op_types.items() if k in INT8_OPS}


def ort_outputs(path_or_session, images: np.ndarray) -> list[np.ndarray]:
    """Run an ONNX file/session over (N, 3, H, W) images one at a time; outputs stacked along N."""
    from hand_nas.cost.latency import ort_session

    sess = ort_session(path_or_session) if isinstance(path_or_session, (str, Path)) else path_or_session
    runs = [sess.run(None, {"image": img[None].astype(np.float32)}) for img in images]
    return [np.concatenate([r[i] for r in runs]) for i in range(len(runs[0]))]


def relative_error(ref: list, got: list) -> float:
    """max |got - ref| / max |ref| over all outputs."""
    return max(float(np.abs(np.asarray(g) - np.asarray(r)).max() / (np.abs(np.asarray(r)).max() + 1e-12))
               for r, g in zip(ref, got))


FUSED_SCOPE = "(fused by onnxruntime)"
SCOPE_DEPTH = 4  # net/image/encoder/blocks.3, net/pose/graph.2.0/blocks.1: one block, one choice


def scope_of(node_name: str, depth: int = SCOPE_DEPTH) -> str:
    """The module scope of an exported node name: its path without the op's own name, cut to ``depth`` parts
    ('/net/image/encoder/blocks.3/m2f/q/MatMul' -> 'net/image/encoder/blocks.3'; '/net/pose/Add_1' ->
    'net/pose'). A Q/DQ node the quantizer named after a tensor lands in its producer's scope; nodes onnxruntime
    created under a new name -> ``FUSED_SCOPE``."""
    parts = node_name.strip("/").split("/")
    return "/".join(parts[:-1][:depth]) if parts[0] == "net" and len(parts) > 1 else FUSED_SCOPE


def scope_times_ms(node_ms: dict[str, tuple[float, str]], depth: int = SCOPE_DEPTH) -> dict[str, float]:
    """Per-node times (``latency.ort_node_profile_ms``: node -> (ms, name filed under)) summed per scope."""
    out: dict[str, float] = {}
    for ms, name in node_ms.values():
        key = scope_of(name, depth)
        out[key] = out.get(key, 0.0) + ms
    return out


def int8_faster_scopes(fp32_ms: dict[str, float], int8_ms: dict[str, float], margin: float = 0.9,
                       min_ms: float = 0.02) -> list[str]:
    """Scopes that take at least ``min_ms`` in fp32 and whose int8 time (Q/DQ nodes named after them included)
    is below ``margin`` x that, costliest first. Both profiles must come from graphs with the same node names
    (the per-hand export and onnxruntime's quantization of it)."""
    return sorted((k for k, v in fp32_ms.items()
                   if k != FUSED_SCOPE and v >= min_ms and k in int8_ms and int8_ms[k] < margin * v),
                  key=lambda k: -fp32_ms[k])


def outside_scopes(model: nn.Module, scopes: list[str]):
    """``keep_float`` for ``export_ort_static``: every node outside ``scopes`` and the float tail stays float."""
    import onnx

    def keep(onnx_path) -> list[str]:
        tail = set(float_tail(model, onnx_path))
        return [n.name for n in onnx.load(str(onnx_path)).graph.node
                if n.name in tail or scope_of(n.name, SCOPE_DEPTH) not in scopes]
    return keep
