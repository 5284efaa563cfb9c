"""The mean-shape baseline: the training split's mean root-relative hands, predicted for every image.

A trained figure means something only beside what a constant achieves on the same split: a proxy
that ends above this baseline has learnt nothing about the image. The constant is scored with the
same accumulator and the same root handling as ``hand_nas.train.evaluate_outputs`` (predictions
root-relative per hand at joint 9, the right hand placed by the mean right-minus-left root offset).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hand_nas.hand.topology import ROOT_JOINT
from hand_nas.metrics import MetricAccumulator, Metrics


@dataclass(frozen=True)
class MeanShape:
    """The constant prediction, metres.

    Attributes:
        verts: (2, 778, 3) mean vertices per hand, relative to that hand's joint 9.
        joints: (2, 21, 3) mean joints, relative like ``verts``.
        rel_root: (3,) mean right root minus left root.
    """

    verts: np.ndarray
    joints: np.ndarray
    rel_root: np.ndarray


def mean_shape(verts: np.ndarray, joints: np.ndarray, valid: np.ndarray | None = None, indices=None,
               max_samples: int = 20000, chunk: int = 1024) -> MeanShape:
    """Mean root-relative hands of a split (arrays may be memory-mapped; read in chunks).

    Args:
        verts: (N, 2, 778, 3) camera-frame vertices, metres.
        joints: (N, 2, 21, 3) camera-frame joints, metres.
        valid: (N, 2) annotated hands (default all); each hand is averaged over its valid samples.
        indices: the rows of the split (default all).
        max_samples: larger splits are averaged over this many evenly spaced rows (the mean of an
            InterHand2.6M-sized split does not need every frame read).
    """
    idx = np.arange(len(joints)) if indices is None else np.asarray(indices)
    if len(idx) > max_samples:
        idx = idx[np.linspace(0, len(idx) - 1, max_samples).round().astype(int)]
    sum_v, sum_j = np.zeros((2,) + tuple(verts.shape[2:])), np.zeros((2,) + tuple(joints.shape[2:]))
    hands, sum_rel, pairs = np.zeros(2), np.zeros(3), 0
    for s in range(0, len(idx), chunk):
        rows = idx[s:s + chunk]
        v, j = np.asarray(verts[rows], np.float64), np.asarray(joints[rows], np.float64)
        w = np.ones(j.shape[:2]) if valid is None else np.asarray(valid[rows], np.float64)
        root = j[:, :, ROOT_JOINT:ROOT_JOINT + 1]
        sum_v += np.einsum("nh,nhvc->hvc", w, v - root)
        sum_j += np.einsum("nh,nhjc->hjc", w, j - root)
        hands += w.sum(0)
        both = w.min(1) > 0
        sum_rel += (root[both, 1, 0] - root[both, 0, 0]).sum(0)
        pairs += int(both.sum())
    n = hands.clip(min=1)[:, None, None]
    return MeanShape(sum_v / n, sum_j / n, sum_rel / max(pairs, 1))


def score_constant(shape: MeanShape, verts: np.ndarray, joints: np.ndarray, indices=None, batch: int = 256) -> Metrics:
    """Held-out metrics (mm, all protocols of ``Metrics``) of predicting ``shape`` for every sample.

    Args:
        shape: the constant.
        verts: (N, 2, 778, 3) ground-truth vertices, metres (may be memory-mapped; read in batches).
        joints: (N, 2, 21, 3) ground-truth joints, metres.
        indices: the rows to score (default all).
    """
    idx = np.arange(len(joints)) if indices is None else np.asarray(indices)
    acc = MetricAccumulator()
    pv = torch.as_tensor(shape.verts, dtype=torch.float64).clone()
    pj = torch.as_tensor(shape.joints, dtype=torch.float64).clone()
    rel = torch.as_tensor(shape.rel_root, dtype=torch.float64)
    # As evaluate_outputs: left root at the origin, the right hand moved by the relative root.
    pv[1] += rel
    pj[1] += rel
    for s in range(0, len(idx), batch):
        rows = idx[s:s + batch]
        gj = torch.as_tensor(np.asarray(joints[rows]), dtype=torch.float64)
        gv = torch.as_tensor(np.asarray(verts[rows]), dtype=torch.float64)
        left_root = gj[:, :1, ROOT_JOINT:ROOT_JOINT + 1]
        n = len(gj)
        acc.update(pv.expand(n, -1, -1, -1), pj.expand(n, -1, -1, -1), gv - left_root, gj - left_root)
    return acc.result()


def split_baseline(data: str | Path, val_fraction: float = 0.1) -> Metrics:
    """The mean-shape baseline of a sample directory under ``train``'s deterministic split.

    The mean comes from the training split (without augmentation), the score from the held-out
    split, exactly the samples ``hand_nas.train.train`` evaluates on.
    """
    from hand_nas.data.dataset import split_indices
    from hand_nas.data.samples import open_samples

    s = open_samples(data)
    tr, va = split_indices(len(s), val_fraction, seed=0)
    return score_constant(mean_shape(s["verts"], s["joints"], s["valid"], tr), s["verts"], s["joints"], va)
