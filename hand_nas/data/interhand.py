"""InterHand2.6M reader: the official release layout -> a hand-nas sample directory.

Layout (v1.0; v0.0's ``annotations/{all,human_annot,machine_annot}/`` is read for H / M subsets)::

    ROOT/images/<split>/Capture<N>/<seq>/cam<id>/image<frame>.jpg
    ROOT/annotations/<split>/InterHand2.6M_<split>_{data,camera,joint_3d,MANO_NeuralAnnot}.json

Selection follows IntagHand's preprocessing: annotations with ``hand_type == 'interacting'``,
``hand_type_valid`` and NeuralAnnot MANO parameters for both hands (``hands='single'`` keeps
single-hand images instead; ``'all'`` keeps both kinds); images whose mean over all pixels and
channels is below 10 are dropped (``is_dark``).
Meshes come from the hand model (MANO, metres, world frame), move to the camera with
X_cam = R (X - campos / 1000) and project with the focal length and principal point. The crop is
IntagHand's: a square around the projected vertices of the annotated hands, side = extent / 0.8,
resampled to ``size`` x ``size``; the crop's intrinsics are stored with it, and masks are
rendered from the meshes. ``prepare`` runs in bounded memory, in worker processes, and resumes
after a kill. The selection itself (streamed annotation files -> an on-disk index read by row)
is ``hand_nas.data.interhand_select``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hand_nas.atomic import scratch_dir
from hand_nas.data.interhand_select import (  # noqa: F401 (re-exported: the reader's public API)
    KINDS, SPLITS, SUBSET_DIRS, IndexFiles, Record, Selection, annotation_paths, select_records)
from hand_nas.errors import HandNasError
from hand_nas.hand.topology import HANDS


def crop_transform(points2d: np.ndarray, size: int) -> tuple[np.ndarray, float, np.ndarray]:
    """IntagHand's square crop around 2D points: (3x3 pixel map full -> crop, side, centre)."""
    lo, hi = points2d.min(0), points2d.max(0)
    side = float((hi - lo).max() / 0.8)
    centre = (lo + hi) / 2
    s = size / side
    # Pixel centres sit at integer coordinates: the crop's [-0.5, size - 0.5] spans the square.
    a = np.array([[s, 0, (side / 2 - centre[0]) * s - 0.5], [0, s, (side / 2 - centre[1]) * s - 0.5], [0, 0, 1.0]])
    return a, side, centre


DARK_MEAN = 10.0  # IntagHand drops an image whose mean over all pixels and channels is below this


def is_dark(rgb: np.ndarray) -> bool:
    """IntagHand's dark-image rule on a full (H, W, 3) uint8 image.

    IntagHand's dataset/interhand.py (``cut_inter_img``) reads the full frame with ``cv.imread``
    (3 channels, BGR) and skips it when ``img.mean() < 10``: the mean over every pixel of every
    channel, not a grey-level mean (reference/intaghand_and_interhand26m.md, section 3,
    "Preprocessing"). The channel order does not change that mean.
    """
    return float(rgb.mean()) < DARK_MEAN


def _load_rgb(path: Path, ann_id: int) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise HandNasError(f"{path}: image missing (annotation {ann_id})")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as exc:
        raise HandNasError(f"{path}: unreadable image ({exc})") from None


# Set once per worker process (or once in the calling process with one worker) by _init_worker.
_WORKER: dict = {}


def _init_worker(mano_dir: str | None, size: int, parent_pid: int | None) -> None:
    import torch

    from hand_nas.hand.mano import HandModel

    # One thread everywhere: the bytes written must not depend on how many workers share the cores.
    torch.set_num_threads(1)
    model = HandModel(mano_dir).eval()
    _WORKER.update(model=model, size=size, parent_pid=parent_pid)


def _scan_chunk(index: IndexFiles, rows: np.ndarray) -> list[int]:
    """Positions (within the chunk) of the dark images among the index rows ``rows``."""
    return [j for j, rec in enumerate(index.read(rows)) if is_dark(_load_rgb(rec.image_path, rec.ann_id))]


