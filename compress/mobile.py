"""ExecuTorch programs in a bundle: ``model.pte`` (fp32) and ``model.int8.pte`` for the XNNPACK delegate.

Lowering is ``hand_nas.export_executorch`` (shared with the latency predictor); here: running a program
(``PteRunner``), its held-out metrics, and the bundle report's ``executorch`` section (``add_programs``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from hand_nas.errors import HandNasError
from hand_nas.export_executorch import Delegation, export_pte, require_executorch

__all__ = ["Delegation", "export_pte", "require_executorch", "PteRunner", "runner_metrics", "add_programs"]


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
                 log=print, before_timing=None) -> dict:
    """Write ``model.pte`` (fp32) and ``model.int8.pte`` (PT2E int8, calibrated on ``calib``) into ``out``;
    return the bundle report's ``executorch`` section.

    Measured here: what the delegate took of each program, fp32 parity with torch (refused above
    ``parity_limit``, relative), held-out MPJPE/MPVPE of each program (``loader``, at ``eval_size``: programs
    are exported again there when it differs from ``size``), single-thread latency of both programs in
    alternating rounds, and how many threads were busy while they ran. ``before_timing``: called before the
    programs are timed, to finish work running beside this one (compress's LiteRT conversion): nothing else
    runs while they are timed.
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
    if before_timing is not None:
        before_timing()
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
