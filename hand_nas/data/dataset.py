"""One torch Dataset over any hand-nas sample directory (synthetic or InterHand2.6M)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hand_nas.data.samples import open_samples
from hand_nas.data.transforms import (AugmentCfg, GeometricAug, colour_jitter, gaussian_heatmaps, geometric_maps,
                                      sample_geometric, warp)


def split_indices(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) index split of ``n`` samples."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction))) if n > 1 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class TwoHandDataset(torch.utils.data.Dataset):
    """Samples as tensors at a chosen resolution, optionally augmented.

    Each item is a dict (hands left first, camera frame, metres):

    - ``image`` (3, S, S) float in [0, 1]
    - ``mask`` (2, S, S) float, per-hand masks
    - ``verts`` (2, 778, 3), ``joints`` (2, 21, 3)
    - ``joints2d`` (2, 21, 2), ``verts2d`` (2, 778, 2) pixel coordinates at resolution S
    - ``K`` (3, 3), ``valid`` (2,) bool
    - ``heatmaps`` (2, 21, S/4, S/4) Gaussian targets (sigma 2), when ``heatmaps=True``

    Args:
        folder: a sample directory.
        size: output resolution (default: the stored one); any size, e.g. 128 for proxies.
        indices: subset of samples (default all).
        augment: augmentation ranges, or None for none.
        heatmaps: also return heatmap targets.
        seed: base seed of the augmentation (each item draws from (seed, epoch, index)).
    """

    def __init__(self, folder: str | Path, size: int | None = None, indices=None, augment: AugmentCfg | None = None,
                 heatmaps: bool = False, seed: int = 0) -> None:
        self.samples = open_samples(folder)
        self.size = int(size or self.samples.image_size)
        self.indices = np.arange(len(self.samples)) if indices is None else np.asarray(indices)
        self.augment, self.heatmaps, self.seed = augment, heatmaps, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (call once per pass over the data)."""
        self.epoch = epoch

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        i = int(self.indices[item])
        s = self.samples
        image, mask = np.asarray(s["images"][i]), np.asarray(s["masks"][i])
        verts, joints = np.asarray(s["verts"][i], np.float64), np.asarray(s["joints"][i], np.float64)
        K, valid = np.asarray(s["K"][i], np.float64), np.asarray(s["valid"][i])
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.augment else None
        aug = sample_geometric(rng, self.augment) if self.augment else GeometricAug()
        a, m, K = geometric_maps(aug, K, s.image_size, self.size)
        image = warp(image, a, self.size).astype(np.float32) / 255.0
        mask = warp(mask, a, self.size, nearest=True)
        verts, joints = verts @ m.T, joints @ m.T
        if aug.flip:  # a mirrored left hand is a right hand
            verts, joints, valid = verts[::-1], joints[::-1], valid[::-1]
            mask = np.choose(mask, [0, 2, 1]).astype(np.uint8)
        if self.augment:
            image = colour_jitter(image, rng, self.augment)
        out = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)),
            "mask": torch.from_numpy(np.stack([mask == 1, mask == 2]).astype(np.float32)),
            "verts": torch.from_numpy(np.ascontiguousarray(verts, dtype=np.float32)),
            "joints": torch.from_numpy(np.ascontiguousarray(joints, dtype=np.float32)),
            "K": torch.from_numpy(K.astype(np.float32)),
            "valid": torch.from_numpy(np.array(valid, dtype=bool)),
        }
        uvw_j = joints @ K.T
        uvw_v = verts @ K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            j2d = np.nan_to_num(uvw_j[..., :2] / uvw_j[..., 2:3])
            v2d = np.nan_to_num(uvw_v[..., :2] / uvw_v[..., 2:3])
        out["joints2d"] = torch.from_numpy(j2d.astype(np.float32))
        out["verts2d"] = torch.from_numpy(v2d.astype(np.float32))
        if self.heatmaps:
            hm_size = self.size // 4
            hm = gaussian_heatmaps((j2d + 0.5) / 4 - 0.5, hm_size) * valid[:, None, None, None]
            out["heatmaps"] = torch.from_numpy(hm.astype(np.float32))
        return out
