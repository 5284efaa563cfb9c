from __future__ import annotations

import numpy as np
import torch

from hand_nas.data.dataset import TwoHandDataset, split_indices
from hand_nas.data.transforms import AugmentCfg


def _mask_agreement(item) -> list[float]:
    out = []
    size = item["image"].shape[-1]
    for h in range(2):
        if not item["valid"][h]:
            continue
        px = item["verts2d"][h].round().long().clamp(0, size - 1)
        out.append(item["mask"][h][px[:, 1], px[:, 0]].mean().item())
    return out


def test_items_have_documented_shapes(synth_dir):
    ds = TwoHandDataset(synth_dir, size=64, heatmaps=True)
    b = ds[0]
    assert b["image"].shape == (3, 64, 64) and b["mask"].shape == (2, 64, 64)
    assert b["verts"].shape == (2, 778, 3) and b["joints2d"].shape == (2, 21, 2)
    assert b["heatmaps"].shape == (2, 21, 16, 16)
    # heatmap peaks sit on the joints (at 1/4 resolution)
    hm = b["heatmaps"][1, 9]
    peak = divmod(int(hm.argmax()), 16)
    expect = (b["joints2d"][1, 9] + 0.5) / 4 - 0.5
    if 0 <= expect.min() and expect.max() < 16:
        assert abs(peak[0] - expect[1]) <= 1 and abs(peak[1] - expect[0]) <= 1


def test_augmentation_keeps_image_mask_and_3d_consistent(synth_dir):
    plain = TwoHandDataset(synth_dir, size=96)
    aug = TwoHandDataset(synth_dir, size=96, augment=AugmentCfg(), seed=1)
    base = np.mean([max(_mask_agreement(plain[i])) for i in range(8)])
    augm = np.mean([max(_mask_agreement(aug[i])) for i in range(8)])
    assert augm > base - 0.05  # vertices still project onto their own hand's mask


def test_flip_swaps_hands_and_mirrors_3d(synth_dir):
    plain = TwoHandDataset(synth_dir)
    flip = TwoHandDataset(synth_dir, augment=AugmentCfg(rotation_deg=0, scale=(1, 1), colour_gain=0, colour_bias=0,
                                                        flip_prob=1.0))
    a, b = plain[2], flip[2]
    assert torch.allclose(b["verts"][1], a["verts"][0] * torch.tensor([-1.0, 1, 1]))
    assert torch.allclose(b["mask"][1], a["mask"][0].flip(-1))
    assert torch.allclose(b["image"], a["image"].flip(-1), atol=1 / 255)


def test_rotation_about_the_optical_axis_preserves_depth(synth_dir):
    rot = TwoHandDataset(synth_dir, augment=AugmentCfg(rotation_deg=60, scale=(1, 1), colour_gain=0, colour_bias=0,
                                                       flip_prob=0.0), seed=4)
    plain = TwoHandDataset(synth_dir)
    a, b = plain[5], rot[5]
    assert torch.allclose(a["verts"][..., 2], b["verts"][..., 2], atol=1e-6)
    assert torch.allclose(a["verts"].norm(dim=-1), b["verts"].norm(dim=-1), atol=1e-6)


def test_split_is_deterministic_and_disjoint():
    tr, va = split_indices(100, 0.1, seed=0)
    tr2, va2 = split_indices(100, 0.1, seed=0)
    assert np.array_equal(va, va2) and len(va) == 10 and not set(tr) & set(va)
