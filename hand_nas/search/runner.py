"""The search loop: a strategy proposes, the store creates the trial, the gate costs, an executor trains,
the store records.

Every sampled configuration's cost is known before any training: over-budget ones are recorded at
once as 'infeasible' with their cost (samplers learn from them). Trials that raise or produce NaN
are recorded as failed with their error and the search goes on. Ctrl-C cancels running trials,
records them as failed ('interrupted') and stops cleanly. A driver killed outright stops beating;
the next driver to open the study marks its trials failed (``StudyStore.fail_stale``). The loop
runs until the study holds ``cfg.trials`` trials, counting every driver's, so several drivers can
share one study.
"""
from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from hand_nas.config import StudyCfg, arch_key
from hand_nas.errors import HandNasError
from hand_nas.search.backends import make_strategy, study_sampler
from hand_nas.cost.gate import gate
from hand_nas.search.records import PENALTY_LATENCY_MS, PENALTY_MM, Cost, TrialRecord
from hand_nas.search.space import SearchSpace, load_space, with_budget
from hand_nas.search.storage import LatencyMeta, StudyMeta, StudyStore, trial_count
from hand_nas.search.strategy import Outcome, resolve_sampler
from hand_nas.search.trial_storage import is_uri, location, normalise, publish_data

STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class SearchSummary:
    study: str
    storage: str
    finished: int
    ran: int
    recovered: int
    seconds: float
    records: list = field(default_factory=list)


def make_executor(cfg: StudyCfg):
    from hand_nas.search.executors import LocalExecutor, RayExecutor

    if cfg.executor == "local":
        return LocalExecutor()
    if cfg.executor == "ray":
        return RayExecutor(cfg.workers, cfg.ray_address or None, cfg.cpus_per_trial, cfg.gpus_per_trial)
    raise HandNasError(f"executor {cfg.executor!r}: expected 'ray' or 'local'")


def objective_values(space: SearchSpace, mpjpe: float, gmacs: float, latency: float | None) -> tuple:
    """The values told to the sampler, in the space's objective order."""
    by_name = {"mpjpe": mpjpe, "gmacs": gmacs, "latency": PENALTY_LATENCY_MS if latency is None else latency}
    return tuple(by_name[o] for o in space.objectives)


def trial_folder(out: str, study: str) -> Path:
    """Absolute folder of a study's trial checkpoints; the study name may not leave ``out``."""
    from hand_nas.atomic import confined

    if not STUDY_NAME.fullmatch(study):
        raise HandNasError(f"--study {study[:60]!r}: expected letters, digits, '.', '_' or '-' (at most 100, "
                           f"not starting with '.'), since it names the folder of its checkpoints")
    return confined(Path(out).resolve(), study)


def _record(number: int, res: dict, base: dict) -> TrialRecord:
    """A worker's result dict as the trial's record (a non-finite MPJPE is a failure)."""
    keep = {k: res[k] for k in ("metrics", "init_metrics", "steps", "checkpoint", "latency_ms", "error", "history",
                                "node", "evaluator") if res.get(k) is not None}
    rec = TrialRecord(number=number, state=res["state"], seconds=round(res.get("seconds", 0.0), 2), **base, **keep)
    if rec.state == "complete" and not math.isfinite(rec.mpjpe_mm):
        return replace(rec, state="failed", error=f"MPJPE is {rec.mpjpe_mm}")
    return rec


