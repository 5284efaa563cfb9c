"""Training runs cached per (model config, training config, data): a run is trained once, then read.

The key is machine-independent by construction: the JSON of both configs' non-default fields and the data
folder's path. Results live in ``$HAND_NAS_HOME/proxy_runs`` or a ``cache`` folder (one an experiment keeps
and commits); snapshots of a run in progress stay under ``$HAND_NAS_HOME/proxy_runs_partial``, so a killed
run resumes. What the proxy check, the reproduced tables and the experiments train goes through here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from hand_nas.config import ModelCfg, TrainCfg


def non_default(cfg) -> dict:
    """A config dataclass as a dict without the fields left at their defaults (recursively), so a field
    added later with a default that keeps the old behaviour does not change the key of earlier runs."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = non_default(v)
            if v:
                out[f.name] = v
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        if dataclasses.is_dataclass(default) or default is dataclasses.MISSING or v != default:
            out[f.name] = dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
        # tuples of dataclasses (encoder stages, decoders) compare by value above
    return json.loads(json.dumps(out, default=lambda o: dataclasses.asdict(o) if dataclasses.is_dataclass(o) else list(o)))


def cache_path(model_cfg: ModelCfg, train_cfg: TrainCfg, data: str, cache: str | Path | None = None) -> Path:
    """Where the result of these arguments is cached: in ``cache`` (a folder to keep, and commit, the runs of a
    long experiment in), else in ``$HAND_NAS_HOME/proxy_runs``."""
    from hand_nas.paths import home

    # Cache key, machine-independent by construction: JSON of the configs' non-default fields (float repr
    # is exact and portable) and the data folder's path; it never hashes computed floats.
    key = hashlib.sha256(json.dumps([non_default(model_cfg), non_default(train_cfg), str(data)], sort_keys=True)
                         .encode()).hexdigest()[:16]
    folder = Path(cache) if cache else home() / "proxy_runs"
    return folder / f"{model_cfg.name}-{key}.json"


def cached_metrics(model_cfg: ModelCfg, train_cfg: TrainCfg, data: str, cache: str | Path | None = None
                   ) -> dict | None:
    """The cached result of ``proxy_metrics`` for these arguments, or None if it was never run."""
    path = cache_path(model_cfg, train_cfg, data, cache)
    return json.loads(path.read_text()) if path.is_file() else None


def proxy_metrics(model_cfg: ModelCfg, train_cfg: TrainCfg, data: str, mano_dir=None, log=print,
                  progress: bool = True, cache: str | Path | None = None) -> dict:
    """{'mpjpe_mm', 'mpvpe_mm', 'baseline_mpjpe_mm', 'seconds', 'history'} after training ``model_cfg`` under
    ``train_cfg`` (cached in ``cache``, default ``$HAND_NAS_HOME/proxy_runs``); ``history``: [step, held-out
    MPJPE] at every evaluation."""
    from hand_nas.atomic import atomic_file
    from hand_nas.train import train

    cached = cached_metrics(model_cfg, train_cfg, data, cache)
    if cached is not None:
        return cached
    from hand_nas.paths import home

    log(f"training {model_cfg.name}: {train_cfg.steps} steps at {train_cfg.resolution} px on {data}")
    # Snapshots of a run in progress (a killed check resumes mid-run) stay under HAND_NAS_HOME, never beside
    # the cached results, which may be a committed folder.
    partial = home() / "proxy_runs_partial" / cache_path(model_cfg, train_cfg, data, cache).stem
    r = train(model_cfg, train_cfg, data, mano_dir=mano_dir, progress=progress, resume_dir=partial,
              save_every=max(train_cfg.eval_every, train_cfg.steps // 20), log=log)
    out = {"mpjpe_mm": r.metrics.mpjpe_mm, "mpvpe_mm": r.metrics.mpvpe_mm, "seconds": round(r.seconds, 1),
           "baseline_mpjpe_mm": r.baseline.mpjpe_mm if r.baseline else None,
           "history": [[h["step"], h["mpjpe_mm"]] for h in r.history]}
    with atomic_file(cache_path(model_cfg, train_cfg, data, cache), "w") as fh:
        json.dump(out, fh)
    return out
