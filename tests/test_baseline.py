from __future__ import annotations

import numpy as np
import pytest

from hand_nas.baseline import mean_shape, score_constant, split_baseline
from hand_nas.data.dataset import split_indices
from hand_nas.data.samples import open_samples


def _hands(rng, n):
    joints = rng.normal(0, 0.05, (n, 2, 21, 3))
    verts = rng.normal(0, 0.05, (n, 2, 778, 3))
    return verts, joints


def test_mean_shape_is_root_relative_and_honours_valid():
    rng = np.random.default_rng(0)
    verts, joints = _hands(rng, 6)
    valid = np.ones((6, 2), bool)
    valid[0, 1] = False
    m = mean_shape(verts, joints, valid)
    rel = joints - joints[:, :, 9:10]
    assert np.allclose(m.joints[0], rel[:, 0].mean(0)) and np.allclose(m.joints[1], rel[1:, 1].mean(0))
    assert np.allclose(m.rel_root, (joints[1:, 1, 9] - joints[1:, 0, 9]).mean(0))
    # chunked reading and the row cap give the same mean as one pass over the chosen rows
    assert np.allclose(mean_shape(verts, joints, valid, chunk=4).verts, m.verts)
    sub = mean_shape(verts, joints, valid, indices=[1, 2, 3], max_samples=2)
    assert np.allclose(sub.joints, mean_shape(verts[[1, 3]], joints[[1, 3]]).joints)


def test_the_constant_scores_zero_on_itself_and_more_elsewhere():
    rng = np.random.default_rng(1)
    verts, joints = _hands(rng, 1)
    verts, joints = np.repeat(verts, 3, 0), np.repeat(joints, 3, 0)
    m = mean_shape(verts, joints)
    assert score_constant(m, verts, joints).mpjpe_mm == pytest.approx(0, abs=1e-6)
    other_v, other_j = _hands(rng, 3)
    assert score_constant(m, other_v, other_j).mpjpe_mm > 10


def test_split_baseline_uses_the_training_split(synth_dir):
    s = open_samples(synth_dir)
    tr, va = split_indices(len(s), 0.1, seed=0)
    ref = score_constant(mean_shape(np.asarray(s["verts"])[tr], np.asarray(s["joints"])[tr]),
                         np.asarray(s["verts"])[va], np.asarray(s["joints"])[va])
    got = split_baseline(synth_dir)
    assert got.count == len(va) and got.mpjpe_mm == pytest.approx(ref.mpjpe_mm) and got.mpjpe_mm > 0
