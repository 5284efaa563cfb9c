"""The trial function: proxy-train one configuration and return its record (runs in a worker)."""
from __future__ import annotations

import math
import time
import traceback
from pathlib import Path

from hand_nas.config import ModelCfg, TrainCfg


def evaluate_config(cfg_dict: dict, proxy_dict: dict, data_dir: str, checkpoint_dir: str | None = None,
                    reporter=None, measure_latency: bool = False, threads: int = 1, device: str = "auto",
                    precision: str = "fp32") -> dict:
    """Train ``cfg_dict`` under the proxy and return an outcome dict (never raises).

    Args:
        reporter: optional ``fn(step, mpjpe_mm) -> bool``; True stops the run as pruned.
        measure_latency: also time torch eager inference at 256x256 (batch 1, ``threads``).
        device, precision: as ``train``'s (auto: the GPU Ray assigned with --gpus-per-trial, else the CPU).

    Returns:
        {'state': 'complete'|'pruned'|'failed', 'metrics', 'init_metrics', 'steps', 'seconds',
         'checkpoint', 'latency_ms', 'error', 'history', 'node'}
    """
    from hand_nas.threads import torch_threads
    from hand_nas.train import train

    t0 = time.perf_counter()
    cfg = ModelCfg.from_dict(cfg_dict)
    proxy = TrainCfg.from_dict(proxy_dict)
    pruned = {"flag": False}

    def on_eval(step, m):
        if not math.isfinite(m.mpjpe_mm):
            raise FloatingPointError(f"held-out MPJPE is {m.mpjpe_mm} at step {step}")
        if reporter is not None and reporter(step, m.mpjpe_mm):
            pruned["flag"] = True
            return True
        return False

    try:
        with torch_threads(threads):  # restored afterwards: under --local this is the driver's own process
            # auto: the GPU Ray assigned with --gpus-per-trial (CUDA_VISIBLE_DEVICES), else the CPU
            r = train(cfg, proxy, data_dir, checkpoint_dir=checkpoint_dir, on_eval=on_eval, device=device,
                      precision=precision)
        out = {"state": "pruned" if pruned["flag"] else "complete", "metrics": r.metrics.to_dict(),
               "init_metrics": r.init_metrics.to_dict(), "steps": r.steps, "checkpoint": r.checkpoint,
               "history": r.history}
        if measure_latency and not pruned["flag"]:
            from hand_nas.cost.latency import torch_latency_ms
            from hand_nas.models import build_model

            out["latency_ms"] = torch_latency_ms(build_model(cfg), 256, threads, warmup=2, repeats=5)
    except Exception as exc:  # a failing trial is recorded, the search goes on
        out = {"state": "failed", "error": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc(limit=6)}
    out["seconds"] = time.perf_counter() - t0
    out["node"] = node_name()
    return out


