"""ExecuTorch programs of a two-hand model for the XNNPACK delegate: fp32, or int8 by PT2E static quantization.

The graph is the deployment module (``hand_batched``) in its mobile form (``hand_nas.models.mobile_form``),
exported with ``torch.export`` and lowered by ``to_edge_transform_and_lower`` with the XNNPACK partitioner,
after one pass that drops the no-op ``expand_copy`` nodes ``torch.matmul`` leaves on 3-D/4-D operands
(they would stay on portable kernels and split the delegate). int8 is PT2E static quantization with
the XNNPACK quantizer (symmetric, per-channel weights, per-tensor activations) calibrated on given
images. Every export reports what the delegate took: ``partitions`` (XNNPACK subgraphs) and
``portable_ops`` (operations left on ExecuTorch's portable kernels, each a boundary), with the source line
of each portable op so that the block that needs a mobile form can be found.

Bundles (``compress.mobile``) and the latency predictor (``hand_nas.cost.predictor``) both lower through
here, so a predicted latency belongs to the program a bundle ships. Lowering costs about a minute (fp32) to
five (int8) of one core for an lwa_hand-sized graph, almost all of it ExecuTorch's graph passes.

ExecuTorch is an optional install (``pip install 'hand-nas[mobile]'``); without it these functions raise
a one-line HandNasError saying so.
"""
from __future__ import annotations

import collections
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hand_nas.errors import HandNasError

INSTALL_HINT = "ExecuTorch is not installed: pip install 'hand-nas[mobile]' (executorch 1.5.1)"


def require_executorch() -> None:
    # torchao (ExecuTorch's quantizer backend) logs a warning per GPU kernel library it cannot load on a CPU
    # machine; they are not used here
    logging.getLogger("torchao").setLevel(logging.ERROR)
    try:
        import executorch.exir  # noqa: F401  (the import is the check)
    except ImportError as e:
        raise HandNasError(f"{INSTALL_HINT} ({e})") from None


@dataclass
class Delegation:
    """What XNNPACK took of a lowered program: its partitions and the ops left on portable kernels."""

    partitions: int
    portable_ops: dict[str, int] = field(default_factory=dict)
    where: dict[str, list[str]] = field(default_factory=dict)  # op -> the hand-nas source lines it came from

    @property
    def portable(self) -> int:
        return sum(self.portable_ops.values())

    def to_dict(self) -> dict:
        return {**asdict(self), "portable": self.portable}


def deploy_module(model: nn.Module, quantizable: bool = False) -> nn.Module:
    """The module ExecuTorch exports: the deployment outputs of the hand-batched model in its XNNPACK form
    (``quantizable``: with the pose part's weights as ``nn.Linear`` layers the int8 quantizer annotates)."""
    from hand_nas.models.hand_batched import hand_batched
    from hand_nas.models.mobile_form import xnnpack_form
    from hand_nas.models.traceable import DEPLOY_OUTPUTS, TupleOutputs

    return TupleOutputs(xnnpack_form(hand_batched(model.eval()), quantizable), DEPLOY_OUTPUTS).eval()


def drop_noop(gm, target) -> bool:
    """Remove every ``target`` node (an expand) whose output has its input's shape: it is its input.
    ``torch.matmul`` leaves them on 3-D/4-D operands; delegates refuse some. True when any was removed."""
    changed = False
    for n in list(gm.graph.nodes):
        if n.op == "call_function" and n.target == target:
            src = n.args[0]
            if tuple(src.meta["val"].shape) == tuple(n.meta["val"].shape):
                n.replace_all_uses_with(src)
                gm.graph.erase_node(n)
                changed = True
    if changed:
        gm.recompile()
    return changed


def _drop_noop_expands(gm):
    """Edge pass: ``drop_noop`` on ``expand_copy``."""
    from executorch.exir.dialects._ops import ops as exir_ops
    from executorch.exir.pass_base import PassResult

    return PassResult(gm, drop_noop(gm, exir_ops.edge.aten.expand_copy.default))


def delegation(graph_module) -> Delegation:
    """Partitions and portable ops of a lowered edge program's graph module."""
    parts, ops, where = 0, collections.Counter(), collections.defaultdict(set)
    for n in graph_module.graph.nodes:
        if n.op != "call_function":
            continue
        name = str(getattr(n.target, "_op", n.target))
        if "executorch_call_delegate" in name:
            parts += 1
        elif "getitem" not in name:
            op = name.replace("aten.", "").replace(".default", "")
            ops[op] += 1
            frames = [ln.strip() for ln in (n.meta.get("stack_trace") or "").splitlines() if "hand_nas" in ln]
            if frames:
                where[op].add(frames[-1].split("hand_nas/", 1)[-1].replace('", line ', ":").split(",")[0])
    return Delegation(parts, dict(ops.most_common()), {k: sorted(v)[:8] for k, v in where.items()})


