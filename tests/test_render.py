from __future__ import annotations

import numpy as np

from hand_nas.data.render import hand_mask, rasterize

K = np.array([[10.0, 0, 10], [0, 10, 10], [0, 0, 1]])


def test_square_covers_exactly_its_pixels():
    v = np.array([[-0.5, -0.5, 1], [0.5, -0.5, 1], [0.5, 0.5, 1], [-0.5, 0.5, 1]], float)
    fr = rasterize(v, np.array([[0, 1, 2], [0, 2, 3]]), K, (21, 21))
    fm = fr.face_map()
    assert (fm >= 0).sum() == 121  # pixel centres 5..15 in both axes
    assert fm[5:16, 5:16].min() >= 0 and fm[4].max() == -1
    assert np.allclose(fr.bary.sum(1), 1.0)


def test_nearer_triangle_wins():
    far = [[-1, -1, 2], [1, -1, 2], [0, 1, 2]]
    near = [[-1, -1, 1], [1, -1, 1], [0, 1, 1]]
    v = np.array(far + near, float)
    fr = rasterize(v, np.array([[0, 1, 2], [3, 4, 5]]), K, (21, 21))
    fm = fr.face_map()
    assert fm[10, 10] == 1
    v2 = np.array(near + far, float)  # order must not matter
    assert rasterize(v2, np.array([[0, 1, 2], [3, 4, 5]]), K, (21, 21)).face_map()[10, 10] == 0


def test_perspective_correct_barycentrics():
    # A triangle slanted in depth: interpolating 3D positions must land on the viewing ray.
    v = np.array([[-1, -1, 1], [1, -1, 3], [0, 1, 2]], float)
    fr = rasterize(v, np.array([[0, 1, 2]]), K, (21, 21))
    p = fr.bary @ v  # surface points
    uv = p[:, :2] / p[:, 2:] * 10 + 10
    px = np.stack([fr.pixel % 21, fr.pixel // 21], 1)
    assert np.abs(uv - px).max() < 1e-4  # float32 edge coefficients


def test_mask_labels_follow_occlusion():
    tri = np.array([[-1, -1, 0], [1, -1, 0], [0, 1, 0]], float)
    verts = np.stack([tri + [0, 0, 1], tri + [0, 0, 2]])  # left in front
    m = hand_mask(verts, [np.array([[0, 1, 2]])] * 2, K, (21, 21))
    assert m[10, 10] == 1
    m = hand_mask(verts, [np.array([[0, 1, 2]])] * 2, K, (21, 21), valid=[False, True])
    assert m[10, 10] == 2
