"""LiteRT (TFLite) flatbuffers of a two-hand model: ``model.tflite`` (fp32) for LiteRT's XNNPACK delegate.

The graph is the one ExecuTorch lowers (``hand_nas.export_executorch.deploy_module``: the hand-batched deployment
module in its XNNPACK form), exported with ``torch.export`` and converted by litert-torch. litert-torch
0.10 pins pydantic 2.11, typing-extensions 4.12 and anyio 4.14, below what hand-nas' own environment holds,
so the converter runs in a venv of its own: ``hand-nas mobile setup-litert`` makes it
(``$HAND_NAS_HOME/litert-venv``: torch at this environment's version + litert-torch), or
``HAND_NAS_LITERT_PYTHON`` names another one. Running and timing a ``.tflite`` needs only LiteRT's
interpreter (``ai-edge-litert``, in the ``mobile`` extra), which installs beside everything else.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from hand_nas.errors import HandNasError

LITERT_TORCH = "litert-torch==0.10.0"
CONVERT_TIMEOUT_S = 3600


def converter_python() -> Path | None:
    """The Python of the LiteRT converter venv, or None when there is none."""
    from hand_nas.paths import home

    env = os.environ.get("HAND_NAS_LITERT_PYTHON")
    path = Path(env) if env else home() / "litert-venv" / "bin" / "python"
    return path if path.is_file() else None


def require_converter() -> Path:
    py = converter_python()
    if py is None:
        where = os.environ.get("HAND_NAS_LITERT_PYTHON") or "$HAND_NAS_HOME/litert-venv"
        raise HandNasError(f"LiteRT converter not found at {where}: run `hand-nas mobile setup-litert` "
                           f"(a venv with torch {torch.__version__.split('+')[0]} and {LITERT_TORCH})")
    return py


def setup_converter(log=print) -> Path:
    """Make ``$HAND_NAS_HOME/litert-venv`` (torch at this environment's version, CPU wheel, and litert-torch);
    a venv already there is completed, not replaced. Returns its Python."""
    from hand_nas.paths import home

    venv = home() / "litert-venv"
    py = venv / "bin" / "python"
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    steps = [[sys.executable, "-m", "venv", str(venv)]] if not py.is_file() else []
    steps += [[str(py), "-m", "pip", "install", "-q", torch_pin], [str(py), "-m", "pip", "install", "-q", LITERT_TORCH]]
    for cmd in steps:
        log(f"$ {' '.join(cmd)}")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise HandNasError(f"{venv}: `{' '.join(cmd[-2:])}` failed ({tail[0][:300]})")
    return py


def save_deploy_program(model: nn.Module, program: Path, size: int, quantizable: bool = False) -> None:
    """``model``'s deployment form exported at batch 1 x 3 x ``size``^2 and saved as a ``.pt2`` for the
    converter's venv (``quantizable``: the form whose matmuls a quantizer sees)."""
    from hand_nas.export_executorch import deploy_module, drop_noop

    with torch.no_grad():
        ep = torch.export.export(deploy_module(model, quantizable=quantizable), (torch.rand(1, 3, size, size),))
    drop_noop(ep.graph_module, torch.ops.aten.expand.default)  # XNNPACK has no BROADCAST_TO: fewer boundaries
    torch.export.save(ep, program)


class TfliteConversion:
    """A LiteRT conversion running in the converter's venv (``start_tflite``); ``wait`` collects it (once: later
    calls return the same result), ``cancel`` stops it if it is still running."""

    def __init__(self, proc: subprocess.Popen, program: Path, path: Path, t0: float) -> None:
        self.proc, self.program, self.path, self.t0 = proc, program, path, t0
        self.result: dict | None = None

    def wait(self) -> dict:
        """{'seconds'} once ``path`` is written; a failed conversion is one HandNasError line."""
        if self.result is not None:
            return self.result
        try:
            out, err = self.proc.communicate(timeout=CONVERT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise HandNasError(f"{self.path}: LiteRT conversion took over {CONVERT_TIMEOUT_S} s") from None
        finally:
            self.program.unlink(missing_ok=True)
        if self.proc.returncode or not self.path.is_file():
            lines = [ln for ln in (err or out).strip().splitlines() if ln.strip()] or ["no output"]
            raise HandNasError(f"{self.path}: LiteRT conversion failed ({lines[-1][:300]})")
        self.result = {"seconds": round(time.perf_counter() - self.t0, 1)}
        return self.result

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        self.program.unlink(missing_ok=True)


def start_tflite(model: nn.Module, path: str | Path, size: int = 256, scratch: Path | None = None) -> TfliteConversion:
    """Start converting ``model`` to a fp32 LiteRT flatbuffer at batch 1 x 3 x ``size``^2 in the converter's
    process; this process is free meanwhile (compress lowers the ExecuTorch programs then: one core each)."""
    py = require_converter()
    path = Path(path)
    program = (scratch or path.parent) / (path.stem + ".pt2")
    t0 = time.perf_counter()
    save_deploy_program(model, program, size)
    proc = subprocess.Popen([str(py), str(Path(__file__).with_name("litert_convert.py")), str(program), str(path),
                             str(size)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return TfliteConversion(proc, program, path, t0)


def export_tflite(model: nn.Module, path: str | Path, size: int = 256, scratch: Path | None = None) -> dict:
    """Write ``model`` as a fp32 LiteRT flatbuffer at batch 1 x 3 x ``size``^2; returns {'seconds'}."""
    return start_tflite(model, path, size, scratch).wait()


def add_tflite(model: nn.Module, out: Path, scratch: Path, size: int, eval_size: int, calib, loader, threads: int = 1,
               rounds: int = 10, parity_limit: float = 1e-3, log=print, started: TfliteConversion | None = None) -> dict:
    """Write ``model.tflite`` into ``out``; return the bundle report's ``litert`` section: what LiteRT's XNNPACK
    delegate took, fp32 parity with torch (refused above ``parity_limit``), held-out MPJPE/MPVPE (at
    ``eval_size``: converted again there when it differs), single-thread latency and busy threads. ``started``:
    the conversion of ``out/model.tflite`` at ``size`` when the caller already started it (``start_tflite``)."""
    from importlib.metadata import version

    import numpy as np

    from compress.mobile import runner_metrics
    from compress.onnx_export import output_names, relative_error
    from hand_nas.cost.bench import time_interleaved
    from hand_nas.cost.runtimes import TfliteRunner, busy_threads
    from hand_nas.models.traceable import DEPLOY_OUTPUTS, TupleOutputs

    path = out / "model.tflite"
    took = (started or start_tflite(model, path, size, scratch)).wait()
    run = TfliteRunner(path, threads)
    log(f"      model.tflite: {run.partitions} XNNPACK partition(s), {sum(run.builtin_ops.values())} op(s) on "
        f"built-in kernels ({took['seconds']:.0f} s to convert)")
    eval_path = path
    if eval_size != size:
        eval_path = scratch / "eval.tflite"
        export_tflite(model, eval_path, eval_size, scratch)
    x = calib[:4]
    with torch.no_grad():
        ref = [t.numpy() for t in TupleOutputs(model.eval(), DEPLOY_OUTPUTS)(torch.as_tensor(x))]
    parity = relative_error(ref, run(x))
    if parity > parity_limit:
        raise HandNasError(f"model.tflite differs from torch by {parity:.2e} (relative) > {parity_limit:g}; "
                           "refusing to write the bundle")
    m = runner_metrics(TfliteRunner(eval_path, threads), output_names(model, eval_size), loader)
    img = np.ascontiguousarray(calib[:1], dtype=np.float32)
    times = time_interleaved({"litert": lambda: run.run(img)}, rounds=rounds)["litert"]
    log(f"      LiteRT fp32: {float(np.median(times)):.2f} ms, MPJPE {m.mpjpe_mm:.2f} mm")
    return {"runtime": f"ai-edge-litert {version('ai-edge-litert')}", "converter": LITERT_TORCH,
            "delegate": "XNNPACK (the interpreter's default)", "threads": threads,
            "busy_threads": busy_threads(lambda: run.run(img)), "parity_fp32_vs_torch_rel": parity,
            "programs": {"fp32": {"file": path.name, "latency_ms": round(float(np.median(times)), 3),
                                  "p90_ms": round(float(np.percentile(times, 90)), 3), "mpjpe_mm": round(m.mpjpe_mm, 2),
                                  "mpvpe_mm": round(m.mpvpe_mm, 2), "partitions": run.partitions,
                                  "builtin_ops": run.builtin_ops, "portable": sum(run.builtin_ops.values()),
                                  "convert_seconds": took["seconds"]}}}
