"""``hand-nas bench``: the latency table of a bundle or checkpoint on the machine it runs on.

For every (threads, batch) pair: torch eager, onnxruntime fp32 and (for bundles) onnxruntime int8, the
bundle's ExecuTorch programs (XNNPACK delegate, fp32 and int8) and its LiteRT model (XNNPACK delegate), each
after warm-up, timed run by run in alternating rounds (engine A, B, C, A, B, C, ...) so that a slow moment of a shared machine hits every engine alike; the median and the 90th percentile per
engine. Beside them the *compute floor*: the model's MACs divided by this CPU's fp32 matmul rate
measured by the same command (a square ``torch.matmul`` at the same thread count), i.e. the time
the arithmetic alone would take at peak. Each onnxruntime row also gives the node count of the graph
onnxruntime runs (after its own fusions): it launches one kernel per node, so a graph of many small
operations stays far from the floor however few MACs it has. The CPU model and its vector flags (AVX2, AVX-512,
VNNI, AMX) are part of every result: latency figures mean nothing without them. ExecuTorch rows give the
delegate's partition count and the ops left on portable kernels (recorded at export), and the threads that
were busy while the program ran (its XNNPACK pool is set to the row's thread count).

``profile=True`` (``hand-nas bench --profile``) adds, for each ExecuTorch program, where its time goes:
XNNPACK's operators summed by kind and by group (int8 kernels, fp32 arithmetic, layout, conversions) from
ExecuTorch's event tracer (``hand_nas.cost.runtimes.profile_pte``): what int8 reached and what it did not.

A bundle's ONNX graphs are fixed at batch 1 and their export size; at other batches or sizes the
fp32 graph is exported again from the bundle's weights, and int8 is not timed.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_info() -> dict:
    """{'model', 'flags' (those of ``FLAGS`` this CPU has), 'logical_cpus', 'machine'} from /proc/cpuinfo."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.processor(), platform.machine()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": [f for f in FLAGS if f in flags], "logical_cpus": os.cpu_count(),
            "machine": platform.machine()}