def _is_depthwise(n) -> bool:
    """A depthwise convolution node (one input channel per group) of an exported graph."""
    if n.op != "call_function" or n.target != torch.ops.aten.conv2d.default:
        return False
    groups = n.args[6] if len(n.args) > 6 else n.kwargs.get("groups", 1)
    return groups > 1 and n.args[1].meta["val"].shape[1] == 1


def _reads_the_image(n) -> bool:
    """A convolution whose input has three channels: the stem, reading the image."""
    return (n.op == "call_function" and n.target == torch.ops.aten.conv2d.default
            and n.args[1].meta["val"].shape[1] == 3)


# Op kinds an int8 program can keep in fp32 (``export_pte(fp32_ops=...)``), for where XNNPACK's int8 kernel is
# the slower one on a CPU (its measured profile says which: ``hand-nas bench --profile``)
FP32_OPS = {"depthwise": _is_depthwise}


def _quantized(module: nn.Module, example: torch.Tensor, calib: np.ndarray, fp32_ops: tuple[str, ...] = ()) -> nn.Module:
    """PT2E static int8 of ``module`` with the XNNPACK quantizer, calibrated on ``calib`` one image at a time;
    the ``fp32_ops`` kinds (``FP32_OPS``) left unquantized.

    LayerNorm's arithmetic always stays fp32: the quantizer annotates any mul and add, so it would make the
    normalisation's inner products (the squared deviations, the scaled result, the affine) int8 element-wise ops,
    each behind a pair of conversions. Measured on lwa_hand pruned to 0.25 GMACs (AMD EPYC with AVX512-VNNI, 1
    thread, three runs of 40 alternating rounds): the program 2.3-3.4% faster (5.47-5.69 against 5.62-5.84 ms;
    126 fewer XNNPACK operators) and its lowering 25% shorter; only the LayerNorm's input and output convert.
    The stem convolution stays fp32 as well: int8, the 3-channel image is quantized and then moved to XNNPACK's
    channels-last layout by an int8 transpose that took 0.16 ms where the fp32 one takes 0.05 (same CPU); the
    stem's output is quantized once instead."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                          get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from hand_nas.models.mobile_form import MatmulLayerNorm

    if unknown := sorted(set(fp32_ops) - set(FP32_OPS)):
        raise HandNasError(f"fp32_ops: {', '.join(unknown)}: expected some of {', '.join(FP32_OPS)}")
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    quantizer.set_module_type(MatmulLayerNorm, None)  # None: the quantizer's switch for "leave this module float"
    quantizer.set_filter_function(lambda n: not _reads_the_image(n) and not any(FP32_OPS[k](n) for k in fp32_ops))
    prepared = prepare_pt2e(torch.export.export(module, (example,)).module(), quantizer)
    with torch.no_grad():
        for img in calib:
            prepared(torch.as_tensor(img[None], dtype=torch.float32))
    return convert_pt2e(prepared)


def export_pte(model: nn.Module, path: str | Path, size: int = 256, calib: np.ndarray | None = None,
               quantizable: bool | None = None, fp32_ops: tuple[str, ...] = ()) -> Delegation:
    """Write ``model`` as an ExecuTorch program for XNNPACK at batch 1 x 3 x ``size``^2; int8 when ``calib``
    ((N, 3, size, size) images) is given, with the ``fp32_ops`` kinds (``FP32_OPS``) left fp32.
    ``quantizable`` (default: with int8) exports the form whose pose part the quantizer reaches. Returns what
    the delegate took."""
    require_executorch()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    quantizable = calib is not None if quantizable is None else quantizable
    module, example = deploy_module(model, quantizable), torch.rand(1, 3, size, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if calib is not None:
            module = _quantized(module, example, calib, fp32_ops)
        edge = to_edge_transform_and_lower(torch.export.export(module, (example,)),
                                           transform_passes=[_drop_noop_expands], partitioner=[XnnpackPartitioner()])
        summary = delegation(edge.exported_program().graph_module)
        program = edge.to_executorch()
    Path(path).write_bytes(program.buffer)
    return summary