def _sample(rec: Record, rgb: np.ndarray, model, size: int) -> dict[str, np.ndarray]:
    """Every stored field of one selected, non-dark image."""
    import torch

    from hand_nas.data.render import hand_mask
    from hand_nas.data.transforms import warp
    from hand_nas.hand.geometry import project

    with torch.no_grad():
        v, _ = model(torch.tensor(rec.pose[None], dtype=torch.float32), torch.tensor(rec.betas[None], dtype=torch.float32),
                     torch.tensor(rec.transl[None], dtype=torch.float32))
        world = v[0].double().numpy()
        cam = world @ rec.cam_R.T + rec.cam_t
        joints = model.joints(torch.from_numpy(cam)).numpy()
    pts = np.concatenate([project(cam[h], rec.K) for h in range(2) if rec.valid[h]], 0)
    a, _, _ = crop_transform(pts, size)
    K_crop = a @ rec.K
    mask = hand_mask(cam, [model.faces[side] for side in HANDS], K_crop, (size, size), rec.valid)
    keep = rec.valid[:, None, None]
    return {"images": warp(rgb, a, size), "masks": mask.reshape(size, size), "verts": cam * keep,
            "joints": joints * keep, "K": K_crop, "pose": rec.pose, "betas": rec.betas, "transl": rec.transl,
            "cam_R": rec.cam_R, "cam_t": rec.cam_t, "valid": rec.valid}


def _write_chunk(folder: str, start: int, index: IndexFiles, rows: np.ndarray) -> int:
    """Build the samples of the index rows ``rows`` and write them as rows ``start...`` of the sample files."""
    import os

    from hand_nas.data.samples import write_rows

    records = index.read(rows)
    samples = [_sample(rec, _load_rgb(rec.image_path, rec.ann_id), _WORKER["model"], _WORKER["size"])
               for rec in records]
    if _WORKER["parent_pid"] is not None and os.getppid() != _WORKER["parent_pid"]:
        os._exit(1)  # orphaned by a killed parent: leave the partial build to the resumed run
    write_rows(folder, start, **{name: np.stack([s[name] for s in samples]) for name in samples[0]})
    return len(records)


def _selection_digest(records: Selection) -> str:
    import hashlib

    h = hashlib.sha256()
    for rec in records:
        h.update(rec.source_id.encode() + b"\0")
        for arr in (rec.pose, rec.betas, rec.transl, rec.valid, rec.cam_R, rec.cam_t, rec.K):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def prepare(root: str | Path, out: str | Path, split: str = "test", subset: str = "HM", hands: str = "interacting",
            mano_dir=None, size: int = 256, limit: int | None = None, overwrite: bool = False,
            progress: bool = True, *, workers: int = 1, resume: bool = True, chunk: int = 64) -> dict:
    """Write the preprocessed cache of one split; resumable, in bounded memory, in parallel.

    Two passes over the selected images, each in chunks of ``chunk`` images committed to a log in
    the partial build ``.<out name>.partial`` next to ``out`` (see ``hand_nas.data.resumable``):

    1. scan: decode every image and apply IntagHand's dark rule (``is_dark``), so the number of
       samples is known before anything is written;
    2. write: the sample files are allocated at their exact final size and each chunk of kept
       images is built and written to its own rows with ``pwrite``.

    The selection is streamed from the annotation files into an index in a scratch folder beside
    ``out`` (``hand_nas.data.interhand_select``, ``hand_nas.atomic.scratch_dir``) and
    workers read their rows from it, so memory holds 8 bytes per selected image plus one chunk per
    worker, whatever the number of images, and the rows of every sample are fixed by the annotations alone, so the result is the
    same bytes for any ``workers`` and whether or not the run was interrupted and resumed.

    Args:
        workers: processes building samples (1: this process).
        resume: continue a partial build of ``out`` left by an interrupted run with the same
            arguments (False: discard it).
        chunk: images per committed chunk (the unit of work lost by a kill).

    Returns:
        counts (selected, written, dropped_dark) and this run's figures (workers, seconds,
        images_per_s, resumed).
    """
    if workers < 1 or chunk < 1:
        raise HandNasError(f"workers ({workers}) and chunk ({chunk}) must be >= 1")
    out = Path(out)
    if out.exists() and not overwrite:  # before the long annotation read
        raise HandNasError(f"{out}: already exists (pass --overwrite to replace it)")
    # The index sits beside ``out``, on its disk; a kill leaves it to the next run's clean-up.
    with scratch_dir(out) as index_dir:
        records = select_records(root, split, subset, hands, folder=index_dir)
        if limit is not None:
            records = records[:limit]
        return _prepare_selected(records, root, out, split, subset, hands, mano_dir, size, limit, overwrite,
                                 progress, workers, resume, chunk)