def matmul_gmacs_per_s(threads: int, n: int = 1024, repeats: int = 5) -> float:
    """This CPU's fp32 matmul rate, GMACs/s (an n x n by n x n product is n^3 MACs), best of ``repeats``."""
    from hand_nas.threads import torch_threads

    a, b = torch.rand(n, n), torch.rand(n, n)
    with torch_threads(threads):
        torch.matmul(a, b)  # warm-up
        best = min(_timed(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return n ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def time_interleaved(runs: dict, warmup: int = 10, rounds: int = 10, per_round: int = 5) -> dict[str, list[float]]:
    """{engine: milliseconds of each single run}: every zero-argument function warmed up, then timed
    ``per_round`` runs at a time in alternating rounds (A, B, C, A, B, C, ...), so that a slow moment of a
    shared machine hits every engine alike."""
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for k, fn in runs.items():
            for _ in range(per_round):
                times[k].append(_timed(fn) * 1000.0)
    return times


@dataclass
class BenchRow:
    """One engine at one (threads, batch): milliseconds per forward pass of the whole batch."""

    engine: str
    threads: int
    batch: int
    median_ms: float | None
    p90_ms: float | None
    runs: int
    note: str = ""
    nodes: int | None = None  # onnxruntime rows: nodes of the graph it runs (after its fusions)
    partitions: int | None = None  # ExecuTorch rows: XNNPACK partitions of the program
    portable: int | None = None  # ExecuTorch rows: ops left on portable kernels
    busy_threads: int | None = None  # ExecuTorch rows: threads that did the work


@dataclass
class BenchResult:
    target: str
    size: int
    gmacs: float  # per image, at ``size``, fvcore convention
    cpu: dict
    floor: dict = field(default_factory=dict)  # '<threads>': {'matmul_gmacs_per_s', 'floor_ms_per_image'}
    rows: list[BenchRow] = field(default_factory=list)
    profiles: dict = field(default_factory=dict)  # '<engine> @ <threads>': runtimes.profile_pte's result

    def to_dict(self) -> dict:
        return asdict(self)


def _engines(model, onnx_fp32: Path | None, onnx_int8: Path | None, size: int, batch: int, threads: int,
             scratch: Path, programs: dict | None = None) -> tuple[dict, dict, dict]:
    """({engine: zero-argument run function}, {engine: why it is not timed}, {ORT engine: nodes it runs})."""
    from hand_nas.cost.latency import ort_session_with_graph
    from hand_nas.export import export_onnx

    x = torch.rand(batch, 3, size, size)
    want = [batch, 3, size, size]
    runs, skipped, nodes = {}, {}, {}

    def session(path):
        sess, graph = ort_session_with_graph(path, threads)
        return sess, len(graph.node)

    def torch_run():
        with torch.inference_mode():
            model(x)

    runs["torch eager fp32"] = torch_run
    for name, path in (("ORT fp32", onnx_fp32), ("ORT int8", onnx_int8)):
        sess, count = session(path) if path is not None else (None, None)
        if sess is not None and list(sess.get_inputs()[0].shape) != want:
            shape = "x".join(map(str, sess.get_inputs()[0].shape))
            sess = None
            if name == "ORT int8":
                skipped[name] = f"the bundle's int8 graph takes {shape}, not {'x'.join(map(str, want))}"
                continue
        if sess is None and name == "ORT fp32":  # the same deployment graph, exported at this batch and size
            sess, count = session(export_onnx(model, scratch / f"b{batch}_s{size}.onnx", size, batch=batch))
        if sess is None:
            skipped[name] = "no int8 graph (a checkpoint: `hand-nas compress` makes one)"
            continue
        feed = {sess.get_inputs()[0].name: x.numpy()}
        runs[name], nodes[name] = (lambda s=sess, f=feed: s.run(None, f)), count
    for name, path in (programs or {}).items():  # fixed at batch 1 and the export size
        side, run = _program(path, threads, x)
        if batch != 1 or size != side:
            skipped[name] = f"the bundle's program takes 1x3x{side}x{side}"
            continue
        runs[name] = run
    return runs, skipped, nodes


def _program(path: Path, threads: int, x: torch.Tensor):
    """(the input side it was exported at, a zero-argument run on ``x``) of an ExecuTorch program or LiteRT model,
    loaded once."""
    from hand_nas.cost.runtimes import TfliteRunner, load_pte

    if Path(path).suffix == ".tflite":
        r = TfliteRunner(path, threads)
        return int(r.interp.get_input_details()[0]["shape"][-1]), lambda img=x.numpy(): r.run(img)
    m = load_pte(path, threads)
    return int(m.metadata.input_tensor_meta(0).sizes()[-1]), lambda: m.execute([x])


def bench(model: torch.nn.Module, target: str, onnx_fp32: Path | None = None, onnx_int8: Path | None = None,
          threads: tuple[int, ...] = (1,), batches: tuple[int, ...] = (1,), size: int = 256, warmup: int = 10,
          rounds: int = 10, per_round: int = 5, progress: bool = True, programs: dict | None = None,
          delegation: dict | None = None, profile: bool = False) -> BenchResult:
    """Time ``model`` (and its ONNX graphs and ExecuTorch programs, when given) on this machine; ``target``
    names it in the result.

    Args:
        onnx_fp32: the deployment graph at batch 1 (None: exported from ``model``).
        onnx_int8: the int8 graph at batch 1 (None: not timed).
        programs: {engine name: .pte or .tflite path} (batch 1 at their export size); delegation: {engine name:
            {'partitions', 'portable'}} as recorded when they were exported.
        profile: also profile each ExecuTorch program by operator kind at every thread count (after the timing).
    """
    from hand_nas.cost.runtimes import busy_threads, profile_pte

    from tqdm import tqdm

    from hand_nas.atomic import scratch_dir
    from hand_nas.cost.flops import model_cost
    from hand_nas.threads import torch_threads

    model.eval()
    result = BenchResult(str(target), size, model_cost(model, size).gmacs_total, cpu_info())
    bar = tqdm(total=len(threads) * len(batches), desc="bench", unit="setting", disable=not progress)
    with scratch_dir(Path(os.environ.get("TMPDIR", "/tmp")) / f"hand-nas-bench-{os.getuid()}") as scratch:
        for t in threads:
            rate = matmul_gmacs_per_s(t)
            result.floor[str(t)] = {"matmul_gmacs_per_s": rate, "floor_ms_per_image": result.gmacs / rate * 1000.0}
            for b in batches:
                with torch_threads(t):
                    runs, skipped, nodes = _engines(model, onnx_fp32, onnx_int8, size, b, t, scratch, programs)
                    times = time_interleaved(runs, warmup, rounds, per_round)
                    busy = {k: busy_threads(runs[k]) for k in programs or {} if k in runs}
                for k, v in times.items():
                    took = (delegation or {}).get(k, {})
                    result.rows.append(BenchRow(k, t, b, statistics.median(v), float(np.percentile(v, 90)), len(v),
                                                nodes=nodes.get(k), partitions=took.get("partitions"),
                                                portable=took.get("portable"), busy_threads=busy.get(k)))
                for k, why in skipped.items():
                    result.rows.append(BenchRow(k, t, b, None, None, 0, why))
                bar.update(1)
            for k, path in (programs or {}).items() if profile else ():
                if Path(path).suffix == ".pte":
                    result.profiles[f"{k} @ {t}"] = profile_pte(path, t, runs=rounds * per_round)
    bar.close()
    return result


def format_bench(r: BenchResult) -> str:
    """The table a user reads: ms per batch, ms per image, and each engine against the compute floor."""
    cpu = r.cpu
    lines = [f"{r.target}: {r.gmacs:.4f} GMACs per image at {r.size}x{r.size} (fvcore convention: one fused "
             "multiply-add = one flop)",
             f"CPU: {cpu['model']} ({cpu['machine']}, {cpu['logical_cpus']} logical CPUs); flags: "
             f"{', '.join(cpu['flags']) or 'none of ' + ', '.join(FLAGS)}"]
    for t, f in r.floor.items():
        lines.append(f"compute floor at {t} thread(s): {f['floor_ms_per_image']:.2f} ms per image "
                     f"(fp32 matmul {f['matmul_gmacs_per_s']:.1f} GMACs/s measured now)")
    lines.append("| engine | threads | batch | median ms | p90 ms | ms / image | x floor | runs | graph nodes "
                 "| partitions | portable ops | busy threads |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")

    def opt(v) -> str:
        return "-" if v is None else str(v)

    for row in r.rows:
        if row.median_ms is None:
            lines.append(f"| {row.engine} | {row.threads} | {row.batch} | - | - | - | - | {row.note} | - | - | - | - |")
            continue
        per_image = row.median_ms / row.batch
        floor = r.floor[str(row.threads)]["floor_ms_per_image"]
        lines.append(f"| {row.engine} | {row.threads} | {row.batch} | {row.median_ms:.2f} | {row.p90_ms:.2f} "
                     f"| {per_image:.2f} | {per_image / floor:.2f} | {row.runs} | {row.nodes if row.nodes else '-'} "
                     f"| {opt(row.partitions)} | {opt(row.portable)} | {opt(row.busy_threads)} |")
    lines.append("median and p90 of single runs after warm-up, engines alternating round by round; graph nodes: "
                 "the nodes onnxruntime runs after its fusions, one kernel launch each; partitions / portable ops: "
                 "ExecuTorch's XNNPACK subgraphs and the ops left outside them (each a boundary); busy threads: "
                 "threads of this process that did >= 10% of the CPU time while the program ran")
    for name, prof in r.profiles.items():
        lines.append(format_profile(name, prof))
    return "\n".join(lines)


def format_profile(name: str, prof: dict, top: int = 8) -> str:
    """One program's operator profile: its groups' shares, then its ``top`` operator kinds."""
    total = prof["ms"] or 1.0
    groups = ", ".join(f"{g} {ms / total:.0%}" for g, ms in prof["groups"].items())
    lines = [f"\n{name} thread(s): where the time goes ({prof['operators']} XNNPACK operators, each its median "
             f"over {prof['runs']} traced runs, summed: {prof['ms']:.2f} ms; the tracer's own cost is outside): "
             f"{groups}",
             f"(the traced delegate call took {prof['delegate_ms']:.2f} ms: XNNPACK reports whole microseconds, so "
             f"{prof['zero']} of the {prof['operators']} operators read 0; the gap is those lost fractions, the "
             f"tracer's cost and the delegate's work between operators, all growing with the operator count)",
             "| operator | group | count | ms | share |", "|---|---|---|---|---|"]
    lines += [f"| {o['op']} | {o['group']} | {o['count']} | {o['ms']:.3f} | {o['ms'] / total:.0%} |"
              for o in prof["ops"][:top]]
    return "\n".join(lines)
