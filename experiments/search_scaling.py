"""Trials per minute of a search with 1 and with 2 Ray workers on the same space.

    python experiments/search_scaling.py [--space search_spaces/tiny.yaml] [--trials 8] [--steps 40]

Both runs use fresh studies, the random sampler with the same seed (the same configurations in the
same order), no pruning, and a proxy of ``--steps`` steps so trial time dominates Ray's per-task
overhead. Prints trials/minute for each and the ratio, measured two ways: over the whole command
(Ray start-up included) and over the trials themselves (first trial start to last trial end, from
the study's timestamps).
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

from hand_nas.config import StudyCfg
from hand_nas.search.runner import run_search
from hand_nas.search.space import load_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="search_spaces/tiny.yaml")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    space = load_space(args.space)
    space = dataclasses.replace(space, proxy=dataclasses.replace(space.proxy, steps=args.steps,
                                                                  eval_every=args.steps), budget_gmacs=10.0)
    import optuna  # trial start/complete times are optuna's own bookkeeping, not part of a TrialRecord

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rates, spans = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            cfg = StudyCfg(space=args.space, study=f"scaling-w{workers}", storage=f"sqlite:///{tmp}/s.db",
                           sampler="random", pruner="none", trials=args.trials, workers=workers, executor="ray",
                           out=f"{tmp}/runs", seed=0)
            t0 = time.perf_counter()
            summary = run_search(cfg, progress=False, space=space)
            minutes = (time.perf_counter() - t0) / 60
            rates[workers] = summary.ran / minutes
            trials = optuna.load_study(study_name=cfg.study, storage=cfg.storage).trials
            span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
            spans[workers] = len(trials) / (span / 60)
            print(f"workers={workers}: {summary.ran} trials in {minutes * 60:.1f} s -> {rates[workers]:.2f} trials/min "
                  f"(whole command); {spans[workers]:.2f} trials/min over the trials' own span ({span:.1f} s)")
    print(f"speed-up 2 vs 1 worker: {spans[2] / spans[1]:.2f}x over the trials, {rates[2] / rates[1]:.2f}x whole "
          f"command  (proxy {args.steps} steps at {space.proxy.resolution}px, batch {space.proxy.batch}; "
          f"1 CPU and 1 torch thread per trial)")


if __name__ == "__main__":
    main()
