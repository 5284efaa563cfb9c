"""The mobile runtimes' Python front doors, for timing and parity: ExecuTorch's runtime and LiteRT's
interpreter, each with its XNNPACK delegate.

Each is an optional install (``pip install 'hand-nas[mobile]'``): ``executorch_available`` and
``litert_available`` say whether it is here, ``load_pte`` / ``TfliteRunner`` raise one HandNasError line when
it is not.

Threads: LiteRT's interpreter takes ``num_threads`` (1: one busy thread). ExecuTorch's Python runtime has one
process-wide XNNPACK thread pool that starts with a thread per core; ``load_pte(path, threads)`` resets it to ``threads`` (``threadpool_size`` reads it back), so a
single-threaded figure is one busy thread (``busy_threads`` checks that from /proc).

``profile_pte`` says where a program's time goes: ExecuTorch's event tracer (ETDump) records every XNNPACK
operator the delegate runs, and the per-operator medians are summed by kind and by group (int8 kernels, fp32
arithmetic, layout changes, int8/fp32 conversions). The tracer adds its own cost between operators, so the
profile gives shares and per-kind milliseconds, not the program's latency (``hand-nas bench`` times that).
XNNPACK reports each operator in whole microseconds, so one that takes less reads 0. The profile also gives the
delegate calls' median and how many operators read 0; what the delegate call took beyond the operators' sum is
those lost fractions, the tracer's cost and the delegate's work between operators, all growing with the operator
count.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from hand_nas.errors import HandNasError


def executorch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("executorch") is not None


def litert_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


class TfliteRunner:
    """A LiteRT flatbuffer in LiteRT's interpreter (default XNNPACK delegate), ``threads`` threads.

    ``partitions``: the delegate's nodes in the execution plan; ``builtin_ops``: {op: count} of the nodes left
    on LiteRT's built-in kernels. Outputs come back in the flatbuffer's output order."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:
            raise HandNasError(f"LiteRT's interpreter is not installed: pip install 'hand-nas[mobile]' ({e})") from None
        if not Path(path).is_file():
            raise HandNasError(f"{path}: LiteRT model not found")
        try:
            self.interp = Interpreter(model_path=str(path), num_threads=threads)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise HandNasError(f"{path}: not a loadable LiteRT model ({type(e).__name__}: {e})") from None
        self.input = self.interp.get_input_details()[0]["index"]
        self.outputs = [(d["index"], d["quantization"]) for d in self.interp.get_output_details()]
        self.partitions, self.builtin_ops = _execution_plan(self.interp)

    def run(self, image):
        """One image (1, 3, S, S) float32 -> the outputs as float32 numpy arrays (an int8 output dequantized)."""
        self.interp.set_tensor(self.input, image)
        self.interp.invoke()
        return [dequantized(self.interp.get_tensor(i), q) for i, q in self.outputs]

    def __call__(self, images):
        """(N, 3, S, S) images one at a time -> the outputs stacked along N."""
        import numpy as np

        outs = [self.run(np.ascontiguousarray(img[None], dtype=np.float32)) for img in images]
        return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]


def dequantized(x, quantization: tuple[float, int]):
    """An interpreter's output as float32: an integer tensor with a (scale, zero point) is ``(x - zero) * scale``
    (a converter that quantizes a graph's outputs leaves them int8), anything else as it is."""
    import numpy as np

    scale, zero = quantization
    if np.issubdtype(x.dtype, np.integer) and scale:
        return ((x.astype(np.float32) - zero) * np.float32(scale)).astype(np.float32)
    return x


def _execution_plan(interp) -> tuple[int, dict[str, int]]:
    """(delegate nodes, {op: count} of nodes on built-in kernels) of what an allocated interpreter runs.

    The node list keeps every original node and appends one DELEGATE node per partition; the plan is what the
    outputs need, walked back from them: a tensor a delegate outputs comes from that delegate, any other from
    the original node that writes it (a node the delegate did not take)."""
    ops = interp._get_ops_details()
    producer = {}
    for op in ops:  # delegates last in the list: they win for the tensors they output
        for t in op["outputs"]:
            producer[int(t)] = op
    todo = [int(d["index"]) for d in interp.get_output_details()]
    seen_tensors, plan = set(), {}
    while todo:
        t = todo.pop()
        if t in seen_tensors or t not in producer:
            continue
        seen_tensors.add(t)
        op = producer[t]
        if op["index"] not in plan:
            plan[op["index"]] = op["op_name"]
            todo.extend(int(i) for i in op["inputs"] if i >= 0)
    builtin = {}
    for name in plan.values():
        if name != "DELEGATE":
            builtin[name] = builtin.get(name, 0) + 1
    return sum(1 for name in plan.values() if name == "DELEGATE"), builtin


def _portable_lib():
    try:
        from executorch.extension.pybindings import portable_lib
    except ImportError as e:
        raise HandNasError(f"ExecuTorch's runtime is not installed: pip install 'hand-nas[mobile]' ({e})") from None
    return portable_lib


def set_threads(threads: int) -> None:
    _portable_lib()._unsafe_reset_threadpool(threads)


def threadpool_size() -> int:
    return _portable_lib()._threadpool_get_thread_count()


