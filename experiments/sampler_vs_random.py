"""TPE / NSGA-II against random search: same space, same trial budget, several seeds.

    python experiments/sampler_vs_random.py [--space search_spaces/tiny.yaml] [--trials 12] [--seeds 0 1 2]

Single-objective spaces compare the best feasible held-out MPJPE (TPE vs random); multi-objective
spaces compare the hypervolume of the feasible (MPJPE, GMACs) front (NSGA-II vs random), with the
reference point (100 mm, budget). Prints one row per seed and the mean.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile

import numpy as np

from hand_nas.config import StudyCfg
from hand_nas.search.pareto import hypervolume
from hand_nas.search.records import best_trained, pareto_front
from hand_nas.search.runner import run_search
from hand_nas.search.space import load_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="search_spaces/tiny.yaml")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="override the proxy's steps (0: the space's)")
    ap.add_argument("--synthetic-n", type=int, default=0, help="override the synthetic set size (0: the space's)")
    args = ap.parse_args()
    space = load_space(args.space)
    if args.steps:
        space = dataclasses.replace(space, proxy=dataclasses.replace(space.proxy, steps=args.steps,
                                                                      eval_every=max(1, args.steps // 2)))
    if args.synthetic_n:
        space = dataclasses.replace(space, synthetic_n=args.synthetic_n)
    smart = "nsga2" if space.multi_objective else "tpe"
    metric = "hypervolume" if space.multi_objective else "best feasible MPJPE (mm)"
    results = {smart: [], "random": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = []
            for sampler in (smart, "random"):
                cfg = StudyCfg(space=args.space, study=f"{sampler}-{seed}", storage=f"sqlite:///{tmp}/s.db",
                               sampler=sampler, pruner="none", trials=args.trials, workers=args.workers,
                               executor="ray", out=f"{tmp}/runs", seed=seed)
                records = run_search(cfg, progress=False, space=space).records
                if space.multi_objective:
                    front = pareto_front(records, space.objectives)
                    ref = (100.0, space.budget_gmacs) + (1e3,) * (len(space.objectives) - 2)
                    value = hypervolume([[r.objective(o) for o in space.objectives] for r in front], ref)
                else:
                    best = best_trained(records)
                    value = best.mpjpe_mm if best else float("nan")
                results[sampler].append(value)
                row.append(value)
            print(f"seed {seed}: {smart} {row[0]:.3f}  random {row[1]:.3f}")
    a, b = np.mean(results[smart]), np.mean(results["random"])
    better = a > b if space.multi_objective else a < b
    print(f"mean {metric}: {smart} {a:.3f}, random {b:.3f} over {len(args.seeds)} seeds x {args.trials} trials "
          f"-> {smart} {'beats' if better else 'does not beat'} random")


if __name__ == "__main__":
    main()
