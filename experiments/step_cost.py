"""Where a proxy training step's time goes (issue 11): data, forward (image part, pose part), loss, backward.

A proxy's budget is minutes of one core, so what a step costs decides how many steps an architecture gets.
Times one core (torch threads 1) over ``--steps`` training steps of ``--model`` at ``--resolution`` px and
batch ``--batch`` on the synthetic set lwa.yaml trains on (after two warm-up steps), and the learnability
control CNN (``experiments/learnability.py``) under the same conditions for comparison. Milliseconds per step,
medians; the numbers move with whatever else runs on the machine, so run it alone.

Usage:
    OMP_NUM_THREADS=1 python experiments/step_cost.py --resolution 128 [--model lwa_hand] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def _median_ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 1)


def lwa_step_cost(model_name: str, resolution: int, batch: int, steps: int, data: Path) -> dict:
    from hand_nas.data.dataset import TwoHandDataset, split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.hand.hierarchy import load_hierarchy
    from hand_nas.hand.mano import hand_topology
    from hand_nas.losses import LossWeights, two_hand_loss
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model

    tr, _ = split_indices(len(open_samples(data)), 0.1, seed=0)
    ds = TwoHandDataset(data, resolution, tr, None, heatmaps=True, seed=0)
    dl = iter(torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True))
    model = build_model(resolve_model(model_name))
    topo = hand_topology(None)
    faces = torch.as_tensor(topo.faces)
    pool = torch.as_tensor(load_hierarchy(topo.faces).pool_matrix(252))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    t = {"data": [], "forward_image": [], "forward_pose": [], "loss": [], "backward_step": []}
    for k in range(steps + 2):
        t0 = time.perf_counter()
        b = next(dl)
        t1 = time.perf_counter()
        feats = model.image(b["image"])
        t2 = time.perf_counter()
        out = model.pose(feats)
        out.heatmaps, out.masks, out.dense = feats.heatmaps, feats.masks, feats.dense  # as TwoHandNet.forward
        t3 = time.perf_counter()
        loss, _ = two_hand_loss(out, b, faces, pool, LossWeights(), progress=0.5)
        t4 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        opt.step()
        t5 = time.perf_counter()
        if k >= 2:
            for key, v in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                t[key].append(v)
    out = {k: _median_ms(v) for k, v in t.items()}
    out["total"] = round(sum(out.values()), 1)
    return out


def control_step_cost(resolution: int, batch: int, steps: int) -> dict:
    from learnability import cnn

    body, head = cnn()
    opt = torch.optim.Adam(list(body.parameters()) + list(head.parameters()), 1e-3)
    x, y = torch.rand(batch, 3, resolution, resolution), torch.rand(batch, 126)
    ts = []
    for k in range(steps + 2):
        t0 = time.perf_counter()
        loss = (head(body(x).mean((2, 3))) - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k >= 2:
            ts.append(time.perf_counter() - t0)
    return {"total": _median_ms(ts)}


def main() -> None:
    import sys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lwa_hand")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hand_nas.cost.bench import cpu_info
    from hand_nas.data.synthetic import cached_synthetic

    torch.set_num_threads(1)
    data = cached_synthetic(8000)
    res = {"cpu": cpu_info(), "threads": 1, "batch": args.batch, "resolution": args.resolution,
           args.model: lwa_step_cost(args.model, args.resolution, args.batch, args.steps, data),
           "control_cnn": control_step_cost(args.resolution, args.batch, args.steps)}
    print(f"ms per training step, median of {args.steps}, batch {args.batch}, {args.resolution} px, 1 thread, "
          f"{res['cpu']['model']} ({', '.join(res['cpu']['flags'])})")
    for name in (args.model, "control_cnn"):
        print(f"  {name:<12} " + "  ".join(f"{k} {v}" for k, v in res[name].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
