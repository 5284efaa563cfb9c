"""Which proxy makes lwa_hand learn in minutes? Held-out MPJPE of named proxy variants (issue 11).

Each variant is a ``TrainCfg`` (plus the loss terms and model changes it tries) on a synthetic set
of version 3 (``hand_nas.data.synthetic``); every run trains ``lwa_hand`` (or ``--model``) once with
one seed and is stored on its own (``results/proxy_variants/<variant>_<model>_seed<S>.json``), so the
command resumes and runs in chunks. ``--table`` prints every stored run beside its held-out split's
mean-shape baseline (the constant every trained figure must beat), and the seed spread where a
variant has two seeds. MPJPE: held-out, mm, IntagHand protocol; training on one core (torch threads 1).

Usage:
    python experiments/proxy_variants.py --variant noaug128 --seed 0 [--data DIR]
    python experiments/proxy_variants.py --table
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RUNS = ROOT / "results" / "proxy_variants"
# The lwa.yaml proxy before issue 11's changes (128 px, 300 steps, batch 16, lr 2e-3, augmentation on).
BEFORE = dict(resolution=128, steps=300, batch=16, eval_every=60, warmup=20, lr=0.002, augment=True)
# name: (TrainCfg overrides on BEFORE, losses "all" | "3d" | "joints", graph.direct)
VARIANTS = {
    "before": ({}, "all", False),
    "noaug128": ({"augment": False}, "all", False),
    "noaug128_3d": ({"augment": False}, "3d", False),
    "noaug64_1000": ({"augment": False, "resolution": 64, "steps": 1000, "eval_every": 200}, "all", False),
    "noaug64_1000_3d": ({"augment": False, "resolution": 64, "steps": 1000, "eval_every": 200}, "3d", False),
    "direct128": ({"augment": False}, "all", True),
    "direct64": ({"augment": False, "resolution": 64}, "all", True),
    "direct64_600": ({"augment": False, "resolution": 64, "steps": 600, "eval_every": 100}, "all", True),
    "direct128_lr5e-3": ({"augment": False, "lr": 0.005}, "all", True),
    "direct128_3d": ({"augment": False}, "3d", True),
    "direct64_1000_3d": ({"augment": False, "resolution": 64, "steps": 1000, "eval_every": 200}, "3d", True),
    "direct64_1000_joints": ({"augment": False, "resolution": 64, "steps": 1000, "eval_every": 200}, "joints", True),
}


def data_folder(n: int) -> Path:
    """The synthetic set of version 3 with ``n`` samples, 128 px stored, in the hand-nas cache."""
    from hand_nas.data.synthetic import cached_synthetic

    return cached_synthetic(n, size=128)


def run(variant: str, model: str, seed: int, data: Path) -> dict:
    import torch

    from hand_nas.config import TrainCfg
    from hand_nas.losses import LOSS_SETS
    from hand_nas.models.presets import resolve_model
    from hand_nas.train import train

    overrides, losses, direct = VARIANTS[variant]
    cfg = TrainCfg(**{**BEFORE, **overrides, "seed": seed})
    weights = LOSS_SETS["intaghand" if losses == "all" else losses]  # "all": the stored runs' name for IntagHand's
    mc = resolve_model(model)
    if direct:
        mc = dataclasses.replace(mc, graph=dataclasses.replace(mc.graph, direct=True))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    r = train(mc, cfg, data, weights=weights)
    return {"variant": variant, "model": model, "seed": seed, "train": cfg.to_dict(), "losses": losses,
            "graph_direct": direct, "data": str(data), "mpjpe_mm": r.metrics.mpjpe_mm,
            "baseline_mpjpe_mm": r.baseline.mpjpe_mm, "ratio": r.metrics.mpjpe_mm / r.baseline.mpjpe_mm,
            "history": [[h["step"], h["mpjpe_mm"]] for h in r.history], "seconds": round(time.perf_counter() - t0)}


def table() -> None:
    import numpy as np

    rows = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]
    print("held-out MPJPE, mm, IntagHand protocol, beside the split's mean-shape baseline; one core per run")
    print(f"{'variant':<18} {'model':<9} {'px':>4} {'steps':>5} {'aug':>4} {'loss':>4} {'direct':>6} "
          f"{'seeds':>6} {'MPJPE':>14} {'baseline':>8} {'ratio':>6} {'s/run':>6}")
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["variant"], r["model"]), []).append(r)
    for (variant, model), rs in groups.items():
        t = rs[0]["train"]
        vals = [r["mpjpe_mm"] for r in rs]
        spread = f"{np.mean(vals):.2f}" + (f" ({min(vals):.2f}-{max(vals):.2f})" if len(vals) > 1 else "")
        print(f"{variant:<18} {model:<9} {t['resolution']:>4} {t['steps']:>5} {str(t['augment'])[0]:>4} "
              f"{rs[0]['losses']:>4} {str(rs[0]['graph_direct'])[0]:>6} {','.join(str(r['seed']) for r in rs):>6} "
              f"{spread:>14} {rs[0]['baseline_mpjpe_mm']:8.2f} {np.mean(vals) / rs[0]['baseline_mpjpe_mm']:6.3f} "
              f"{np.mean([r['seconds'] for r in rs]):6.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=sorted(VARIANTS))
    ap.add_argument("--model", default="lwa_hand")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=8000, help="synthetic samples (version 3)")
    ap.add_argument("--data", help="a sample folder instead of the cached synthetic set")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    if args.table or not args.variant:
        table()
        return
    out = RUNS / f"{args.variant}_{args.model}_seed{args.seed}.json"
    if out.exists():
        print(f"{out} exists (delete it to rerun)")
        return
    data = Path(args.data) if args.data else data_folder(args.n)
    res = run(args.variant, args.model, args.seed, data)
    RUNS.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(out)
    print(json.dumps({k: res[k] for k in ("variant", "seed", "mpjpe_mm", "baseline_mpjpe_mm", "ratio", "seconds")}))


if __name__ == "__main__":
    main()
