"""Augmentations as exact camera operations, so images and 3D labels stay consistent.

Every geometric augmentation is a 3x3 pixel map A (crop -> new crop) together with what it does to
the camera-frame points:

* rotation by theta about the optical axis: points X -> Rz X, pixels A = K Rz K^-1;
* zoom by s about the principal point: points unchanged, A scales about (cx, cy);
* horizontal flip: points x -> -x, A = u -> W - 1 - u, and the hands swap (a mirrored left hand is
  a right hand);
* resizing to the training resolution.

Then K' = A K (with the mirror folded in for flips), and the image is warped once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentCfg:
    """IntagHand's training augmentation ranges.

    Attributes:
        rotation_deg: uniform in-plane rotation range (+/-).
        scale: (lo, hi) zoom about the principal point.
        colour_gain: per-channel gain range (+/- fraction).
        colour_bias: per-channel bias range (+/- fraction of full scale).
        flip_prob: probability of a horizontal flip (swaps left and right).
    """

    rotation_deg: float = 90.0
    scale: tuple[float, float] = (0.9, 1.1)
    colour_gain: float = 0.3
    colour_bias: float = 0.05
    flip_prob: float = 0.5


@dataclass(frozen=True)
class GeometricAug:
    """One sampled geometric augmentation."""

    theta: float = 0.0
    scale: float = 1.0
    flip: bool = False


def sample_geometric(rng: np.random.Generator, cfg: AugmentCfg) -> GeometricAug:
    return GeometricAug(theta=float(np.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))),
                        scale=float(rng.uniform(*cfg.scale)), flip=bool(rng.random() < cfg.flip_prob))


def resize_map(size_in: int, size_out: int) -> np.ndarray:
    """Pixel map of a resize with pixel centres at integer coordinates."""
    r = size_out / size_in
    return np.array([[r, 0, 0.5 * r - 0.5], [0, r, 0.5 * r - 0.5], [0, 0, 1.0]])


def geometric_maps(aug: GeometricAug, K: np.ndarray, size_in: int, size_out: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixel map A (input crop -> output crop), the 3D map M (points) and the new K.

    Returns:
        A (3, 3), M (3, 3) applied as X' = M X to camera-frame points, K' (3, 3) with
        K' M X ~ A K X for every point.
    """
    c, s = np.cos(aug.theta), np.sin(aug.theta)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    a = K @ rz @ np.linalg.inv(K)
    cx, cy = K[0, 2], K[1, 2]
    zoom = np.array([[aug.scale, 0, (1 - aug.scale) * cx], [0, aug.scale, (1 - aug.scale) * cy], [0, 0, 1.0]])
    a = zoom @ a
    m = rz
    if aug.flip:
        flip = np.array([[-1, 0, size_in - 1], [0, 1, 0], [0, 0, 1.0]])
        a = flip @ a
        m = np.diag([-1.0, 1, 1]) @ m
    a = resize_map(size_in, size_out) @ a
    # A K X = K' M X for all X: K' = A K M^-1 (M is orthogonal).
    k_new = a @ K @ m.T
    return a, m, k_new


def warp(image: np.ndarray, a: np.ndarray, size_out: int, nearest: bool = False) -> np.ndarray:
    """Warp an (H, W[, C]) uint8 array through pixel map ``a`` into (size_out, size_out[, C])."""
    from PIL import Image

    if np.allclose(a, np.eye(3)) and image.shape[0] == size_out:
        return image
    inv = np.linalg.inv(a)
    # PIL samples at pixel-edge coordinates (pixel i spans [i, i+1)); ours put centres at i.
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
    m = shift @ inv @ np.linalg.inv(shift)
    im = Image.fromarray(image)
    out = im.transform((size_out, size_out), Image.AFFINE, data=tuple(m[:2].ravel()),
                       resample=Image.NEAREST if nearest else Image.BILINEAR)
    return np.asarray(out)


def colour_jitter(image: np.ndarray, rng: np.random.Generator, cfg: AugmentCfg) -> np.ndarray:
    """Per-channel gain and bias on a float image in [0, 1]."""
    gain = rng.uniform(1 - cfg.colour_gain, 1 + cfg.colour_gain, 3)
    bias = rng.uniform(-cfg.colour_bias, cfg.colour_bias, 3)
    return np.clip(image * gain + bias, 0.0, 1.0)


def gaussian_heatmaps(points: np.ndarray, size: int, sigma: float = 2.0) -> np.ndarray:
    """(..., J, 2) pixel positions at heatmap resolution -> (..., J, size, size) Gaussians, peak 1."""
    g = np.arange(size, dtype=np.float32)
    dx = (g[None, :] - points[..., 0:1]) ** 2  # (..., J, size)
    dy = (g[None, :] - points[..., 1:2]) ** 2
    return np.exp(-(dy[..., :, None] + dx[..., None, :]) / (2 * sigma * sigma)).astype(np.float32)