def pruner_spec(cfg: StudyCfg, space: SearchSpace, log=None):
    """The study's early-stopping rule as a ``make_pruner`` spec (plain data: it travels to workers).

    'noise' needs the proxy's measured seed noise (``cfg.noise``: a proxy check JSON or a figure in mm,
    else OUT/proxy_check/SPACE.json); without one no trial is stopped early, and ``log`` says so.
    """
    from hand_nas.search.pruning import NoiseProfile, load_noise

    if cfg.pruner != "noise":
        return cfg.pruner
    source = cfg.noise
    if not source:
        default = Path(cfg.out) / "proxy_check" / f"{space.name}.json"
        if not default.is_file():
            if log:
                log(f"no measured proxy noise for space {space.name!r} ({default} missing): every trial runs to the "
                    f"end; run `hand-nas proxy check --space {space.name}` or pass --noise MM to stop trials early")
            return "none"
        source = str(default)
    try:
        profile = NoiseProfile(float(source), {}, "--noise")
    except ValueError:
        profile = load_noise(source, space.proxy.to_dict())
    else:
        if not (math.isfinite(profile.final) and profile.final > 0):
            raise HandNasError(f"--noise {source}: expected a finite figure > 0 mm or a proxy check JSON")
    min_steps = max(space.proxy.eval_every or space.proxy.steps, profile.first_step)
    if log and profile.first_step > (space.proxy.eval_every or space.proxy.steps):
        log(f"early stopping from step {min_steps} on: the proxy check ({profile.source}) ranks like its long runs "
            "only from there (Kendall tau > 0 at every later evaluation)")
    return {"name": "noise", "noise": profile.to_dict(), "factor": cfg.noise_factor, "eta": 3.0,
            "min_steps": min_steps, "multi_objective": space.multi_objective}