def _loaded(path: str | Path, load):
    """``load()`` of the ExecuTorch program at ``path``, a missing or unloadable file one HandNasError line."""
    if not Path(path).is_file():
        raise HandNasError(f"{path}: ExecuTorch program not found")
    try:
        return load()
    except Exception as e:  # noqa: BLE001 - the runtime raises RuntimeError/ValueError for a bad file
        raise HandNasError(f"{path}: not a loadable ExecuTorch program ({type(e).__name__}: {e})") from None


def load_pte(path: str | Path, threads: int = 1):
    """The ``forward`` method of the ExecuTorch program at ``path``, the XNNPACK pool at ``threads``."""
    _portable_lib()
    from executorch.runtime import Runtime

    set_threads(threads)
    method = _loaded(path, lambda: Runtime.get().load_program(Path(path)).load_method("forward"))
    if method is None:
        raise HandNasError(f"{path}: ExecuTorch program has no 'forward' method")
    return method


def op_group(name: str) -> str:
    """The group of an XNNPACK operator, from the name the event tracer gives it (e.g. ``Fully Connected (NC,
    QS8, QC8W) GEMM``): 'int8 kernels', 'convert' (quantize / dequantize), 'layout' (transposes, reshapes,
    copies, slices, concatenations: data moved, no arithmetic) or 'fp32 arithmetic' (everything else)."""
    if any(t in name for t in ("QS8", "QC8", "QD8", "QU8", "QC4")) and "Transpose" not in name:
        return "int8 kernels"
    if name.startswith("Convert"):
        return "convert"
    if name.split(" (")[0] in ("Transpose", "Static Reshape", "Copy", "Slice", "Concatenate", "Even Split",
                               "Static Transpose", "Constant Pad", "Depth To Space", "Space To Depth"):
        return "layout"
    return "fp32 arithmetic"


def profile_pte(path: str | Path, threads: int = 1, runs: int = 20) -> dict:
    """Where the ExecuTorch program at ``path`` spends its time, by XNNPACK operator kind.

    Returns {'runs', 'threads', 'operators', 'ms' (sum of the operators' medians), 'delegate_ms' (the delegate
    calls' medians, summed), 'zero' (operators whose median reads 0 us), 'groups': {group: ms},
    'ops': [{'op', 'group', 'count', 'ms'}] (largest first)}: each operator's median over ``runs`` traced runs,
    summed over the operators of a kind (the name without its ``#N``)."""
    import collections
    import re
    import tempfile
    import warnings

    import torch

    lib = _portable_lib()
    from executorch.devtools import Inspector

    set_threads(threads)
    module = _loaded(path, lambda: lib._load_for_executorch(str(path), enable_etdump=True, debug_buffer_size=0))
    meta = module.method_meta("forward").input_tensor_meta(0)
    x = torch.rand(*meta.sizes())
    for _ in range(runs):
        module.forward((x,))
    with tempfile.TemporaryDirectory() as tmp:
        module.write_etdump_result_to_file(f"{tmp}/trace.etdp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Output Buffer not found": no tensors were recorded, by choice
            block = Inspector(etdump_path=f"{tmp}/trace.etdp").event_blocks[-1]
    kinds: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    delegate_ms, zero = 0.0, 0
    for e in block.events:
        if e.perf_data is None or e.name in ("Method::execute", "OPERATOR_CALL"):
            continue
        if e.name == "DELEGATE_CALL":
            delegate_ms += float(e.perf_data.p50)
            continue
        kind = kinds[re.sub(r" #\d+$", "", e.name)]
        kind[0] += 1
        kind[1] += float(e.perf_data.p50)
        zero += float(e.perf_data.p50) == 0.0
    ops = sorted(({"op": k, "group": op_group(k), "count": n, "ms": ms} for k, (n, ms) in kinds.items()),
                 key=lambda r: -r["ms"])
    groups = collections.Counter()
    for r in ops:
        groups[r["group"]] += r["ms"]
    return {"runs": runs, "threads": threads, "operators": sum(r["count"] for r in ops),
            "ms": sum(r["ms"] for r in ops), "delegate_ms": delegate_ms, "zero": zero,
            "groups": dict(groups.most_common()), "ops": ops}


def busy_threads(fn, runs: int = 20, share: float = 0.1, seconds: float = 0.5, settle: float = 0.2) -> int:
    """Threads of this process that did at least ``share`` of the CPU time spent while ``fn`` ran ``runs``
    times and for at least ``seconds`` (from /proc/self/task/*/stat): 1 when a runtime really runs
    single-threaded. The kernel counts CPU time in 10 ms ticks, so a short window let a few stray ticks of
    another thread (torch's OpenMP workers winding down after a forward pass) count as a second busy thread:
    ``fn`` runs for ``settle`` seconds first, then the window is long enough for ``share`` to mean something."""
    def cpu_ticks() -> dict[str, int]:
        ticks = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks[tid] = int(fields[11]) + int(fields[12])  # utime + stime
            except (OSError, IndexError, ValueError):
                pass
        return ticks

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < settle:
        fn()
    before, t0, n = cpu_ticks(), time.perf_counter(), 0
    while n < runs or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    after = cpu_ticks()
    spent = {t: after[t] - before.get(t, 0) for t in after}
    total = sum(spent.values())
    return sum(1 for v in spent.values() if total and v >= share * total)
