from __future__ import annotations

import numpy as np
import pytest

from hand_nas.errors import HandNasError
from hand_nas.hand import hierarchy, procedural


@pytest.fixture(scope="module")
def faces():
    return procedural.build_pair()["right"]["f"]


@pytest.fixture(scope="module")
def built(faces):
    return hierarchy.build_hierarchy(faces)


def test_levels_have_exact_padded_sizes(built):
    assert [a.shape[0] for a in built.adjacency] == [1008, 504, 252, 126, 63]
    assert [m.shape[0] for m in built.mask] == [1008, 504, 252, 126, 63]
    assert int(built.mask[0].sum()) == 778 and int(built.mask[-1].sum()) == 63


def test_every_vertex_covered_once_and_siblings_contiguous(built):
    assert sorted(built.slot_of_vertex.tolist()) == sorted(set(built.slot_of_vertex.tolist()))
    assert set(built.vertex_of_slot.tolist()) == set(range(778))
    # a real node at level l has at least one real child among slots 2i, 2i+1 of level l-1
    for lvl in range(1, 5):
        child_real = built.mask[lvl - 1].reshape(-1, 2).any(1)
        assert np.array_equal(child_real, built.mask[lvl])
    # padding slots have no edges; Laplacians are symmetric with eigenvalues in [0, 2]
    for lvl in range(5):
        a = built.adjacency[lvl]
        assert np.all(a[~built.mask[lvl]] == 0)
        assert np.allclose(built.laplacian[lvl], built.laplacian[lvl].T, atol=1e-6)
        assert 0 < built.lmax[lvl] <= 2 + 1e-6
    assert np.allclose(built.upsample.sum(1), 1.0)
    for n in (252, 126, 63):
        assert np.allclose(built.pool_matrix(n).sum(1), 1.0)


def test_deterministic_and_shipped_file_matches(faces, built):
    again = hierarchy.build_hierarchy(faces)
    assert again.checksum == built.checksum
    shipped = hierarchy.load_hierarchy(faces)  # the package asset; a stale one would differ
    assert shipped.checksum == built.checksum


def test_file_round_trip_and_corruption(tmp_path, built):
    path = hierarchy.save_hierarchy(built, tmp_path / "h.npz")
    assert hierarchy.load_hierarchy_file(path).checksum == built.checksum
    z = dict(np.load(path))
    z["adj2_vals"] = z["adj2_vals"] * 2
    np.savez(tmp_path / "bad.npz", **z)
    with pytest.raises(HandNasError, match="checksum mismatch"):
        hierarchy.load_hierarchy_file(tmp_path / "bad.npz")


def test_unknown_topology_asks_for_a_build(faces):
    other = faces[:, [0, 2, 1]]
    with pytest.raises(HandNasError, match="build-graph"):
        hierarchy.load_hierarchy(other)


def _other_kernel() -> str:
    """An OpenBLAS core type other than the one this process runs (older than any current x86-64)."""
    import os

    return "Sandybridge" if os.environ.get("OPENBLAS_CORETYPE", "").lower() == "prescott" else "Prescott"


def test_checksum_is_the_same_under_another_blas_kernel(built):
    """Rebuild in a subprocess with another OpenBLAS kernel: LAPACK rounds lmax differently there
    (a few ulp, measured), and the checksum must not see it (issue: shipped file vs a user's CPU)."""
    import os
    import subprocess
    import sys

    code = ("from hand_nas.hand import hierarchy, procedural;"
            "print(hierarchy.build_hierarchy(procedural.build_pair()['right']['f']).checksum)")
    env = dict(os.environ, OPENBLAS_CORETYPE=_other_kernel())
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == built.checksum


def test_checksum_ignores_last_bits_but_not_structure(built):
    arrays = dict(adjacency=list(built.adjacency), laplacian=list(built.laplacian), lmax=list(built.lmax),
                  mask=list(built.mask), slot_of_vertex=built.slot_of_vertex, vertex_of_slot=built.vertex_of_slot,
                  upsample=built.upsample)
    nudged = dict(arrays, lmax=[x + 4e-15 for x in built.lmax])
    assert hierarchy._checksum(nudged, built.fingerprint) == built.checksum
    swapped = dict(arrays, slot_of_vertex=built.slot_of_vertex[::-1].copy())
    assert hierarchy._checksum(swapped, built.fingerprint) != built.checksum