def _prepare_selected(records: Selection, root, out: Path, split, subset, hands, mano_dir, size, limit, overwrite,
                      progress, workers, resume, chunk) -> dict:
    """``prepare`` once the selection is on disk: the build parameters, then ``_build``."""
    import time

    import torch

    from hand_nas.hand.mano import HandModel
    from hand_nas.hand.topology import faces_fingerprint

    if not len(records):
        raise HandNasError(f"{root}: no {hands} images with MANO parameters in split {split!r} (subset {subset})")
    model = HandModel(mano_dir)
    hand_model = {"mano_dir": str(model.mano_dir), "fingerprint": faces_fingerprint(model.faces["right"])}
    del model
    n = len(records)
    params = {"builder": "interhand-prepare/1", "root": str(Path(root).resolve()), "split": split, "subset": subset,
              "hands": hands, "size": size, "limit": limit, "chunk": chunk, "hand_model": hand_model,
              "selected": n, "selection_sha256": _selection_digest(records)}
    meta = {"source": "interhand2.6m", "split": split, "subset": subset, "hands": hands, "root": str(root),
            "hand_model": hand_model}
    t0 = time.perf_counter()
    threads = torch.get_num_threads()  # a one-worker run sets this process to one thread (_init_worker)
    try:
        done_now, count, resumed = _build(records, out, params, meta, size=size, overwrite=overwrite,
                                          progress=progress, workers=workers, resume=resume, chunk=chunk)
    finally:
        torch.set_num_threads(threads)
        _WORKER.clear()
    seconds = time.perf_counter() - t0
    return {"selected": n, "written": count, "dropped_dark": n - count, "workers": workers, "seconds": seconds,
            "images_per_s": done_now / seconds if seconds > 0 else 0.0, "resumed": resumed}


def _build(records: Selection, out: Path, params: dict, meta: dict, *, size: int, overwrite: bool,
           progress: bool, workers: int, resume: bool, chunk: int) -> tuple[int, int, bool]:
    """The two passes of ``prepare``; returns (samples written by this run, samples in all, resumed)."""
    import os

    from tqdm import tqdm

    from hand_nas.data.chunk_pool import ChunkPool
    from hand_nas.data.resumable import ResumableBuild
    from hand_nas.data.samples import allocate_fields, write_index

    n, split = len(records), meta["split"]
    done_now = 0
    with ResumableBuild(out, params, overwrite=overwrite, resume=resume) as build, \
            ChunkPool(workers, _init_worker, (meta["hand_model"]["mano_dir"], size,
                                              os.getpid() if workers > 1 else None)) as pool:
        folder = build.folder
        n_chunks = -(-n // chunk)
        scanned = build.committed("scan")
        with tqdm(total=n, initial=sum(min(chunk, n - k * chunk) for k in scanned), desc=f"scan {split}", unit="img",
                  disable=not progress) as bar:
            def scanned_chunk(k: int, dark: list[int]) -> None:
                build.commit("scan", k, dark=dark)
                bar.update(min(chunk, n - k * chunk))

            pool.run(_scan_chunk, ((k, (records.files, records.positions[k * chunk:(k + 1) * chunk]))
                                   for k in range(n_chunks) if k not in scanned), scanned_chunk)
        keep = np.ones(n, bool)
        keep[[k * chunk + j for k, payload in scanned.items() for j in payload["dark"]]] = False
        kept = records.positions[keep]  # index rows of the samples, in order
        del keep
        count = len(kept)
        if count == 0:
            raise HandNasError(f"{meta['root']}: every selected image is darker than mean {DARK_MEAN:g}; nothing to write")
        allocated = build.committed("allocate").get(0)
        if allocated is None:
            allocate_fields(folder, count, size)
            build.commit("allocate", 0, count=count)
        elif allocated["count"] != count:
            raise HandNasError(f"{folder}: allocated for {allocated['count']} samples, the scan now keeps {count}; "
                               f"pass --no-resume to start over")
        written = build.committed("write")
        n_out = -(-count // chunk)
        with tqdm(total=count, initial=sum(min(chunk, count - k * chunk) for k in written), desc=f"prepare {split}",
                  unit="img", disable=not progress) as bar:
            def wrote_chunk(k: int, rows: int) -> None:
                nonlocal done_now
                build.commit("write", k)
                bar.update(rows)
                done_now += rows

            pool.run(_write_chunk, ((k, (str(folder), k * chunk, records.files, kept[k * chunk:(k + 1) * chunk]))
                                    for k in range(n_out) if k not in written), wrote_chunk)
        # Key order as before this writer existed, so meta.json keeps its bytes.
        write_index(folder, {**{k: meta[k] for k in ("source", "split", "subset", "hands", "root")},
                             "dropped_dark": n - count, "hand_model": meta["hand_model"]},
                    (rec.source_id for rec in Selection(records.files, kept)), size)
        build.finish()
    return done_now, count, build.resumed
