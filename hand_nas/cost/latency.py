"""CPU latency of a model at batch 1: torch eager and onnxruntime fp32 (the deployment graph of ``hand_nas.export``).

Both run in one process with an explicit thread count, after warm-up runs, and report the median
of the timed repeats (milliseconds).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def _median_ms(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def torch_latency_ms(model: nn.Module, size: int = 256, threads: int = 1, warmup: int = 5, repeats: int = 20) -> float:
    """Median eager-mode forward time (ms) at batch 1 with ``threads`` intra-op threads."""
    from hand_nas.threads import torch_threads

    was = model.training
    model.eval()
    x = torch.rand(1, 3, size, size)
    try:
        with torch_threads(threads), torch.inference_mode():
            return _median_ms(lambda: model(x), warmup, repeats)
    finally:
        model.train(was)


def ort_session(path: str | Path, threads: int = 1, profile_prefix: str | Path | None = None,
                optimized_path: str | Path | None = None):
    """An onnxruntime CPU session with every graph optimisation; ``profile_prefix``: profile its runs there;
    ``optimized_path``: write the graph it runs there."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix is not None:
        opts.enable_profiling, opts.profile_file_prefix = True, str(profile_prefix)
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
        opts.log_severity_level = 3  # not the warning that a graph saved after layout changes is CPU-specific
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_session_with_graph(path: str | Path, threads: int = 1):
    """(session, graph): an ``ort_session`` of ``path`` and the ONNX graph it runs (after onnxruntime's own fusions)."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        opt = Path(tmp) / "optimized.onnx"
        sess = ort_session(path, threads, optimized_path=opt)
        return sess, onnx.load(str(opt), load_external_data=False).graph


def ort_latency_ms(path: str | Path, size: int = 256, threads: int = 1, warmup: int = 5, repeats: int = 20) -> float:
    """Median onnxruntime (CPU) run time (ms) of an ONNX file at batch 1."""
    sess = ort_session(path, threads)
    name = sess.get_inputs()[0].name
    x = np.random.rand(1, 3, size, size).astype(np.float32)
    return _median_ms(lambda: sess.run(None, {name: x}), warmup, repeats)


def ort_latency_interleaved_ms(paths: dict, size: int = 256, threads: int = 1, warmup: int = 10, rounds: int = 8,
                               per_round: int = 10) -> dict:
    """{name: median ms per run} for several ONNX files timed in alternating rounds, so that a slow
    moment of a shared machine hits all of them alike (for ratios between files)."""
    sessions = {k: ort_session(p, threads) for k, p in paths.items()}
    x = np.random.rand(1, 3, size, size).astype(np.float32)
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    for k, s in sessions.items():
        for _ in range(warmup):
            s.run(None, feeds[k])
    times = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            t = time.perf_counter()
            for _ in range(per_round):
                s.run(None, feeds[k])
            times[k].append((time.perf_counter() - t) * 1000.0 / per_round)
    return {k: statistics.median(v) for k, v in times.items()}


def ort_node_profile_ms(path: str | Path, size: int = 256, threads: int = 1, runs: int = 30
                        ) -> dict[str, tuple[float, str]]:
    """{node name: (median kernel ms over ``runs`` runs, the name it is filed under)} of an ONNX file under
    onnxruntime's profiler at batch 1 (the median leaves the cold first run out).

    The nodes are those of the graph onnxruntime runs. A node it fused under a new name
    ('SkipLayerNormalization_token_12') is filed under the first of its outputs, then of its inputs from the
    last (a fused residual's own branch comes after the skip input), that carries an exported module path
    ('/net/...'), so its time stays with the module it came from.
    Profiling adds a fixed cost per node: compare files with it, not latencies."""
    import json
    from collections import defaultdict

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        opt = Path(tmp) / "optimized.onnx"
        sess = ort_session(path, threads, profile_prefix=Path(tmp) / "profile", optimized_path=opt)
        feed = {sess.get_inputs()[0].name: np.random.rand(1, 3, size, size).astype(np.float32)}
        for _ in range(runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
        filed = {}
        for n in onnx.load(str(opt), load_external_data=False).graph.node:
            named = [t for t in (n.name, *n.output, *reversed(n.input)) if t.startswith("/net/")]
            filed[n.name] = named[0] if named else n.name
    durations = defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            durations[e["name"][:-len("_kernel_time")]].append(e["dur"] / 1000.0)
    return {k: (statistics.median(v), filed.get(k, k)) for k, v in durations.items()}


def model_latency(model: nn.Module, size: int = 256, threads: int = 1, warmup: int = 5, repeats: int = 20) -> dict:
    """{'latency_ms_torch', 'latency_ms_ort', 'threads', 'input_size'} for a model, fp32, batch 1."""
    from hand_nas.export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(model, Path(tmp) / "model.onnx", size)
        ort_ms = ort_latency_ms(onnx_path, size, threads, warmup, repeats)
    return {"latency_ms_torch": torch_latency_ms(model, size, threads, warmup, repeats), "latency_ms_ort": ort_ms,
            "threads": threads, "input_size": size}
