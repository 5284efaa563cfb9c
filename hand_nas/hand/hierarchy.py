"""Mesh hierarchy for graph decoders: heavy-edge-matching coarsening of a hand mesh.

As IntagHand builds its graphs (from cnn_graph's Graclus coarsening): the mesh adjacency is
coarsened four times by heavy-edge matching (vertices visited in increasing degree, each matched
to the unmatched neighbour maximising w_ij (1/d_i + 1/d_j)); a binary tree over the levels gives
every vertex a slot such that siblings are contiguous, with fake (padding) slots for singletons,
so the levels have exactly 1008/504/252/126/63 slots and nearest x2 upsampling along the slot axis
is the exact inverse of pairwise pooling. Each level stores its padded adjacency, a real-slot mask,
the normalised Laplacian and its largest eigenvalue. Merges per level are capped on a geometric
schedule so the coarsest level has exactly 63 real nodes (see ``min_clusters``). A 778x252 map initialises the final
252->778 upsampling layer.

The result is deterministic (stable sorts) and stored as an ``.npz`` with a sha256 checksum over
what defines the structure (see ``_checksum``), so the same mesh gives the same checksum on every CPU. The procedural hand's file ships with the package; for another topology (a real MANO
model) ``hand-nas hand build-graph --mano DIR`` builds it once into the hand-nas cache. Loading
never rebuilds silently.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hand_nas.errors import HandNasError
from hand_nas.hand.topology import NUM_VERTS, faces_fingerprint

LEVELS = 5  # 1008, 504, 252, 126, 63 slots
COARSEST = 63
SIZES = tuple(COARSEST * 2 ** (LEVELS - 1 - k) for k in range(LEVELS))  # finest first
VERSION = 2  # 2: machine-independent checksum; version-1 files still load (see load_hierarchy_file)
# Floats enter the checksum rounded to this many decimals: far above the few-ulp differences that BLAS/LAPACK
# kernels (OpenBLAS core type, SIMD dispatch) introduce, far below any value the hierarchy can take.
CHECKSUM_DECIMALS = 6
ASSETS = Path(__file__).parent / "assets"


def mesh_adjacency(faces: np.ndarray, n: int = NUM_VERTS) -> sp.csr_matrix:
    """Symmetric 0/1 vertex adjacency (n, n) of a triangle mesh."""
    f = np.asarray(faces, dtype=np.int64)
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    a = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    a.setdiag(0)
    a.eliminate_zeros()
    return a.tocsr()


def min_clusters(n_vertices: int = NUM_VERTS) -> tuple[int, ...]:
    """Fewest nodes each coarsening level may keep: a geometric schedule ending at 63.

    Heavy-edge matching on MANO's mesh keeps 419/223/122/63 nodes, above this schedule
    (416/222/119/63), so the cap never binds there; a mesh that matches more completely keeps
    enough singletons to end with exactly 63 real nodes instead of padded coarse nodes.
    """
    r = (n_vertices / COARSEST) ** (1 / (LEVELS - 1))
    return tuple(int(np.ceil(COARSEST * r ** (LEVELS - 1 - k) - 1e-9)) for k in range(1, LEVELS))


def match_one_level(w: sp.csr_matrix, min_nodes: int = 0) -> np.ndarray:
    """Heavy-edge matching: cluster id per node (clusters of one or two nodes).

    Args:
        w: (n, n) symmetric weighted adjacency.
        min_nodes: stop matching once only this many clusters would remain.
    """
    n = w.shape[0]
    merges_left = n - min_nodes
    degree = np.asarray(w.sum(0)).ravel()
    weight = np.where(degree > 0, degree, 1.0)
    order = np.argsort(degree, kind="stable")
    marked = np.zeros(n, dtype=bool)
    cluster = np.full(n, -1, dtype=np.int64)
    count = 0
    for v in order:
        if marked[v]:
            continue
        marked[v] = True
        nbrs = w.indices[w.indptr[v]:w.indptr[v + 1]]
        vals = w.data[w.indptr[v]:w.indptr[v + 1]]
        best, best_val = -1, 0.0
        for u, val in zip(nbrs, vals) if merges_left > 0 else ():
            if marked[u]:
                continue
            score = val * (1.0 / weight[v] + 1.0 / weight[u])
            if score > best_val:
                best, best_val = u, score
        cluster[v] = count
        if best >= 0:
            cluster[best] = count
            marked[best] = True
            merges_left -= 1
        count += 1
    return cluster


def _coarsen(w: sp.csr_matrix, cluster: np.ndarray) -> sp.csr_matrix:
    n = int(cluster.max()) + 1
    p = sp.csr_matrix((np.ones(len(cluster)), (cluster, np.arange(len(cluster)))), shape=(n, len(cluster)))
    wc = (p @ w @ p.T).tocsr()
    wc.setdiag(0)
    wc.eliminate_zeros()
    return wc


def normalized_laplacian(adj: np.ndarray) -> np.ndarray:
    """L = I - D^-1/2 A D^-1/2 (isolated padding nodes get L_ii = 1)."""
    d = adj.sum(1)
    d = np.where(d > 0, d, 1.0) ** -0.5
    return np.eye(len(adj)) - d[:, None] * adj * d[None, :]


@dataclass(frozen=True)
class MeshHierarchy:
    """Padded graph levels of a hand mesh, finest first (1008, 504, 252, 126, 63 slots).

    Attributes:
        adjacency: per level, (n, n) float32 padded weighted adjacency in slot order.
        laplacian: per level, (n, n) float32 normalised Laplacian.
        lmax: per level, largest eigenvalue of the Laplacian.
        mask: per level, (n,) bool, True for real (non-padding) slots.
        slot_of_vertex: (778,) level-0 slot of each mesh vertex.
        vertex_of_slot: (1008,) mesh vertex held by each level-0 slot (padding slots hold a real
            sibling's vertex, so gathering with it always yields data).
        upsample: (778, 252) float32 row-stochastic map from level-2 nodes to mesh vertices.
        fingerprint: sha256 of the mesh faces the hierarchy was built from.
        checksum: sha256 over the structure (integer arrays, floats rounded; see ``_checksum``).
    """

    adjacency: tuple[np.ndarray, ...]
    laplacian: tuple[np.ndarray, ...]
    lmax: tuple[float, ...]
    mask: tuple[np.ndarray, ...]
    slot_of_vertex: np.ndarray
    vertex_of_slot: np.ndarray
    upsample: np.ndarray
    fingerprint: str
    checksum: str

    def level_of_size(self, n: int) -> int:
        """Index of the level with ``n`` slots."""
        if n not in SIZES:
            raise ValueError(f"no level with {n} slots; levels have {SIZES}")
        return SIZES.index(n)

    def pool_matrix(self, n: int) -> np.ndarray:
        """(n, 778) float32: average of the mesh vertices under each slot of the n-slot level.

        Mesh vertices go to level-0 slots through ``vertex_of_slot``; each slot of level l averages
        its 2**l level-0 slots, as IntagHand maps ground truth to its coarse levels.
        """
        lvl = self.level_of_size(n)
        group = 2 ** lvl
        m = np.zeros((n, NUM_VERTS), dtype=np.float32)
        for s, v in enumerate(self.vertex_of_slot):
            m[s // group, v] += 1.0 / group
        return m


def build_hierarchy(faces: np.ndarray) -> MeshHierarchy:
    """Coarsen a 778-vertex mesh into the padded five-level hierarchy (deterministic)."""
    w = mesh_adjacency(faces)
    graphs, clusters = [w], []
    for floor in min_clusters(w.shape[0]):
        c = match_one_level(graphs[-1], floor)
        clusters.append(c)
        graphs.append(_coarsen(graphs[-1], c))
    n_coarse = graphs[-1].shape[0]
    if n_coarse > COARSEST:
        raise HandNasError(f"mesh coarsens to {n_coarse} nodes after {LEVELS - 1} levels; at most {COARSEST} fit "
                           f"the 63-node graph decoder")
    # Binary tree from the coarsest level down: each slot holds a node id or -1 (padding).
    slots = [np.concatenate([np.arange(n_coarse), -np.ones(COARSEST - n_coarse, dtype=np.int64)])]
    for lvl in range(LEVELS - 2, -1, -1):
        children: dict[int, list[int]] = {}
        for node, parent in enumerate(clusters[lvl]):
            children.setdefault(int(parent), []).append(node)
        finer = []
        for parent in slots[0]:
            kids = sorted(children.get(int(parent), [])) if parent >= 0 else []
            finer += kids + [-1] * (2 - len(kids))
        slots.insert(0, np.array(finer, dtype=np.int64))
    adjacency, laplacian, lmax, mask = [], [], [], []
    for lvl, s in enumerate(slots):
        g = graphs[lvl].toarray()
        real = s >= 0
        a = np.zeros((len(s), len(s)))
        idx = np.nonzero(real)[0]
        a[np.ix_(idx, idx)] = g[np.ix_(s[idx], s[idx])]
        lap = normalized_laplacian(a)
        adjacency.append(a.astype(np.float32))
        laplacian.append(lap.astype(np.float32))
        lmax.append(float(np.linalg.eigvalsh(lap).max()))
        mask.append(real)
    level0 = slots[0]
    slot_of_vertex = np.zeros(NUM_VERTS, dtype=np.int64)
    slot_of_vertex[level0[level0 >= 0]] = np.nonzero(level0 >= 0)[0]
    # Padding slots borrow a real vertex from their subtree's sibling (IntagHand's cut_perm idea).
    vertex_of_slot = level0.copy()
    for group in (2, 4, 8, 16):
        for s in np.nonzero(vertex_of_slot < 0)[0]:
            start = s // group * group
            block = vertex_of_slot[start:start + group]
            real = block[block >= 0]
            if len(real):
                vertex_of_slot[s] = real[0]
    if (vertex_of_slot < 0).any():
        raise HandNasError("mesh hierarchy: a 16-slot block has no real vertex (padded coarsest node)")
    # 252 -> 778: each vertex averages the level-2 nodes of itself (twice) and its 1-ring.
    parent2 = slot_of_vertex // 4
    up = np.zeros((NUM_VERTS, SIZES[2]), dtype=np.float64)
    np.add.at(up, (np.arange(NUM_VERTS), parent2), 2.0)
    rows, cols = w.nonzero()
    np.add.at(up, (rows, parent2[cols]), 1.0)
    up /= up.sum(1, keepdims=True)
    arrays = dict(adjacency=adjacency, laplacian=laplacian, lmax=lmax, mask=mask,
                  slot_of_vertex=slot_of_vertex, vertex_of_slot=vertex_of_slot, upsample=up.astype(np.float32))
    fp = faces_fingerprint(faces)
    return MeshHierarchy(**{k: tuple(v) if isinstance(v, list) else v for k, v in arrays.items()},
                         fingerprint=fp, checksum=_checksum(arrays, fp))


def _checksum(arrays: dict, fingerprint: str) -> str:
    """sha256 identifying the hierarchy's structure, the same on every CPU.

    Integer and bool arrays enter as they are. Float arrays that the build computes (adjacency edge
    counts, the upsampling map, ``lmax``) enter rounded to ``CHECKSUM_DECIMALS`` decimals as int64:
    ``lmax`` comes from LAPACK's ``eigvalsh``, whose last bits depend on the kernel the CPU selects
    (measured: 2e-16..4e-15 between OpenBLAS core types). The Laplacians are left out: they are a
    function of the adjacency and are recomputed from it on load.
    """
    h = hashlib.sha256(f"v{VERSION}:{fingerprint}".encode())
    for key in sorted(arrays):
        if key == "laplacian":
            continue
        values = arrays[key] if isinstance(arrays[key], (list, tuple)) else [arrays[key]]
        if key == "lmax":
            values = [np.asarray(values, dtype=np.float64)]
        for v in values:
            a = np.asarray(v)
            if a.dtype.kind == "f":
                a = np.rint(a.astype(np.float64) * 10 ** CHECKSUM_DECIMALS).astype(np.int64)
            a = np.ascontiguousarray(a.astype(np.int64) if a.dtype.kind in "biu" else a)
            h.update(key.encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def _checksum_v1(arrays: dict, fingerprint: str) -> str:
    """The version-1 checksum (raw bytes of every array): only reproducible on the CPU that built the file."""
    h = hashlib.sha256(f"v1:{fingerprint}".encode())
    for key in sorted(arrays):
        values = arrays[key] if isinstance(arrays[key], (list, tuple)) else [arrays[key]]
        for v in values:
            a = np.ascontiguousarray(np.asarray(v))
            h.update(key.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def save_hierarchy(h: MeshHierarchy, path: str | Path) -> Path:
    """Write the hierarchy (sparse levels) atomically; returns the path."""
    from hand_nas.atomic import atomic_file

    out = {"version": np.array(VERSION), "fingerprint": np.array(h.fingerprint), "checksum": np.array(h.checksum),
           "slot_of_vertex": h.slot_of_vertex, "vertex_of_slot": h.vertex_of_slot, "upsample": h.upsample,
           "lmax": np.array(h.lmax)}
    for lvl in range(LEVELS):
        a = sp.coo_matrix(h.adjacency[lvl])
        out[f"adj{lvl}_rows"], out[f"adj{lvl}_cols"], out[f"adj{lvl}_vals"] = a.row, a.col, a.data
        out[f"mask{lvl}"] = h.mask[lvl]
    path = Path(path)
    with atomic_file(path) as fh:
        np.savez_compressed(fh, **out)
    return path


def load_hierarchy_file(path: str | Path) -> MeshHierarchy:
    """Read a hierarchy file and verify its checksum."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise HandNasError(f"{path}: unreadable mesh hierarchy ({exc})") from None
    version = int(z["version"])
    if version not in (1, VERSION):
        raise HandNasError(f"{path}: mesh hierarchy version {version}, expected {VERSION}; rebuild it")
    adjacency, laplacian, mask = [], [], []
    for lvl, n in enumerate(SIZES):
        a = np.zeros((n, n), dtype=np.float32)
        a[z[f"adj{lvl}_rows"], z[f"adj{lvl}_cols"]] = z[f"adj{lvl}_vals"]
        adjacency.append(a)
        laplacian.append(normalized_laplacian(a.astype(np.float64)).astype(np.float32))
        mask.append(z[f"mask{lvl}"].astype(bool))
    arrays = dict(adjacency=adjacency, laplacian=laplacian, lmax=[float(x) for x in z["lmax"]], mask=mask,
                  slot_of_vertex=z["slot_of_vertex"], vertex_of_slot=z["vertex_of_slot"], upsample=z["upsample"])
    fp = str(z["fingerprint"])
    checksum = _checksum(arrays, fp)
    # A version-1 file carries the old raw-bytes checksum, which only the CPU that built it reproduces.
    stored, recomputed = str(z["checksum"]), checksum if version == VERSION else _checksum_v1(arrays, fp)
    if recomputed != stored:
        why = ("version-1 checksum, CPU-dependent" if version == 1 else "the file was changed or damaged")
        raise HandNasError(f"{path}: checksum mismatch (file {stored[:12]}, contents {recomputed[:12]}; {why}); "
                           f"rebuild it with 'hand-nas hand build-graph'")
    return MeshHierarchy(**{k: tuple(v) if isinstance(v, list) else v for k, v in arrays.items()},
                         fingerprint=fp, checksum=checksum)


def hierarchy_path(fingerprint: str) -> Path:
    """Where the hierarchy of a topology lives: the package assets, else the hand-nas cache."""
    from hand_nas.paths import home

    name = f"hierarchy_{fingerprint[:16]}.npz"
    asset = ASSETS / name
    return asset if asset.exists() else home() / "hierarchy" / name


def load_hierarchy(faces: np.ndarray) -> MeshHierarchy:
    """The stored hierarchy for a mesh topology; an error (never a silent rebuild) if missing."""
    fp = faces_fingerprint(faces)
    path = hierarchy_path(fp)
    if not path.exists():
        raise HandNasError(f"{path}: no mesh hierarchy for this hand topology (faces sha256 {fp[:12]}); "
                           f"build it once with 'hand-nas hand build-graph --mano DIR'")
    h = load_hierarchy_file(path)
    if h.fingerprint != fp:
        raise HandNasError(f"{path}: built for faces {h.fingerprint[:12]}, not {fp[:12]}; rebuild it")
    return h
