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
from hand_nas.search.records import best_feasible, pareto_front
from hand_nas.search.runner import run_search
from hand_nas.search.space import load_space


def hypervolume(front: list[dict], ref: tuple[float, float]) -> float:
    """2-D hypervolume (both minimised) of rows with mpjpe_mm and gmacs, against ``ref``."""
    pts = sorted((r["mpjpe_mm"], r["gmacs"]) for r in front if r["mpjpe_mm"] < ref[0] and r["gmacs"] < ref[1])
    hv, prev_g = 0.0, ref[1]
    for m, g in pts:  # ascending MPJPE: each point adds the strip below the previous GMACs
        if g < prev_g:
            hv += (ref[0] - m) * (prev_g - g)
            prev_g = g
    return hv


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
                rows = run_search(cfg, progress=False, space=space).rows
                if space.multi_objective:
                    value = hypervolume(pareto_front(rows), (100.0, space.budget_gmacs))
                else:
                    best = best_feasible(rows)
                    value = best["mpjpe_mm"] if best else float("nan")
                results[sampler].append(value)
                row.append(value)
            print(f"seed {seed}: {smart} {row[0]:.3f}  random {row[1]:.3f}")
    a, b = np.mean(results[smart]), np.mean(results["random"])
    better = a > b if space.multi_objective else a < b
    print(f"mean {metric}: {smart} {a:.3f}, random {b:.3f} over {len(args.seeds)} seeds x {args.trials} trials "
          f"-> {smart} {'beats' if better else 'does not beat'} random")


if __name__ == "__main__":
    main()
