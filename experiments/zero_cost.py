"""Do untrained scores rank lwa.yaml's architectures like the 10x training? (issue 11, item 3)

Reads the architectures and their 3000-step held-out MPJPE from a proxy check's JSON
(``results/proxy_check_lwa.json``) and scores each one without training it:

- ``gmacs``, ``params``: the closed-form cost (GMACs fvcore convention, batch 1, 3x256x256);
- ``grad_norm``: the norm of the loss gradient at initialisation, mean over ``--batches`` fixed batches;
- ``snip``: sum over weights of |w * dL/dw| at initialisation (connection sensitivity), same batches.

Every score is read "larger is better" (the zero-cost literature's convention) and correlated with the
long runs (Kendall tau; positive = ranks like the long training). The initialisation-dependent scores
are computed for ``--seeds`` initialisation seeds: the seed-vs-seed tau is their noise. The proxy
check's own trained scores are printed beside them for comparison. Batches: the training split of the
check's data set at the proxy's resolution, no augmentation, the same batches for every architecture.
Minutes on one core; the result is written to ``--out``.

Usage:
    python experiments/zero_cost.py [--check results/proxy_check_lwa.json] [--seeds 2] [--batches 2]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hand_nas.stats import kendall_tau

ROOT = Path(__file__).resolve().parent


def scores(model_cfg, batches, faces, pool252, weights, mean, seed: int) -> dict:
    import torch

    from hand_nas.losses import two_hand_loss
    from hand_nas.models import build_model

    torch.manual_seed(seed)
    model = build_model(model_cfg)
    if hasattr(model.pose, "set_mean_shape"):
        model.pose.set_mean_shape(torch.as_tensor(mean.verts), torch.as_tensor(mean.rel_root))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for p in params]
    for batch in batches:
        model.zero_grad(set_to_none=True)
        loss, _ = two_hand_loss(model(batch["image"]), batch, faces, pool252, weights, progress=0.0)
        loss.backward()
        for g, p in zip(grads, params):
            if p.grad is not None:
                g += p.grad / len(batches)
    grad_norm = float(torch.sqrt(sum((g * g).sum() for g in grads)))
    snip = float(sum((g * p.detach()).abs().sum() for g, p in zip(grads, params)))
    return {"grad_norm": grad_norm, "snip": snip, "params": sum(p.numel() for p in params)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", default=str(ROOT / "results" / "proxy_check_lwa.json"))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "results" / "zero_cost_lwa.json"))
    args = ap.parse_args()

    import torch
    from torch.utils.data import DataLoader

    from hand_nas.baseline import mean_shape
    from hand_nas.config import ModelCfg, TrainCfg
    from hand_nas.data.dataset import TwoHandDataset, split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.hand.hierarchy import load_hierarchy
    from hand_nas.hand.mano import hand_topology
    from hand_nas.losses import LOSS_SETS

    torch.set_num_threads(1)
    check = json.loads(Path(args.check).read_text())
    proxy = TrainCfg.from_dict(check["proxy"])
    data = check["data"]
    samples = open_samples(data)
    tr_idx, _ = split_indices(len(samples), proxy.val_fraction, seed=0)
    mean = mean_shape(samples["verts"], samples["joints"], samples["valid"], tr_idx)
    ds = TwoHandDataset(data, proxy.resolution, tr_idx[: args.batch * args.batches], None, heatmaps=True, seed=0)
    batches = list(DataLoader(ds, batch_size=args.batch, shuffle=False))
    topo = hand_topology(None)
    faces = torch.as_tensor(topo.faces)
    pool252 = torch.as_tensor(load_hierarchy(topo.faces).pool_matrix(252))
    weights = LOSS_SETS[proxy.losses]

    rows = []
    t0 = time.perf_counter()
    for a in check["architectures"]:
        cfg = ModelCfg.from_dict(a["config"])
        per_seed = [scores(cfg, batches, faces, pool252, weights, mean, s) for s in range(args.seeds)]
        rows.append({"label": a["label"], "gmacs": a["gmacs"], "long_mm": a["long_mm"], "proxy_mm": a["proxy_mm"],
                     "params": per_seed[0]["params"], "grad_norm": [s["grad_norm"] for s in per_seed],
                     "snip": [s["snip"] for s in per_seed]})
        print(f"{a['label']:<10} {a['gmacs']:.4f} GMACs  {per_seed[0]['params'] / 1e6:.2f} M params  grad_norm "
              + " ".join(f"{s['grad_norm']:.3g}" for s in per_seed) + "  snip "
              + " ".join(f"{s['snip']:.3g}" for s in per_seed), flush=True)
    done = [r for r in rows if r["long_mm"] is not None]
    long = [r["long_mm"] for r in done]
    # Larger is better for every untrained score; a lower MPJPE is better: tau(-score, long) > 0 ranks right.
    table = {"gmacs": kendall_tau([-r["gmacs"] for r in done], long),
             "params": kendall_tau([-r["params"] for r in done], long)}
    for name in ("grad_norm", "snip"):
        mean_score = [sum(r[name]) / len(r[name]) for r in done]
        entry = {"kendall_tau": kendall_tau([-m for m in mean_score], long),
                 "kendall_tau_one_seed": kendall_tau([-r[name][0] for r in done], long)}
        if args.seeds >= 2:
            entry["seed_tau"] = kendall_tau([r[name][0] for r in rows], [r[name][1] for r in rows])
        table[name] = entry
    table["trained_proxy"] = kendall_tau([sum(r["proxy_mm"]) / len(r["proxy_mm"]) for r in done], long)
    n = len(done)
    # Kendall tau's standard error under no correlation: what a difference between two rules must exceed.
    se = (2 * (2 * n + 5) / (9 * n * (n - 1))) ** 0.5
    out = {"check": str(args.check), "data": data, "resolution": proxy.resolution, "batches": args.batches,
           "batch": args.batch, "seeds": args.seeds, "architectures": rows, "kendall_tau": table,
           "tau_standard_error_at_zero": se, "seconds": round(time.perf_counter() - t0, 1)}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"Kendall tau vs the {n} long runs (positive: ranks like the long training; standard error at zero {se:.2f}):")
    for k, v in table.items():
        print(f"  {k:<14} {json.dumps(v)}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