def run_search(cfg: StudyCfg, progress: bool = True, space: SearchSpace | None = None) -> SearchSummary:
    """Run (or resume, or join) a search until the study holds ``cfg.trials`` trials."""
    from tqdm import tqdm

    space = with_budget(space or load_space(cfg.space), cfg.budget_gmacs)
    sampler = resolve_sampler(cfg.backend, cfg.sampler)
    folder = checkpoint_root(cfg)
    evaluator = supernet_evaluator(cfg, space)
    data = data_location(cfg, data_dir(evaluator["data"] if evaluator else cfg.data, space.synthetic_n))
    pruner = "none" if evaluator else pruner_spec(cfg, space, log=lambda msg: print(f"hand-nas: {msg}", file=sys.stderr))
    # A resumed study continues the sampler's sequence instead of replaying it: optuna does not store
    # sampler state, and a seeded random/NSGA-II start would propose the finished trials' parameters again.
    seed = cfg.seed + trial_count(cfg.study, cfg.storage)
    store = StudyStore(cfg.study, cfg.storage, space,
                       sampler=study_sampler(cfg.backend, sampler, seed, space.multi_objective, cfg.workers),
                       pruner=pruner, heartbeat_s=cfg.heartbeat_s)
    meta = StudyMeta(backend=cfg.backend, sampler=sampler, space=space.source, objectives=tuple(space.objectives),
                     budget_gmacs=space.budget_gmacs, pruner=pruner, evaluator=evaluator or {"name": "train"})
    store.claim(meta)
    predictor = None
    if space.uses_latency:
        from hand_nas.cost.predictor import LatencyPredictor, default_path

        path = cfg.latency_predictor or default_path(space.latency_runtime)
        predictor = LatencyPredictor.load(path)
        if predictor.runtime != space.latency_runtime:
            raise HandNasError(f"{path}: runtime: {predictor.runtime}, but {space.source} reads latency on "
                               f"{space.latency_runtime} (latency_runtime); calibrate that runtime")
        store.claim(replace(meta, latency=LatencyMeta(source=predictor.source, predictor=str(path),
                                                      cpu=predictor.cpu, budget_ms=space.budget_latency_ms)))
    recovered = store.fail_stale()
    scored = scored_architectures(store.records(), evaluator)
    strategy = make_strategy(cfg.backend, sampler, space, seed, cfg.workers, cfg.trials)
    executor = None
    t0 = time.perf_counter()
    start = store.finished_count()
    ran = 0
    running: dict = {}
    tally = {"best": math.inf, "infeasible": 0, "failed": 0}
    bar = tqdm(total=cfg.trials, initial=min(start, cfg.trials), desc=f"search {cfg.study}", unit="trial",
               disable=not progress)

    def finish(p, rec: TrialRecord, values=None):
        nonlocal ran
        store.finish(rec, values)
        strategy.tell(p, Outcome(rec.state, tuple(values or ())))
        ran += 1
        if rec.state in ("infeasible", "failed"):
            tally[rec.state] += 1
        elif rec.trained:
            tally["best"] = min(tally["best"], rec.mpjpe_mm)
        bar.update(1)
        bar.set_postfix(best_mpjpe=f"{tally['best']:.2f}" if math.isfinite(tally["best"]) else "-",
                        rejected=tally["infeasible"], failed=tally["failed"])

    try:
        exhausted = False
        while True:
            while (not exhausted and (executor is None or len(running) < executor.capacity)
                   and store.trial_count() < cfg.trials):
                p = strategy.ask()
                if p is None:
                    exhausted = True
                    break
                trial = store.ask(p.params)  # params None: the study's sampler samples them here
                p.number = trial.number
                if p.params is None:
                    p.params = store.params_of(trial)
                base = {"backend": strategy.backend, "params": p.params, "proxy": space.proxy.to_dict(),
                        "seed": space.proxy.seed, "data": data}
                try:
                    model_cfg = space.build(p.params)
                except HandNasError as exc:
                    finish(p, TrialRecord(p.number, "failed", error=str(exc), **base))
                    continue
                g = gate(model_cfg, space.budget_gmacs)
                base.update(config=model_cfg.to_dict(), cost=Cost(round(g.gmacs_total, 6), round(g.gmacs_image, 6),
                                                                   round(g.gmacs_pose, 6), space.budget_gmacs))
                reason = g.reason
                if predictor is not None:
                    base["latency_ms"] = round(predictor.predict_ms(model_cfg), 3)
                    if reason == "" and space.budget_latency_ms is not None and base["latency_ms"] > space.budget_latency_ms:
                        reason = (f"over latency budget: {base['latency_ms']:.2f} > {space.budget_latency_ms:.2f} ms "
                                  f"(predicted ORT fp32, 1 thread, batch 1, 256 px)")
                if reason:
                    finish(p, TrialRecord(p.number, "infeasible", error=reason, **base),
                           objective_values(space, PENALTY_MM, g.gmacs_total, base.get("latency_ms")))
                    continue
                if evaluator and (arch := arch_key(base["config"])) in scored:
                    # the supernet scores an architecture the same every time: a repeat proposal is told its score
                    # (no node ran it)
                    first, res = scored[arch]
                    rec = _record(p.number, dict(res, seconds=0.0, node=None,
                                                 evaluator=dict(res["evaluator"], same_as=first)), base)
                    finish(p, rec, objective_values(space, rec.mpjpe_mm, rec.gmacs, rec.latency_ms))
                    continue
                if executor is None:
                    executor = make_executor(cfg)
                # only locations under --storage-path (or, without it, --out and the data as given) travel
                ckpt = location(folder, f"trial_{p.number:04d}")
                if evaluator:
                    # no checkpoint per trial: the config and the supernet's sha256 determine its weights
                    key = executor.submit(_evaluate_subnet, model_cfg.to_dict(), evaluator["supernet"], data, None,
                                          cfg.eval_images, evaluator["sha256"])
                else:
                    key = executor.submit(_evaluate, model_cfg.to_dict(), space.proxy.to_dict(), data, ckpt,
                                          store.reporter(p.number, [g.gmacs_total, base.get("latency_ms")]),
                                          cfg.latency and predictor is None, cfg.device, cfg.precision)
                running[key] = (p, base)
            if not running:
                break
            for key, res in executor.wait(timeout=1.0):
                p, base = running.pop(key)
                rec = _record(p.number, res, base)
                values = (objective_values(space, rec.mpjpe_mm, rec.gmacs, rec.latency_ms)
                          if rec.state == "complete" else None)
                if evaluator and rec.state == "complete":
                    scored.setdefault(arch_key(rec.config), (p.number, res))
                finish(p, rec, values)
    except KeyboardInterrupt:
        if executor is not None:
            executor.cancel_all()
        for p, base in running.values():
            store.finish(TrialRecord(p.number, "failed", error="interrupted (Ctrl-C)", **base))
        running.clear()
        raise
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown()
        strategy.close()
        store.close()
    return SearchSummary(cfg.study, cfg.storage, store.finished_count(), ran, recovered, time.perf_counter() - t0,
                         store.records())