def evaluate_trial(cfg_dict: dict, proxy_dict: dict, data: str, checkpoint: str, reporter=None,
                   measure_latency: bool = False, device: str = "auto", precision: str = "fp32") -> dict:
    """``evaluate_config`` for a search trial, given locations under the storage path (worker side).

    ``data`` and ``checkpoint`` are folders every node mounts or pyarrow URIs: a URI's data set is
    downloaded once into this node's cache, and the checkpoint is written locally and uploaded at the end;
    the result's 'checkpoint' is the location as given.
    """
    from hand_nas.search.trial_storage import checkpoint_target, local_data, upload_checkpoint

    folder, uri = checkpoint_target(checkpoint)
    try:
        local = local_data(data)
    except Exception as exc:
        return {"state": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": 0.0, "node": node_name()}
    out = evaluate_config(cfg_dict, proxy_dict, str(local), str(folder), reporter, measure_latency,
                          device=device, precision=precision)
    if uri and out.get("checkpoint"):
        try:
            out["checkpoint"] = upload_checkpoint(folder, uri)
        except Exception as exc:
            out.update(state="failed", checkpoint=None,
                       error=f"checkpoint upload to {uri}: {type(exc).__name__}: {exc}")
    return out


_SUPERNETS: dict = {}  # per worker process: (folder, weights sha256, data, images) -> (supernet, record, scorer)


def evaluate_subnet(cfg_dict: dict, supernet_dir: str, data: str, checkpoint_dir: str | None = None,
                    eval_images: int = 0, threads: int = 1, expect_sha256: str | None = None) -> dict:
    """Score ``cfg_dict`` with weights inherited from a trained supernet (never raises; same outcome dict as
    ``evaluate_config``): extract, recalibrate BatchNorm, held-out metrics; with ``checkpoint_dir`` the extracted
    network is written there as an ordinary checkpoint (a search writes none: the config and the supernet's
    sha256 determine the weights, ``subnet_checkpoint`` writes them when wanted). The supernet and the
    calibration batches are loaded once per worker process; ``expect_sha256``: refuse any other supernet."""
    from hand_nas.threads import torch_threads

    t0 = time.perf_counter()
    try:
        with torch_threads(threads):
            from hand_nas.supernet.manifest import verify_supernet

            sha = verify_supernet(supernet_dir)  # a supernet replaced in place is noticed, not served stale
            if expect_sha256 is not None and sha != expect_sha256:
                raise ValueError(f"{supernet_dir}: weights sha256 {sha} are not the {expect_sha256} the trial was "
                                 "scored with (the supernet changed since)")
            key = (supernet_dir, sha, data, eval_images)
            if key not in _SUPERNETS:
                from hand_nas.supernet.evaluation import SubnetScorer
                from hand_nas.supernet.supernet import load_supernet

                net, record = load_supernet(supernet_dir)
                train_cfg = TrainCfg.from_dict(record["train"])
                scorer = SubnetScorer.on(data, train_cfg, record.get("calib_batches", 8), eval_images or None)
                _SUPERNETS.clear()
                _SUPERNETS[key] = (net, record, scorer)
            net, record, scorer = _SUPERNETS[key]
            cfg = ModelCfg.from_dict(cfg_dict)
            model, metrics, seconds = scorer.score(net, cfg)
            if not math.isfinite(metrics.mpjpe_mm):
                raise FloatingPointError(f"held-out MPJPE is {metrics.mpjpe_mm}")
            about = {"name": "supernet", "supernet": record["folder"], "sha256": record["sha256"],
                     "eval_images": eval_images or None, "calib_batches": len(scorer.calib),
                     "resolution": record["train"]["resolution"]}
            out = {"state": "complete", "metrics": metrics.to_dict(), "steps": 0, "evaluator": about,
                   "history": [{"step": 0, **metrics.to_dict()}]}
            if checkpoint_dir is not None:
                from hand_nas.checkpoint import save_checkpoint

                save_checkpoint(checkpoint_dir, model, cfg, train=record["train"], metrics=metrics.to_dict(),
                                data=str(data), steps=0, evaluator=about)
                out["checkpoint"] = str(checkpoint_dir)
    except Exception as exc:  # a failing trial is recorded, the search goes on
        out = {"state": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
    out["seconds"] = time.perf_counter() - t0
    out["node"] = node_name()
    return out


def subnet_checkpoint(rec, folder: str | Path) -> Path:
    """The extracted network of a supernet-scored trial record, written to ``folder`` as an ordinary checkpoint
    (reused when already there); the supernet must still be the one the trial was scored with."""
    from hand_nas.errors import HandNasError

    folder, ev = Path(folder), rec.evaluator or {}
    if (folder / "config.json").is_file():
        return folder
    out = evaluate_subnet(rec.config, ev["supernet"], rec.data, str(folder), ev.get("eval_images") or 0,
                          expect_sha256=ev.get("sha256"))
    if out["state"] != "complete":
        raise HandNasError(f"trial {rec.number}: its subnet could not be extracted: {out.get('error')}")
    return folder


def node_name() -> str:
    """This host's name, with the Ray node id when running inside a Ray worker."""
    import socket
    import sys

    name = socket.gethostname()
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            name += f"/{ray.get_runtime_context().get_node_id()[:12]}"
    return name
