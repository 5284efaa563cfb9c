"""A z-buffered triangle rasterizer in numpy, and hand shading on top of it.

No GPU or OpenGL context exists on the target machines (2-core CPU boxes, CI), and pytorch3d has no
CPU wheel for this torch, so hand-nas rasterizes itself: every triangle's bounding box is expanded
into candidate pixel centres in one vectorised pass, barycentric tests keep the covered ones, and
a per-pixel max of inverse depth resolves occlusion (between the two hands too). Pixel (row i,
column j) has its centre at image coordinates (u=j, v=i), the convention of the projections.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hand_nas.hand.geometry import project, vertex_normals


@dataclass(frozen=True)
class Fragments:
    """The covered pixels of an (H, W) image, one entry per pixel (sparse).

    Attributes:
        size: (H, W).
        pixel: (P,) flat pixel index (row * W + column) of each covered pixel.
        face: (P,) index of the visible face there.
        bary: (P, 3) perspective-correct barycentric weights of that face.
        inv_depth: (P,) 1/z of the visible surface.
    """

    size: tuple[int, int]
    pixel: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    inv_depth: np.ndarray

    def face_map(self) -> np.ndarray:
        """(H, W) int64 visible face per pixel, -1 for background."""
        out = np.full(self.size[0] * self.size[1], -1, dtype=np.int64)
        out[self.pixel] = self.face
        return out.reshape(self.size)


def rasterize(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, size: tuple[int, int],
              near: float = 1e-3) -> Fragments:
    """Rasterize a triangle mesh given in the camera frame.

    Args:
        verts: (V, 3) camera-frame vertices (z forward, metres).
        faces: (F, 3) vertex indices.
        K: (3, 3) intrinsics.
        size: (H, W) of the image.
        near: faces with a vertex closer than this are dropped.

    Returns:
        Fragments for the image.
    """
    h, w = size
    verts = np.asarray(verts, dtype=np.float64)
    uv = project(verts, K)
    tri = uv[faces]  # (F, 3, 2)
    iz = 1.0 / np.maximum(verts[:, 2], near)
    tiz = iz[faces]  # (F, 3)
    in_front = (verts[faces][:, :, 2] > near).all(1)

    x0 = np.clip(np.ceil(tri[:, :, 0].min(1)), 0, w).astype(np.int32)
    x1 = np.clip(np.floor(tri[:, :, 0].max(1)), -1, w - 1).astype(np.int32)
    y0 = np.clip(np.ceil(tri[:, :, 1].min(1)), 0, h).astype(np.int32)
    y1 = np.clip(np.floor(tri[:, :, 1].max(1)), -1, h - 1).astype(np.int32)
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    keep = in_front & (bw > 0) & (bh > 0) & (np.abs(area) > 1e-9)
    fid = np.nonzero(keep)[0]

    zbuf = np.zeros(h * w)
    counts = (bw[fid] * bh[fid]).astype(np.int64)
    if counts.sum() == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Fragments((h, w), empty, empty, np.zeros((0, 3)), np.zeros(0))

    # Barycentrics b1, b2 and inverse depth are affine in the pixel position (px, py) relative to
    # the box corner: precompute their coefficients per face, so each candidate pixel gathers a few
    # numbers instead of the triangle's corners. np.take on contiguous 1-D arrays is several times
    # faster than fancy indexing of 2-D rows for these gathers.
    a, f = area[fid], fid
    ox, oy = x0[f] - tri[f, 0, 0], y0[f] - tri[f, 0, 1]  # box corner relative to vertex 0
    c1x, c1y = e2[f, 1] / a, -e2[f, 0] / a
    c2x, c2y = -e1[f, 1] / a, e1[f, 0] / a
    d1, d2 = tiz[f, 1] - tiz[f, 0], tiz[f, 2] - tiz[f, 0]
    coef = [np.ascontiguousarray(x, dtype=np.float32) for x in
            (c1x, c1y, c1x * ox + c1y * oy, c2x, c2y, c2x * ox + c2y * oy, tiz[f, 0], d1, d2)]

    slot = np.repeat(np.arange(len(fid), dtype=np.int32), counts)
    local = np.arange(counts.sum(), dtype=np.int32) - np.repeat((np.cumsum(counts) - counts).astype(np.int32), counts)
    cw = np.take(bw[fid], slot)
    ly = local // cw
    lx = local - ly * cw
    lxf, lyf = lx.astype(np.float32), ly.astype(np.float32)
    b1 = np.take(coef[0], slot) * lxf + np.take(coef[1], slot) * lyf + np.take(coef[2], slot)
    b2 = np.take(coef[3], slot) * lxf + np.take(coef[4], slot) * lyf + np.take(coef[5], slot)
    eps = -1e-6  # pixel centres exactly on an edge belong to the triangle
    idx = np.flatnonzero((b1 >= eps) & (b2 >= eps) & (b1 + b2 <= 1 - eps))
    slot, b1, b2 = np.take(slot, idx), np.take(b1, idx), np.take(b2, idx)
    cand_iz = (np.take(coef[6], slot) + b1 * np.take(coef[7], slot) + b2 * np.take(coef[8], slot)).astype(np.float64)
    pix = (np.take(y0[fid], slot) + np.take(ly, idx)).astype(np.int64) * w + np.take(x0[fid], slot) + np.take(lx, idx)

    np.maximum.at(zbuf, pix, cand_iz)
    win = np.flatnonzero(cand_iz >= np.take(zbuf, pix))
    # Exact depth ties leave several winners on a pixel: keep one.
    owner = np.empty(h * w, dtype=np.int64)
    owner[np.take(pix, win)] = win
    win = win[np.take(owner, np.take(pix, win)) == win]
    pix, slot, cand_iz = np.take(pix, win), np.take(slot, win), np.take(cand_iz, win)
    b1, b2 = np.take(b1, win), np.take(b2, win)
    face = np.take(fid, slot)
    b = np.stack([1 - b1 - b2, b1, b2], 1).astype(np.float64)
    bz = b * np.take(tiz, face, axis=0)
    return Fragments((h, w), pix, face, bz / bz.sum(1, keepdims=True), cand_iz)


@dataclass(frozen=True)
class Shading:
    """Lighting and material of one rendered image.

    Attributes:
        skin: (2, 3) RGB albedo in [0, 1] per hand (left, right).
        light_dir: (3,) unit direction toward the light, camera frame.
        ambient: ambient term in [0, 1].
        specular: strength of a soft specular highlight.
    """

    skin: np.ndarray
    light_dir: np.ndarray
    ambient: float = 0.35
    specular: float = 0.08


def render_hands(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, size: tuple[int, int],
                 shading: Shading, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Render both hands over a background with Gouraud shading.

    Args:
        verts: (2, 778, 3) camera-frame vertices, left hand first.
        faces: (2, F, 3) faces of each hand.
        K: (3, 3) intrinsics.
        size: (H, W).
        shading: lights and skin colours.
        background: (H, W, 3) uint8 image.

    Returns:
        image (H, W, 3) uint8 and mask (H, W) uint8 with 0 background, 1 left, 2 right.
    """
    n = verts.shape[1]
    all_v = verts.reshape(-1, 3).astype(np.float64)
    all_f = np.concatenate([faces[0], faces[1] + n], 0)
    frags = rasterize(all_v, all_f, K, size)
    normals = np.concatenate([vertex_normals(verts[i].astype(np.float64), faces[i]) for i in range(2)], 0)
    view = -all_v / np.linalg.norm(all_v, axis=1, keepdims=True)
    # Two-sided lighting: the wrist opening shows inner faces.
    ndl = np.abs(normals @ shading.light_dir)
    half = shading.light_dir + view
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = shading.specular * np.abs((normals * half).sum(1)) ** 24
    diffuse = shading.ambient + (1 - shading.ambient) * ndl
    hand_of_vert = np.repeat([0, 1], n)
    colour = diffuse[:, None] * shading.skin[hand_of_vert] + spec[:, None]

    image = background.reshape(-1, 3).copy()
    mask = np.zeros(size[0] * size[1], dtype=np.uint8)
    tri_vid = np.take(all_f, frags.face, axis=0)  # (P, 3)
    shaded = np.einsum("pk,pkc->pc", frags.bary, colour[tri_vid])
    image[frags.pixel] = (np.clip(shaded, 0, 1) * 255 + 0.5).astype(np.uint8)
    mask[frags.pixel] = np.where(frags.face >= len(faces[0]), 2, 1).astype(np.uint8)
    return image.reshape(*size, 3), mask.reshape(size)


def hand_mask(verts: np.ndarray, faces: list[np.ndarray], K: np.ndarray, size: tuple[int, int],
              valid: np.ndarray | None = None) -> np.ndarray:
    """(H, W) uint8 label mask (0 background, 1 left, 2 right) of the hands, with occlusion.

    Args:
        verts: (2, V, 3) camera-frame vertices, left first.
        faces: faces of each hand.
        K: (3, 3) intrinsics.
        size: (H, W).
        valid: (2,) bool, hands to draw (default both).
    """
    valid = np.ones(2, bool) if valid is None else np.asarray(valid, bool)
    parts_v, parts_f, labels, offset = [], [], [], 0
    for h in range(2):
        if valid[h]:
            parts_v.append(verts[h])
            parts_f.append(np.asarray(faces[h]) + offset)
            labels.append(np.full(len(faces[h]), h + 1, np.uint8))
            offset += len(verts[h])
    mask = np.zeros(size[0] * size[1], np.uint8)
    if parts_v:
        frags = rasterize(np.concatenate(parts_v), np.concatenate(parts_f), K, size)
        mask[frags.pixel] = np.concatenate(labels)[frags.face]
    return mask.reshape(size)
