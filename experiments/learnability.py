"""Can *any* network learn root-relative 3D hands from the synthetic set within a proxy's budget? (issue 11)

A control for the learning diagnosis: not lwa_hand but a plain 8-layer CNN (conv-BN-ReLU, strides to
1/32, global average pool, one Linear to 2 x 21 x 3 joints around the training mean), trained by
direct regression at 64 px, batch 16, Adam 1e-3, on images held in memory. If this network cannot
beat the mean-shape constant on held-out images, no architecture searched under the same budget can,
and the proxy's figures rank noise.

Variants: the data set (``default``: the embedded 2000-sample set; ``n20k``: 20,000 samples of the
same generator; ``embedded``: the embedded generator as it is, i.e. the 8,000-sample set lwa.yaml trains on; ``narrow``: 8,000 samples with every hand in the fingers-up prior and rotation noise
0.2 rad instead of 0.45, no fully random hands), the loss (L1 as the training loop's joint term, or
MSE), and the number of training images. Each run is stored on its own
(``results/learnability/<name>.json``); ``--table`` prints them all beside each held-out set's
mean-shape baseline.

Usage:
    OMP_NUM_THREADS=1 python experiments/learnability.py --data default --loss l1 --train 1800
    python experiments/learnability.py --table
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent
RUNS = ROOT / "results" / "learnability"
# name: (samples, orientation prior, backdrop); "v2" = the embedded generator's before SYNTH_VERSION 3.
SETS = {"default": (2000, "v2", "v2"), "n20k": (20000, "v2", "v2"), "narrow": (8000, "narrow", "v2"),
        "studio": (8000, "v2", "studio"), "narrow_studio": (8000, "narrow", "studio"),
        "embedded": (8000, "embedded", "embedded")}  # the embedded generator as it is (lwa.yaml's set)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random (size, size, 3) uint8 background: gradients, blobs, shapes or stripes (version 2's)."""
    from PIL import Image, ImageDraw

    kind = rng.integers(4)
    if kind == 0:
        a, b = rng.uniform(0, 1, (2, 3)).astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        t = np.linspace(-1, 1, size, dtype=np.float32)
        g = (np.cos(ang) * t[None, :] + np.sin(ang) * t[:, None]) * 0.5 + 0.5
        img = a + (b - a) * g[..., None]
    elif kind == 1:
        cells = int(rng.integers(3, 12))
        small = (rng.uniform(0, 1, (cells, cells, 3)) * 255).astype(np.uint8)
        img = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC)) / 255.0
    elif kind == 2:
        im = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(4, 14))):
            x0, y0 = rng.integers(-size // 4, size, 2)
            w, h = rng.integers(size // 10, size // 2, 2)
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape([int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        img = np.asarray(im) / 255.0
    else:
        a, b = rng.uniform(0, 1, (2, 3)).astype(np.float32)
        freq, ang = rng.uniform(4, 30), rng.uniform(0, np.pi)
        t = np.linspace(0, 1, size, dtype=np.float32)
        s = np.sin(2 * np.pi * freq * (np.cos(ang) * t[None, :] + np.sin(ang) * t[:, None])) * 0.5 + 0.5
        img = a + (b - a) * s[..., None]
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def v2_orientation(rng: np.random.Generator, roll: float) -> np.ndarray:
    """Version 2's prior: 15% of hands uniformly random, else fingers up with 0.45 rad of noise."""
    from scipy.spatial.transform import Rotation

    from hand_nas.data import synthetic

    if rng.random() < 0.15:
        return random_rotation(rng)
    base = synthetic.axis_rotation("z", np.pi + roll)
    if rng.random() < 0.5:
        base = base @ synthetic.axis_rotation("y", np.pi)
    return base @ Rotation.from_rotvec(rng.normal(0, 0.45, 3)).as_matrix()


def dataset(kind: str) -> Path:
    """The sample folder of a variant, generated once into the hand-nas cache (128 px stored).

    ``narrow`` and ``studio`` are what SYNTH_VERSION 3 made the embedded generator's own (0.2 rad around
    the fingers-up prior; the dark backdrop); ``v2`` passes version 2's to the generator.
    """
    from hand_nas.data import synthetic
    from hand_nas.paths import home

    n, orientation, backdrop = SETS[kind]
    if kind == "embedded":  # the very set lwa.yaml's proxy trains on
        return synthetic.cached_synthetic(n)
    folder = home() / "learnability" / f"{kind}_n{n}"
    if (folder / "meta.json").exists():
        return folder
    synthetic.synthesize(folder, n, seed=0, size=128, workers=1, overwrite=True,
                         orientation=v2_orientation if orientation == "v2" else None,
                         backdrop=textured_background if backdrop == "v2" else None)
    return folder


def cnn() -> tuple[nn.Module, nn.Module]:
    def cbr(a, b, s):
        return nn.Sequential(nn.Conv2d(a, b, 3, s, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())

    body = nn.Sequential(cbr(3, 32, 2), cbr(32, 32, 1), cbr(32, 64, 2), cbr(64, 64, 1), cbr(64, 128, 2),
                         cbr(128, 128, 1), cbr(128, 256, 2), cbr(256, 256, 2))
    return body, nn.Linear(256, 126)


def run(data_kind: str, loss_kind: str, n_train: int, steps: int, seed: int, res: int = 64, n_val: int = 256) -> dict:
    from hand_nas.baseline import mean_shape, score_constant
    from hand_nas.data.dataset import TwoHandDataset, split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.metrics import mpjpe

    torch.set_num_threads(1)
    folder = dataset(data_kind)
    s = open_samples(folder)
    tr, va = split_indices(len(s), 0.1, seed=0)
    tr, va = tr[:n_train], va[:n_val]
    mean = mean_shape(s["verts"], s["joints"], s["valid"], tr)
    baseline = score_constant(mean, s["verts"], s["joints"], va).mpjpe_mm
    mj = torch.tensor(mean.joints, dtype=torch.float32)

    def load(idx):
        ds = TwoHandDataset(folder, res, idx)
        items = [ds[i] for i in range(len(ds))]
        x = torch.stack([b["image"] for b in items])
        j = torch.stack([b["joints"] for b in items])
        return x, j - j[:, :, 9:10]

    (x, r), (vx, vr) = load(tr), load(va)
    torch.manual_seed(seed)
    body, head = cnn()
    params = list(body.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, 1e-3)
    gen = torch.Generator().manual_seed(seed)

    def predict(images):
        return head(body((images - 0.45) / 0.25).mean((2, 3))).view(-1, 2, 21, 3) * 0.1 + mj

    def held_out() -> float:
        body.eval()
        with torch.no_grad():
            e = float(mpjpe(predict(vx), vr).mean())
        body.train()
        return e

    history, t0 = [], time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(x), (16,), generator=gen)
        d = (predict(x[idx]) - r[idx]) * 10  # decimetres
        loss = d.pow(2).mean() if loss_kind == "mse" else d.abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps:
            history.append({"step": step, "mpjpe_mm": held_out()})
            print(f"{data_kind}/{loss_kind}/n{n_train}/seed{seed} step {step}: {history[-1]['mpjpe_mm']:.2f} mm "
                  f"(baseline {baseline:.2f})", flush=True)
    last = [h["mpjpe_mm"] for h in history[-3:]]
    return {"data": data_kind, "loss": loss_kind, "n_train": len(tr), "n_val": len(va), "steps": steps, "seed": seed,
            "resolution": res, "baseline_mm": baseline, "final_mm": history[-1]["mpjpe_mm"],
            "mean_last3_mm": float(np.mean(last)), "history": history, "seconds": time.perf_counter() - t0}


def table() -> None:
    rows = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]
    print("| data | loss | train images | steps | seed | held-out MPJPE (mean of last 3 evals) | baseline | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['loss']} | {r['n_train']} | {r['steps']} | {r['seed']} | {r['mean_last3_mm']:.2f} "
              f"| {r['baseline_mm']:.2f} | {r['mean_last3_mm'] / r['baseline_mm']:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=sorted(SETS), default="default")
    ap.add_argument("--loss", choices=["l1", "mse"], default="l1")
    ap.add_argument("--train", type=int, default=1800, help="training images (at most the split's)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    if args.table:
        return table()
    name = f"{args.data}_{args.loss}_n{args.train}_{args.steps}_seed{args.seed}"
    out = RUNS / f"{name}.json"
    if out.exists():
        print(f"{out} exists (delete it to rerun)")
        return
    result = run(args.data, args.loss, args.train, args.steps, args.seed)
    RUNS.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
