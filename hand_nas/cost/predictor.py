"""Latency known before training: a per-machine predictor of the deployment graph's latency on a runtime.

What is predicted is what users deploy, on the runtime they deploy with (``RUNTIMES``): the fp32 ONNX graph of
``hand_nas.export`` run by onnxruntime, or the ExecuTorch XNNPACK program of ``hand_nas.export_executorch``
(fp32, or int8 by PT2E static quantization), on the CPU, 1 thread, batch 1, 3x256x256. ExecuTorch's lowering
takes one to five minutes of a core per architecture, so its programs are written once into a cache
(``lower_programs``: resumable, and safe to run beside other jobs since it times nothing) and timed when the
machine is quiet. Latency does not need trained weights, so
``hand-nas latency calibrate`` exports and times the untrained models of architectures sampled from a
space (medians of alternating rounds after warm-up) and fits a non-negative linear model on features
known from the config alone: the closed-form MACs (fvcore convention) split by the kind of work, since
onnxruntime runs each at its own speed (the encoder's pointwise GEMMs, its memory-bound depthwise
convolutions and their expanded activations, the Mobile-Former token path, the decoders, the pose part,
the graph's per-vertex and Laplacian work), and counts of the operations whose cost is dispatch rather
than arithmetic (blocks, graph blocks, bridges, cross-hand modules and attention per pyramid level).
Measured on an AMD EPYC (``experiments/README.md``): the MACs of the image and pose parts plus the
counts alone predicted 72% of 50 architectures within +-10%; split by kind, 98%. Non-negative least squares weighted
by 1/latency minimises the relative error. The fit is stored per CPU (model name and vector flags)
and refused on another CPU or by another deployment graph version. ``hand-nas latency validate``
measures fresh architectures and reports the share predicted within +-10% and the worst error
(nn-Meter's criterion).
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hand_nas.config import ModelCfg, arch_key
from hand_nas.errors import HandNasError
from hand_nas.layers.cross_hand import ElementwiseCrossHand, NoCrossHand, SeparableCrossHand, SoftmaxCrossHand
from hand_nas.models.bridges import LightCrossBridge, NoBridge, PifaBridge
from hand_nas.registry import BRIDGES, CROSS_HAND

FEATURES = ("const", "gmacs_stem", "gmacs_pointwise", "gmacs_depthwise", "mact_expanded", "gmacs_tokens",
            "token_blocks", "blocks", "gmacs_encoder_other", "gmacs_image_rest", "gmacs_pose", "graph_blocks",
            "levels", "mvert_channels", "gmacs_laplacian", "bridge_mhsa", "vertices_mhsa", "bridge_light_cross",
            "cross_softmax", "vertices_softmax", "cross_separable", "cross_elementwise", "tokens", "direct")
SIZE, THREADS, BATCH = 256, 1, 1
# runtime -> what its latencies are, in words (study records and reports quote it)
RUNTIMES = {"onnxruntime": "ORT fp32 deployment graph",
            "executorch": "ExecuTorch XNNPACK fp32 program",
            "executorch-int8": "ExecuTorch XNNPACK int8 program (PT2E static, per-channel)"}


def _encoder_parts(cfg: ModelCfg) -> dict:
    """The encoder's closed-form cost by kind of work (``cost.analytic.encoder_macs``'s ``parts``) plus
    ``total`` and ``other`` (what the walk does not split: MobileViT blocks, heads, ResNet-50)."""
    from hand_nas.cost import analytic as A

    parts = dict(stem=0, pointwise=0, depthwise=0, expanded=0, tokens=0, blocks=0, token_blocks=0)
    tokens_read = BRIDGES.get(cfg.bridge.attention).reads_tokens
    total = A.encoder_macs(cfg.encoder, SIZE, tokens_read=tokens_read, parts=parts)[0]
    parts["total"] = total
    parts["other"] = total - parts["stem"] - parts["pointwise"] - parts["depthwise"] - parts["tokens"]
    return parts


def features(cfg: ModelCfg) -> np.ndarray:
    """The predictor's inputs for one configuration (no model is built): closed-form MACs split by the kind of
    work (GEMM-like, memory-bound, dispatch-bound) and counts of the operations whose cost is dispatch."""
    from hand_nas.cost.gate import cost_of

    image, pose = cost_of(cfg)
    enc = _encoder_parts(cfg)
    b, g = cfg.bridge, cfg.graph
    lv = b.levels
    verts = [63 * 2 ** level for level in range(lv)]
    outs = g.dims[1:lv + 1]
    vert_channels = sum(v * d * b.blocks for v, d in zip(verts, outs))  # per-vertex element-wise work
    laplacian = sum(v * v * d * b.blocks for v, d in zip(verts, outs))  # the Chebyshev (v, v) @ (v, d) products
    return np.array([
        1.0, enc["stem"] / 1e9, enc["pointwise"] / 1e9, enc["depthwise"] / 1e9, enc["expanded"] / 1e6,
        enc["tokens"] / 1e9, enc["token_blocks"], enc["blocks"], enc["other"] / 1e9, image - enc["total"] / 1e9,
        pose, lv * b.blocks, lv, vert_channels / 1e6, laplacian / 1e9,
        *_op_features(cfg, lv, sum(verts)), float(cfg.encoder.tokens), float(getattr(g, "direct", False))])


# The op choices' features, keyed by their registered class: (feature name, per level or per vertex summed over
# levels). Their names are fixed columns of FEATURES, so a fitted predictor keeps its meaning.
BRIDGE_FEATURES = {PifaBridge: (("bridge_mhsa", "levels"), ("vertices_mhsa", "vertices")),
                   LightCrossBridge: (("bridge_light_cross", "levels"),), NoBridge: ()}
CROSS_FEATURES = {SoftmaxCrossHand: (("cross_softmax", "levels"), ("vertices_softmax", "vertices")),
                  SeparableCrossHand: (("cross_separable", "levels"),),
                  ElementwiseCrossHand: (("cross_elementwise", "levels"),), NoCrossHand: ()}
OP_FEATURES = FEATURES[FEATURES.index("bridge_mhsa"):FEATURES.index("tokens")]


def _op_features(cfg: ModelCfg, levels: int, vertices: int) -> list[float]:
    """The OP_FEATURES columns of ``cfg``: its bridge's and cross-hand type's, the others zero."""
    out = dict.fromkeys(OP_FEATURES, 0.0)
    per = {"levels": levels, "vertices": vertices}
    for name, unit in (BRIDGE_FEATURES[BRIDGES.get(cfg.bridge.attention)]
                       + CROSS_FEATURES[CROSS_HAND.get(cfg.graph.cross_hand)]):
        out[name] = float(per[unit])
    return list(out.values())


def code_digest(source: str) -> str:
    """sha256 of a module's code without its docstrings and comments (its syntax tree, positions left out):
    editing the prose of a module does not change the programs it writes, so it re-keys nothing."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def deploy_version(runtime: str = "onnxruntime") -> str:
    """A digest of the code that shapes ``runtime``'s deployment graph: a fit of another graph is refused."""
    import hand_nas.export as ex
    import hand_nas.export_executorch as et
    import hand_nas.models.hand_batched as hb
    import hand_nas.models.mobile_form as mf
    import hand_nas.models.traceable as tr

    h = hashlib.sha256()
    for mod in (ex, hb, tr) if runtime == "onnxruntime" else (hb, tr, mf, et):
        h.update(code_digest(Path(mod.__file__).read_text()).encode())
    if runtime != "onnxruntime":
        from importlib.metadata import version

        h.update(f"{runtime} executorch {version('executorch')}".encode())
    return h.hexdigest()[:12]