def scored_architectures(records: list[TrialRecord], evaluator: dict | None) -> dict[str, tuple[int, dict]]:
    """{architecture (``arch_key``): (the first trial that scored it, its result)} for the completed trials of a
    study scored by this same supernet on the same images; empty for the training evaluator, whose every run is a
    new sample."""
    if not evaluator:
        return {}
    out: dict[str, tuple[int, dict]] = {}
    for r in records:
        ev = r.evaluator or {}
        if r.trained and (ev.get("sha256"), ev.get("eval_images")) == (evaluator["sha256"], evaluator["eval_images"]):
            res = {"state": "complete", "metrics": r.metrics, "evaluator": ev, "node": r.node}
            out.setdefault(arch_key(r.config), (ev.get("same_as", r.number), res))
    return out


def _evaluate(cfg_dict, proxy_dict, data, ckpt, reporter, latency, device="auto", precision="fp32"):
    from hand_nas.search.evaluate import evaluate_trial

    return evaluate_trial(cfg_dict, proxy_dict, data, ckpt, reporter, latency, device=device, precision=precision)


def _evaluate_subnet(cfg_dict, supernet_dir, data, ckpt, eval_images, sha256):
    from hand_nas.search.evaluate import evaluate_subnet

    return evaluate_subnet(cfg_dict, supernet_dir, data, ckpt, eval_images, expect_sha256=sha256)


def supernet_evaluator(cfg: StudyCfg, space: SearchSpace) -> dict | None:
    """With ``evaluator='supernet'``: the supernet (verified) and the data it is scored on, after checking that
    it was built for this space; None for the training evaluator."""
    if cfg.evaluator == "train":
        return None
    if cfg.evaluator != "supernet":
        raise HandNasError(f"evaluator {cfg.evaluator!r}: expected 'train' or 'supernet'")
    if not cfg.supernet:
        raise HandNasError("--evaluator supernet needs --supernet FOLDER (hand-nas supernet train / export)")
    from hand_nas.supernet.supernet import load_supernet

    net, record = load_supernet(cfg.supernet)
    if [(p.path, p.kind, tuple(p.values), p.low, p.high) for p in net.space.params] != \
            [(p.path, p.kind, tuple(p.values), p.low, p.high) for p in space.params]:
        raise HandNasError(f"{cfg.supernet}: a supernet of space {net.space.name!r} ({net.space.source}), whose "
                           f"fields or choices differ from {space.source}'s; search the space it was trained for")
    data = cfg.data
    if data == "synthetic" and Path(record.get("data", "")).is_dir():
        data = record["data"]  # its own held-out split: the one its training never saw
    return {"name": "supernet", "supernet": record["folder"], "sha256": record["sha256"], "data": data,
            "eval_images": cfg.eval_images or None}


def checkpoint_root(cfg: StudyCfg) -> str:
    """Where the study's trial checkpoints go: STORAGE/STUDY with --storage-path, else OUT/STUDY (absolute)."""
    if not cfg.storage_path:
        return str(trial_folder(cfg.out, cfg.study))
    root = normalise(cfg.storage_path)
    if is_uri(root):
        trial_folder("/", cfg.study)  # the study name's check alone
        return location(root, cfg.study)
    return str(trial_folder(root, cfg.study))


def data_location(cfg: StudyCfg, folder: Path) -> str:
    """The data set's location as trials receive it: published once under STORAGE/data with --storage-path."""
    return publish_data(normalise(cfg.storage_path), folder) if cfg.storage_path else str(folder)


def data_dir(spec: str, synthetic_n: int, progress: bool = False) -> Path:
    """The sample folder a run reads: 'synthetic' (the cached embedded set of that size) or a prepared folder."""
    if spec == "synthetic":
        from hand_nas.data.synthetic import cached_synthetic

        return cached_synthetic(synthetic_n, progress=progress)
    path = Path(spec)
    if not (path / "meta.json").is_file():
        raise HandNasError(f"{path}: not a sample directory (no meta.json); pass --data synthetic or a prepared set")
    return path.resolve()
