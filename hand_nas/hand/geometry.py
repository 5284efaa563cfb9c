"""Small geometry helpers shared by the hand model, the renderer and the data readers."""
from __future__ import annotations

import numpy as np


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection (N, 3) camera-frame points -> (N, 2) pixel coordinates."""
    uvw = points @ np.asarray(K, dtype=points.dtype).T
    return uvw[:, :2] / uvw[:, 2:3]


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit vertex normals."""
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    idx = faces.reshape(-1)
    vn = np.stack([np.bincount(idx, np.repeat(fn[:, c], 3), minlength=len(verts)) for c in range(3)], 1)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