def check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise HandNasError(f"latency runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if runtime != "onnxruntime":
        from hand_nas.export_executorch import require_executorch

        require_executorch()


def cpu_key(info: dict | None = None) -> str:
    from hand_nas.cost.bench import cpu_info

    info = info or cpu_info()
    return re.sub(r"[^A-Za-z0-9]+", "-", info["model"]).strip("-")[:60] + "-" + "-".join(info["flags"] or ["plain"])


def program_path(cfg: ModelCfg, runtime: str, folder: Path) -> Path:
    """Where ``cfg``'s lowered program for ``runtime`` is cached: keyed by the configuration (not its name: a space
    that extends another lowers nothing again) and the code."""
    key = hashlib.sha256(arch_key(cfg.to_dict()).encode()).hexdigest()[:16]
    return Path(folder) / f"{runtime}-{deploy_version(runtime)}" / f"{key}.pte"


def programs_dir() -> Path:
    from hand_nas.paths import home

    return home() / "latency" / "programs"


def lower_programs(cfgs: list[ModelCfg], runtime: str, folder: Path | None = None, log=print) -> list[Path]:
    """Each configuration's untrained model lowered for ``runtime`` (ExecuTorch), cached under ``folder``: what
    is there is kept (a killed run resumes), each file written whole. Several processes may share the cache (one
    per core): each program is claimed by a lock the system drops when its holder dies, and one held elsewhere
    is skipped. int8 is calibrated on two random images (latency does not depend on the scales)."""
    from filelock import FileLock, Timeout

    from hand_nas.export_executorch import export_pte
    from hand_nas.models import build_model

    folder = Path(folder) if folder else programs_dir()
    paths = [program_path(c, runtime, folder) for c in cfgs]
    todo = [(c, p) for c, p in zip(cfgs, paths) if not p.is_file()]
    if todo:
        log(f"lowering {len(todo)} of {len(cfgs)} programs for {runtime} into {paths[0].parent} "
            f"({len(cfgs) - len(todo)} cached; minutes each)")
    calib = np.random.default_rng(0).random((2, 3, SIZE, SIZE), dtype=np.float32) \
        if runtime == "executorch-int8" else None
    skipped, spent, lowered = 0, 0.0, 0
    for k, (cfg, path) in enumerate(todo):
        t0 = time.perf_counter()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(path.with_suffix(".lock"), timeout=0):
                if path.is_file():  # another process finished it since this one listed the cache
                    continue
                partial = path.with_suffix(".partial")  # a killed lowering leaves this, never a truncated program
                took = export_pte(build_model(cfg).eval(), partial, SIZE, calib=calib)
                partial.replace(path)
        except Timeout:
            skipped += 1
            continue
        spent, lowered = spent + time.perf_counter() - t0, lowered + 1
        # the ETA assumes this process lowers every program left; one sharing the cache halves it
        log(f"  {k + 1}/{len(todo)} {cfg.name}: {took.partitions} partition(s), {took.portable} portable op(s), "
            f"{time.perf_counter() - t0:.0f} s; ETA {spent / lowered * (len(todo) - k - 1) / 60:.0f} min")
    missing = sum(not p.is_file() for p in paths)
    if missing:
        raise HandNasError(f"{folder}: {missing} of {len(paths)} programs are still being lowered by another process "
                           f"({skipped} skipped here); run this again when it ends")
    return paths


def _time_alternating(runs: list, rounds: int, per_round: int, warmup: int) -> list[float]:
    """Each callable's median over alternating rounds of its mean ms per run (``bench.time_interleaved``)."""
    from hand_nas.cost.bench import time_interleaved

    times = time_interleaved(dict(enumerate(runs)), warmup, rounds, per_round)
    return [float(np.median(np.reshape(times[k], (rounds, per_round)).mean(axis=1))) for k in range(len(runs))]


def measure_ms(cfgs: list[ModelCfg], rounds: int = 5, per_round: int = 5, warmup: int = 5,
               runtime: str = "onnxruntime", folder: Path | None = None, log=print) -> list[float]:
    """Latency (ms, median of alternating rounds) of each configuration's untrained deployment graph on
    ``runtime``; ExecuTorch programs are lowered into the cache first (``lower_programs``)."""
    import torch

    from hand_nas.models import build_model

    x = np.random.rand(BATCH, 3, SIZE, SIZE).astype(np.float32)
    if runtime != "onnxruntime":
        from hand_nas.cost.runtimes import load_pte

        methods = [load_pte(p, THREADS) for p in lower_programs(cfgs, runtime, folder, log)]
        xt = [torch.as_tensor(x)]
        return _time_alternating([lambda m=m: m.execute(xt) for m in methods], rounds, per_round, warmup)
    from hand_nas.cost.latency import ort_session
    from hand_nas.export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        sessions = []
        for i, cfg in enumerate(cfgs):
            path = export_onnx(build_model(cfg).eval(), Path(tmp) / f"m{i}.onnx", SIZE, BATCH)
            sessions.append(ort_session(path, THREADS))
        feeds = [{s.get_inputs()[0].name: x} for s in sessions]
        return _time_alternating([lambda s=s, f=f: s.run(None, f) for s, f in zip(sessions, feeds)], rounds,
                                 per_round, warmup)


@dataclass(frozen=True)
class LatencyPredictor:
    """A fitted predictor: ``weights`` over ``FEATURES``, for the CPU and deployment graph it was measured on."""

    weights: tuple[float, ...]
    cpu: dict
    deploy_version: str
    space: str
    n: int
    fit_share_within_10: float
    threads: int = THREADS
    batch: int = BATCH
    size: int = SIZE
    runtime: str = "onnxruntime"  # fits written before runtimes were named are ORT's

    @property
    def source(self) -> str:
        """What the predicted latencies are, in words."""
        return f"predicted: {RUNTIMES[self.runtime]}, {self.threads} thread, batch {self.batch}, {self.size} px"

    def predict_ms(self, cfg: ModelCfg) -> float:
        return float(features(cfg) @ np.asarray(self.weights))

    def save(self, path: str | Path, rows: list[dict] | None = None) -> Path:
        """Write the fit (and the measured ``rows`` it came from, to refit or audit later)."""
        from hand_nas.atomic import atomic_file

        with atomic_file(Path(path), "w") as fh:
            json.dump(asdict(self) | {"features": list(FEATURES), "rows": rows or []}, fh, indent=1)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, check_machine: bool = True) -> LatencyPredictor:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise HandNasError(f"{path}: no latency calibration for this CPU (run `hand-nas latency calibrate "
                               f"--space SPACE [--runtime NAME]`)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise HandNasError(f"{path}: not a latency calibration ({exc})") from None
        if d.get("features") != list(FEATURES):
            raise HandNasError(f"{path}: features: {d.get('features')!r}, this version predicts from {list(FEATURES)}; "
                               f"calibrate again")
        d.pop("features")
        d.pop("rows", None)
        pred = cls(**{**d, "weights": tuple(d["weights"])})
        if pred.runtime not in RUNTIMES:
            raise HandNasError(f"{path}: runtime: {pred.runtime!r}, expected one of {', '.join(RUNTIMES)}")
        if check_machine:
            from hand_nas.cost.bench import cpu_info

            here = cpu_info()
            if (pred.cpu.get("model"), pred.cpu.get("flags")) != (here["model"], here["flags"]):
                raise HandNasError(f"{path}: cpu: measured on {pred.cpu.get('model')} {pred.cpu.get('flags')}, this is "
                                   f"{here['model']} {here['flags']}; calibrate on this machine")
            if pred.deploy_version != deploy_version(pred.runtime):
                raise HandNasError(f"{path}: deploy_version: {pred.deploy_version}, the {pred.runtime} deployment "
                                   f"graph's code is now {deploy_version(pred.runtime)}; calibrate again")
        return pred


def default_path(runtime: str = "onnxruntime") -> Path:
    """This CPU's calibration for ``runtime`` (ORT's keeps its older name)."""
    from hand_nas.paths import home

    return home() / "latency" / (f"{cpu_key()}.json" if runtime == "onnxruntime" else f"{cpu_key()}.{runtime}.json")


def sample_configs(space, n: int, seed: int) -> list[ModelCfg]:
    """``n`` feasible configurations of ``space`` (the base preset first), spread over its cost range."""
    return [c for _, c, _ in space.spread(n - 1, seed)][:n]


def fit(cfgs: list[ModelCfg], measured: list[float], cpu: dict, space: str,
        runtime: str = "onnxruntime") -> LatencyPredictor:
    from scipy.optimize import nnls

    X = np.stack([features(c) for c in cfgs])
    y = np.asarray(measured)
    w, _ = nnls(X / y[:, None], np.ones(len(y)))  # minimises the sum of squared relative errors
    rel = np.abs(X @ w - y) / y
    return LatencyPredictor(tuple(float(v) for v in w), cpu, deploy_version(runtime), space, len(y),
                            float(np.mean(rel <= 0.10)), runtime=runtime)


def _measure(cfgs: list[ModelCfg], runtime: str, folder, log) -> list[float]:
    ms = []
    for k in range(0, len(cfgs), 10):  # ten sessions / programs at a time keep memory small
        ms += measure_ms(cfgs[k:k + 10], runtime=runtime, folder=folder, log=log)
        log(f"  {len(ms)}/{len(cfgs)} measured")
    return ms


def calibrate(space, n: int = 40, seed: int = 1, log=print, runtime: str = "onnxruntime",
              folder: Path | None = None) -> tuple[LatencyPredictor, list[dict]]:
    """Measure ``n`` sampled architectures of ``space`` on ``runtime`` and fit the predictor."""
    from hand_nas.cost.bench import cpu_info

    check_runtime(runtime)
    cfgs = sample_configs(space, n, seed)
    log(f"measuring {len(cfgs)} architectures of {space.source}: {RUNTIMES[runtime]}, {THREADS} thread, batch "
        f"{BATCH}, {SIZE}x{SIZE}, medians of alternating rounds")
    ms = _measure(cfgs, runtime, folder, log)
    pred = fit(cfgs, ms, cpu_info(), str(space.source), runtime)
    rows = [{"config": c.name, "features": features(c).tolist(), "measured_ms": m, "predicted_ms": pred.predict_ms(c)}
            for c, m in zip(cfgs, ms)]
    return pred, rows


def speed_drift(calibration_rows: list[dict], rows: list[dict]) -> float | None:
    """Median of measured now / measured at calibration over the architectures timed both times (the base preset
    at least): how far this machine's speed moved since the calibration. None when none was timed twice."""
    then = {tuple(r["features"]): r["measured_ms"] for r in calibration_rows if "features" in r}
    ratios = [r["measured_ms"] / then[tuple(r["features"])] for r in rows if tuple(r["features"]) in then]
    return float(np.median(ratios)) if ratios else None


def validate(pred: LatencyPredictor, space, n: int = 50, seed: int = 7, log=print, folder: Path | None = None) -> dict:
    """Share of ``n`` fresh architectures predicted within +-10% of their measured latency (on the predictor's
    runtime), and the worst error."""
    from scipy.stats import kendalltau

    from hand_nas.cost.gate import estimate_gmacs

    check_runtime(pred.runtime)
    cfgs = sample_configs(space, n, seed)
    ms = _measure(cfgs, pred.runtime, folder, log)
    rows = [{"config": c.name, "gmacs": float(estimate_gmacs(c)), "features": features(c).tolist(), "measured_ms": m,
             "predicted_ms": pred.predict_ms(c)} for c, m in zip(cfgs, ms)]
    rel = [abs(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows]
    gm, lat = [r["gmacs"] for r in rows], [r["measured_ms"] for r in rows]
    return {"n": len(rows), "runtime": pred.runtime, "share_within_10": float(np.mean(np.asarray(rel) <= 0.10)),
            "worst_rel_error": max(rel), "median_rel_error": float(np.median(rel)),
            "gmacs_vs_latency_tau": float(kendalltau(gm, lat).statistic), "cpu": pred.cpu, "rows": rows}
