"""Where a trained net's error sits: per joint level (wrist, MCP, PIP, DIP, tip), with and without its global
rotation, beside the mean-shape baseline's on the same held-out images.

MPJPE under the IntagHand protocol (root J9, bone-length scale) mixes two things: where the hand points
(global rotation) and how its fingers bend (articulation). PA-MPJPE (each hand also rotated onto the ground
truth, orthogonal Procrustes) keeps only the articulation. A net whose PA-MPJPE is the constant's has learned
to place and orient the hands but not to bend their fingers.

Usage (a snapshot folder of a run with ``save_every``; copy it while the run trains):
    python experiments/where_error_sits.py SNAP [--images 400]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

LEVELS = {"wrist": [0], "MCP": [1, 5, 9, 13, 17], "PIP": [2, 6, 10, 14, 18], "DIP": [3, 7, 11, 15, 19],
          "tip": [4, 8, 12, 16, 20]}


def per_joint_errors(pred_j: torch.Tensor, gt_j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(aligned, rotated) per-joint errors in mm, (B, 2, 21) each, IntagHand alignment first."""
    from hand_nas.metrics import align, rotate_onto

    a, b, _, _ = align(pred_j, gt_j)
    return (a - b).norm(dim=-1) * 1000.0, (rotate_onto(a, b) - b).norm(dim=-1) * 1000.0


def main() -> None:
    from hand_nas.baseline import mean_shape
    from hand_nas.config import TrainCfg
    from hand_nas.data.dataset import split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.errors import HandNasError
    from hand_nas.train import held_out_loader, snapshot_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshot", type=Path)
    ap.add_argument("--images", type=int, default=400, help="the first N held-out images")
    ap.add_argument("--mano", help="the MANO folder the run trained with (default: the procedural hand)")
    args = ap.parse_args()
    try:
        model, state = snapshot_model(args.snapshot, args.mano)
    except HandNasError as exc:
        raise SystemExit(f"error: {exc}") from None
    cfg = TrainCfg.from_dict(state["key"]["train"])
    data = state["key"]["data"]
    s = open_samples(data)
    tr, _ = split_indices(len(s), cfg.val_fraction, seed=0)
    const = torch.as_tensor(mean_shape(s["verts"], s["joints"], s["valid"], tr).joints, dtype=torch.float32)
    got = {"net": ([], []), "mean shape": ([], [])}
    seen = 0
    with torch.no_grad():
        for batch in held_out_loader(data, cfg):
            gt = batch["joints"].float()
            for name, pred in (("net", model(batch["image"]).joints), ("mean shape", const.expand_as(gt))):
                for acc, e in zip(got[name], per_joint_errors(pred, gt)):
                    acc.append(e)
            seen += len(gt)
            if seen >= args.images:
                break
    print(f"{args.snapshot}: step {state['step']}, {seen} held-out images of {data} at {cfg.resolution} px; mm, "
          "mean of both hands; IntagHand alignment (J9 root, bone scale), PA = also rotated (Procrustes)")
    print(f"{'joints':<8} {'net':>7} {'mean':>7} {'net PA':>7} {'mean PA':>8}")
    cat = {k: [torch.cat(v)[:args.images] for v in vs] for k, vs in got.items()}
    for level, idx in [*LEVELS.items(), ("all 21", list(range(21)))]:
        row = [cat[k][p][..., idx].mean().item() for p in (0, 1) for k in ("net", "mean shape")]
        print(f"{level:<8} {row[0]:7.2f} {row[1]:7.2f} {row[2]:7.2f} {row[3]:8.2f}")
    ratio = np.array([cat["net"][p].mean().item() / cat["mean shape"][p].mean().item() for p in (0, 1)])
    print(f"net / mean shape: MPJPE {ratio[0]:.3f}x, PA-MPJPE {ratio[1]:.3f}x")


if __name__ == "__main__":
    main()
