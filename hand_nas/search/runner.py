"""The search loop: ask a backend, gate the cost, run the proxy on an executor, tell the outcome.

Every sampled configuration's cost is known before any training: over-budget ones are told at once
as 'infeasible' with their cost (samplers learn from them). Trials that raise or produce NaN are
told as failed with their error and the search goes on. Ctrl-C cancels running trials, records them
as failed ('interrupted') and stops cleanly. A search killed outright leaves RUNNING trials; the
next run with the same study marks them failed first and continues until the study holds the
requested number of finished trials.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from hand_nas.config import StudyCfg
from hand_nas.errors import HandNasError
from hand_nas.search.backend import Backend, Outcome
from hand_nas.search.gate import gate
from hand_nas.search.optuna_backend import PENALTY_MM
from hand_nas.search.space import SearchSpace, load_space

PENALTY_LATENCY_MS = 1e4


@dataclass
class SearchSummary:
    study: str
    storage: str
    finished: int
    ran: int
    recovered: int
    seconds: float
    rows: list = field(default_factory=list)


def make_backend(cfg: StudyCfg, space: SearchSpace) -> Backend:
    if cfg.backend == "optuna":
        from hand_nas.search.optuna_backend import OptunaBackend

        return OptunaBackend(space, cfg.study, cfg.storage, cfg.sampler, cfg.pruner, cfg.seed, cfg.workers)
    if cfg.backend == "nni":
        from hand_nas.search.nni_backend import NniBackend

        strategy = {"tpe": "evolution", "nsga2": "evolution"}.get(cfg.sampler, cfg.sampler)
        return NniBackend(space, cfg.study, cfg.storage, strategy, cfg.seed, cfg.workers, cfg.trials)
    raise HandNasError(f"backend {cfg.backend!r}: expected 'optuna' or 'nni'")


def make_executor(cfg: StudyCfg):
    from hand_nas.search.executors import LocalExecutor, RayExecutor

    if cfg.executor == "local":
        return LocalExecutor()
    if cfg.executor == "ray":
        return RayExecutor(cfg.workers, cfg.ray_address or None, cfg.cpus_per_trial, cfg.gpus_per_trial)
    raise HandNasError(f"executor {cfg.executor!r}: expected 'ray' or 'local'")


def _values(space: SearchSpace, mpjpe: float, gmacs: float, latency: float | None) -> tuple:
    out = [mpjpe]
    if "gmacs" in space.objectives:
        out.append(gmacs)
    if "latency" in space.objectives:
        out.append(PENALTY_LATENCY_MS if latency is None else latency)
    return tuple(out)


def to_outcome(res: dict, g, space: SearchSpace, attrs: dict) -> Outcome:
    """Turn a worker's result dict into an Outcome with the full record."""
    attrs = dict(attrs, state=res["state"], seconds=round(res.get("seconds", 0.0), 2))
    for key in ("metrics", "init_metrics", "steps", "checkpoint", "latency_ms", "error", "history"):
        if res.get(key) is not None:
            attrs[key] = res[key]
    inter = [(h["step"], h["mpjpe_mm"]) for h in res.get("history", []) if h["step"] > 0]
    if res["state"] == "complete":
        mpjpe = res["metrics"]["mpjpe_mm"]
        if not math.isfinite(mpjpe):
            return Outcome("failed", constraint=g.violation, attrs=dict(attrs, error=f"MPJPE is {mpjpe}"))
        return Outcome("complete", _values(space, mpjpe, g.gmacs_total, res.get("latency_ms")), g.violation, attrs, inter)
    return Outcome(res["state"], constraint=g.violation, attrs=attrs, intermediate=inter)


