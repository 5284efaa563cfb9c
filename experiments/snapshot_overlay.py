"""What a training run's net believes, step by step: overlays of its snapshots' predictions on held-out images.

A run with ``save_every`` keeps only its newest snapshot (``step_NNNNNNNN/`` under its resume folder), so copy
the ones to compare while it trains; each becomes one row of the montage (the same first ``--images`` images of
the run's held-out split in every row, at the run's resolution, drawn as ``hand-nas predict`` draws them).

Usage:
    python experiments/snapshot_overlay.py SNAP [SNAP ...] --out results/demo_overlay/run_by_step.jpg
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def snapshot_row(snap: Path, images: int, mano_dir=None) -> tuple[int, np.ndarray]:
    """(step, one row of overlays) for a snapshot folder."""
    from PIL import Image

    from hand_nas.data.dataset import split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.data.sheet import draw_overlay
    from hand_nas.hand.mano import HandModel
    from hand_nas.predict import predict_image
    from hand_nas.train import snapshot_model

    model, state = snapshot_model(snap, mano_dir)
    key, train = state["key"], state["key"]["train"]
    s = open_samples(key["data"])
    held_out = split_indices(len(s), train["val_fraction"], seed=0)[1][:images]
    faces, size, tiles = HandModel(mano_dir).faces, train["resolution"], []
    for i in held_out:
        img = np.asarray(Image.fromarray(np.asarray(s.arrays["images"][int(i)])).resize((size, size), Image.BILINEAR))
        pred = predict_image(model, img)
        tiles.append(np.asarray(draw_overlay(img, pred["verts2d"], pred["joints2d"], faces, scale=2,
                                             label=f"step {state['step']}").convert("RGB")))
    return state["step"], np.concatenate(tiles, axis=1)


def main() -> None:
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshots", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--mano", help="MANO folder (default: the procedural hand)")
    args = ap.parse_args()
    from hand_nas.errors import HandNasError

    try:
        rows = sorted((snapshot_row(p, args.images, args.mano) for p in args.snapshots), key=lambda r: r[0])
    except HandNasError as exc:
        raise SystemExit(f"error: {exc}") from None
    montage = Image.fromarray(np.concatenate([r for _, r in rows], axis=0))
    montage = montage.resize((montage.width * 2 // 3, montage.height * 2 // 3))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    montage.save(args.out, quality=80)
    print(f"{args.out}: steps {', '.join(str(s) for s, _ in rows)}")


if __name__ == "__main__":
    main()
