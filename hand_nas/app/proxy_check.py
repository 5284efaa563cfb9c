"""``hand-nas proxy check``'s runs: train the space's proxy and its long training on spread architectures
(cached, resumable, in worker processes), then the rank and noise figures of ``report.proxy_check``."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from hand_nas.config import ModelCfg, TrainCfg
from hand_nas.proxy_runs import cached_metrics, proxy_metrics
from hand_nas.report.proxy_check import (ProxyCheckCfg, long_training, scoring_rules, short_training, summarize,
                                         warning)
from hand_nas.search.space import SearchSpace


def _train_one(model_cfg: dict, train_cfg: dict, data: str, mano_dir, cache: str | None) -> dict:
    """One cached proxy-check run in a worker process (one torch thread: workers share the cores)."""
    import torch

    torch.set_num_threads(1)
    return proxy_metrics(ModelCfg.from_dict(model_cfg), TrainCfg.from_dict(train_cfg), data, mano_dir,
                         log=lambda *a: None, progress=False, cache=cache)


def run_check(space: SearchSpace, cfg: ProxyCheckCfg, data: str, max_minutes: float | None = None,
              mano_dir=None, progress: bool = True, workers: int = 1, cache: str | Path | None = None) -> dict:
    """Train what is missing (cached runs are free), starting no new run after ``max_minutes``.

    ``workers`` > 1 trains that many runs at once in separate processes (one torch thread each).
    ``cache``: the folder of the per-run results (``hand_nas.proxy_runs.proxy_metrics``'s; default
    ``$HAND_NAS_HOME/proxy_runs``).
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm import tqdm

    from hand_nas.baseline import split_baseline

    archs = space.spread(cfg.n, cfg.sample_seed)
    long = long_training(space.proxy, cfg.factor, space.reference)
    short = short_training(space.proxy, cfg.proxy_set)
    plan = [(i, s, dataclasses.replace(short, seed=s)) for i in range(len(archs)) for s in range(cfg.seeds)]
    plan += [(i, None, long) for i in range(len(archs))]
    rows = [{"label": label, "gmacs": round(g, 4), "proxy_mm": [None] * cfg.seeds, "long_mm": None,
             "proxy_history": [None] * cfg.seeds, "proxy_seconds": [None] * cfg.seeds, "config": c.to_dict()}
            for label, c, g in archs]

    def store(i, seed, m):
        if seed is None:
            rows[i]["long_mm"] = m["mpjpe_mm"]
        else:
            rows[i]["proxy_mm"][seed] = m["mpjpe_mm"]
            rows[i]["proxy_history"][seed] = m.get("history")
            rows[i]["proxy_seconds"][seed] = m.get("seconds")  # wall time of one run as it was trained

    t0, stopped = time.perf_counter(), False
    bar = tqdm(total=len(plan), desc="proxy check", unit="run", disable=not progress)
    todo = []
    for i, seed, train_cfg in plan:
        m = cached_metrics(archs[i][1], train_cfg, data, cache)
        if m is None:
            todo.append((i, seed, train_cfg))
        else:
            store(i, seed, m)
            bar.update(1)
    out_of_time = lambda: max_minutes is not None and (time.perf_counter() - t0) / 60 > max_minutes  # noqa: E731
    if workers <= 1:
        for i, seed, train_cfg in todo:
            if out_of_time():
                stopped = True
                break
            bar.set_postfix(arch=archs[i][0], steps=train_cfg.steps)
            store(i, seed, proxy_metrics(archs[i][1], train_cfg, data, mano_dir, log=lambda *a: None, cache=cache))
            bar.update(1)
    else:
        import multiprocessing

        # the long runs first: they set the wall time, the short ones fill in around them
        todo.sort(key=lambda x: -x[2].steps)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            running, queue = {}, list(todo)
            while queue or running:
                while queue and len(running) < workers and not out_of_time():
                    i, seed, train_cfg = queue.pop(0)
                    fut = pool.submit(_train_one, archs[i][1].to_dict(), train_cfg.to_dict(), data, mano_dir,
                                      str(cache) if cache else None)
                    running[fut] = (i, seed)
                if queue and out_of_time():
                    stopped, queue = True, []
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    i, seed = running.pop(fut)
                    store(i, seed, fut.result())
                    bar.update(1)
    bar.close()
    summary = summarize(rows, cfg.seeds)
    summary["baseline_mpjpe_mm"] = split_baseline(data, space.proxy.val_fraction).mpjpe_mm
    return {"space": space.source, "proxy": short.to_dict(), "long": long.to_dict(), "data": data,
            "proxy_set": dict(cfg.proxy_set), "rules": scoring_rules(rows, cfg.seeds),
            "check": dataclasses.asdict(cfg), "complete": not stopped and summary["complete"] == len(rows),
            "summary": summary, "warning": warning(summary), "architectures": rows,
            "minutes_this_run": round((time.perf_counter() - t0) / 60, 1)}