def run_search(cfg: StudyCfg, progress: bool = True, space: SearchSpace | None = None) -> SearchSummary:
    """Run (or resume) a search until the study holds ``cfg.trials`` finished trials."""
    from tqdm import tqdm

    space = space or load_space(cfg.space)
    if cfg.budget_gmacs:
        space = replace(space, budget_gmacs=cfg.budget_gmacs)
        from hand_nas.search.space import _check_values

        _check_values(space)
    data = _data_dir(cfg.data, space)
    backend = make_backend(cfg, space)
    recovered = backend.recover()
    executor = None
    t0 = time.perf_counter()
    done = start = backend.finished_count()
    running: dict = {}
    best = {"mpjpe": math.inf, "infeasible": 0, "failed": 0}
    bar = tqdm(total=cfg.trials, initial=min(done, cfg.trials), desc=f"search {cfg.study}", unit="trial",
               disable=not progress)

    def finish(p, outcome):
        nonlocal done
        backend.tell(p, outcome)
        done += 1
        if outcome.state == "infeasible":
            best["infeasible"] += 1
        elif outcome.state == "failed":
            best["failed"] += 1
        elif outcome.state == "complete" and outcome.constraint <= 0:
            best["mpjpe"] = min(best["mpjpe"], outcome.values[0])
        bar.update(1)
        bar.set_postfix(best_mpjpe=f"{best['mpjpe']:.2f}" if math.isfinite(best["mpjpe"]) else "-",
                        rejected=best["infeasible"], failed=best["failed"])

    try:
        exhausted = False
        while done < cfg.trials:
            while not exhausted and (executor is None or len(running) < executor.capacity) and done + len(running) < cfg.trials:
                p = backend.ask()
                if p is None:
                    exhausted = True
                    break
                try:
                    model_cfg = space.build(p.params)
                except HandNasError as exc:
                    finish(p, Outcome("failed", attrs={"params": p.params, "error": str(exc), "state": "failed"}))
                    continue
                g = gate(model_cfg, space.budget_gmacs)
                attrs = {"params": p.params, "config": model_cfg.to_dict(), "proxy": space.proxy.to_dict(),
                         "seed": space.proxy.seed, "data": str(data),
                         "cost": {"gmacs_total": round(g.gmacs_total, 6), "gmacs_image": round(g.gmacs_image, 6),
                                  "gmacs_pose": round(g.gmacs_pose, 6), "budget_gmacs": space.budget_gmacs,
                                  "input_size": 256, "convention": "fvcore MACs"}}
                if not g.feasible:
                    finish(p, Outcome("infeasible", _values(space, PENALTY_MM, g.gmacs_total, None), g.violation,
                                      dict(attrs, state="infeasible", reason=g.reason)))
                    continue
                if executor is None:
                    executor = make_executor(cfg)
                ckpt = Path(cfg.out) / cfg.study / p.name
                key = executor.submit(_evaluate, model_cfg.to_dict(), space.proxy.to_dict(), str(data), str(ckpt),
                                      backend.reporter(p), cfg.latency)
                running[key] = (p, g, attrs)
            if not running:
                if exhausted:
                    break
                continue
            for key, res in executor.wait(timeout=1.0):
                p, g, attrs = running.pop(key)
                finish(p, to_outcome(res, g, space, attrs))
    except KeyboardInterrupt:
        if executor is not None:
            executor.cancel_all()
        for p, g, attrs in running.values():
            backend.tell(p, Outcome("failed", constraint=g.violation, attrs=dict(attrs, state="failed",
                                                                                 error="interrupted (Ctrl-C)")))
        running.clear()
        raise
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown()
        backend.close()
    from hand_nas.search.records import load_rows

    return SearchSummary(cfg.study, cfg.storage, done, done - start, recovered, time.perf_counter() - t0,
                         load_rows(cfg.study, cfg.storage))


def _evaluate(cfg_dict, proxy_dict, data, ckpt, reporter, latency):
    from hand_nas.search.evaluate import evaluate_config

    return evaluate_config(cfg_dict, proxy_dict, data, ckpt, reporter, latency)


def _data_dir(spec: str, space: SearchSpace) -> Path:
    if spec == "synthetic":
        from hand_nas.data.synthetic import cached_synthetic

        return cached_synthetic(space.synthetic_n, progress=False)
    path = Path(spec)
    if not (path / "meta.json").is_file():
        raise HandNasError(f"{path}: not a sample directory (no meta.json); pass --data synthetic or a prepared set")
    return path
