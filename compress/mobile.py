"""ExecuTorch programs of a two-hand model: ``model.pte`` (fp32) and ``model.int8.pte`` for the XNNPACK delegate.

The graph is the deployment module (``hand_batched``) in its mobile form (``hand_nas.models.mobile_form``),
exported with ``torch.export`` and lowered by ``to_edge_transform_and_lower`` with the XNNPACK partitioner,
after one pass that drops the no-op ``expand_copy`` nodes ``torch.matmul`` leaves on 3-D/4-D operands
(they would stay on portable kernels and split the delegate). int8 is PT2E static quantization with
the XNNPACK quantizer (symmetric, per-channel weights, per-tensor activations) calibrated on held-out
images. Every export reports what the delegate took: ``partitions`` (XNNPACK subgraphs) and
``portable_ops`` (operations left on ExecuTorch's portable kernels, each a boundary), with the source line
of each portable op so that the block that needs a mobile form can be found.

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


def _quantized(module: nn.Module, example: torch.Tensor, calib: np.ndarray) -> nn.Module:
    """PT2E static int8 of ``module`` with the XNNPACK quantizer, calibrated on ``calib`` one image at a time."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                          get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(module, (example,)).module(), quantizer)
    with torch.no_grad():
        for img in calib:
            prepared(torch.as_tensor(img[None], dtype=torch.float32))
    return convert_pt2e(prepared)


def export_pte(model: nn.Module, path: str | Path, size: int = 256, calib: np.ndarray | None = None,
               quantizable: bool | None = None) -> Delegation:
    """Write ``model`` as an ExecuTorch program for XNNPACK at batch 1 x 3 x ``size``^2; int8 when ``calib``
    ((N, 3, size, size) images) is given. ``quantizable`` (default: with int8) exports the form whose pose
    part the quantizer reaches. Returns what the delegate took."""
    require_executorch()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    quantizable = calib is not None if quantizable is None else quantizable
    module, example = deploy_module(model, quantizable), torch.rand(1, 3, size, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if calib is not None:
            module = _quantized(module, example, calib)
        edge = to_edge_transform_and_lower(torch.export.export(module, (example,)),
                                           transform_passes=[_drop_noop_expands], partitioner=[XnnpackPartitioner()])
        summary = delegation(edge.exported_program().graph_module)
        program = edge.to_executorch()
    Path(path).write_bytes(program.buffer)
    return summary


class PteRunner:
    """An ExecuTorch program loaded by the Python runtime; ``threads`` sets XNNPACK's thread pool (it defaults
    to every core: one thread means one busy thread)."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        from hand_nas.cost.runtimes import load_pte

        self.method = load_pte(path, threads)

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        outs = [self.method.execute([torch.as_tensor(img[None], dtype=torch.float32)]) for img in images]
        return [np.concatenate([o[i].numpy() for o in outs]) for i in range(len(outs[0]))]


def runner_metrics(run, names: list[str], loader):
    """Held-out metrics of a mobile runtime's runner (``run(images) -> outputs`` in ``names`` order)."""
    from hand_nas.train import evaluate_outputs

    def predict(images):
        out = dict(zip(names, run(images.numpy())))
        return out.get("verts"), out["joints"], out.get("rel_root")

    return evaluate_outputs(predict, loader)


def add_programs(model: nn.Module, out: Path, scratch: Path, size: int, eval_size: int, calib: np.ndarray,
                 calib_eval: np.ndarray, loader, threads: int = 1, rounds: int = 10, parity_limit: float = 1e-3,
                 log=print) -> dict:
    """Write ``model.pte`` (fp32) and ``model.int8.pte`` (PT2E int8, calibrated on ``calib``) into ``out``;
    return the bundle report's ``executorch`` section.

    Measured here: what the delegate took of each program, fp32 parity with torch (refused above
    ``parity_limit``, relative), held-out MPJPE/MPVPE of each program (``loader``, at ``eval_size``: programs
    are exported again there when it differs from ``size``), single-thread latency of both programs in
    alternating rounds, and how many threads were busy while they ran.
    """
    from importlib.metadata import version

    from compress.onnx_export import output_names, relative_error
    from hand_nas.cost.bench import time_interleaved
    from hand_nas.cost.runtimes import busy_threads, threadpool_size
    from hand_nas.models.traceable import DEPLOY_OUTPUTS, TupleOutputs

    files = {"fp32": out / "model.pte", "int8": out / "model.int8.pte"}
    took = {"fp32": export_pte(model, files["fp32"], size)}
    log(f"      model.pte: {took['fp32'].partitions} XNNPACK partition(s), {took['fp32'].portable} portable op(s)")
    took["int8"] = export_pte(model, files["int8"], size, calib=calib)
    log(f"      model.int8.pte: {took['int8'].partitions} XNNPACK partition(s), {took['int8'].portable} portable op(s)")
    eval_files = files
    if eval_size != size:
        eval_files = {"fp32": scratch / "eval.pte", "int8": scratch / "eval.int8.pte"}
        export_pte(model, eval_files["fp32"], eval_size)
        export_pte(model, eval_files["int8"], eval_size, calib=calib_eval)

    x = calib[:4]
    with torch.no_grad():
        ref = [t.numpy() for t in TupleOutputs(model.eval(), DEPLOY_OUTPUTS)(torch.as_tensor(x))]
    parity = relative_error(ref, PteRunner(files["fp32"], threads)(x))
    if parity > parity_limit:
        raise HandNasError(f"model.pte differs from torch by {parity:.2e} (relative) > {parity_limit:g}; "
                           "refusing to write the bundle")
    names = output_names(model, eval_size)
    metrics = {k: runner_metrics(PteRunner(p, threads), names, loader) for k, p in eval_files.items()}
    runners = {k: PteRunner(p, threads) for k, p in files.items()}
    img = calib[:1]
    times = time_interleaved({k: (lambda r=r: r(img)) for k, r in runners.items()}, rounds=rounds)
    busy = busy_threads(lambda: runners["int8"](img))
    programs = {k: {"file": files[k].name, "latency_ms": round(float(np.median(times[k])), 3),
                    "p90_ms": round(float(np.percentile(times[k], 90)), 3), "mpjpe_mm": round(metrics[k].mpjpe_mm, 2),
                    "mpvpe_mm": round(metrics[k].mpvpe_mm, 2), **took[k].to_dict()} for k in files}
    for k, v in programs.items():
        log(f"      ExecuTorch {k}: {v['latency_ms']:.2f} ms, MPJPE {v['mpjpe_mm']:.2f} mm")
    return {"runtime": f"executorch {version('executorch')}", "delegate": "XNNPACK",
            "threads": threads, "threadpool": threadpool_size(), "busy_threads": busy,
            "parity_fp32_vs_torch_rel": parity, "programs": programs,
            "int8_speedup_vs_fp32": round(programs["fp32"]["latency_ms"] / programs["int8"]["latency_ms"], 3),
            "int8_mpjpe_change_mm": round(metrics["int8"].mpjpe_mm - metrics["fp32"].mpjpe_mm, 2)}
