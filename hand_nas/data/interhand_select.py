"""InterHand2.6M's image selection, streamed from the annotation files into an on-disk index.

The selection is IntagHand's (see ``hand_nas.data.interhand``). The release's annotation files
are single JSON documents of hundreds of MB, so they are never loaded whole: each is streamed
(ijson, through ``hand_nas.json_stream``) and what a selected image needs (MANO parameters, camera, file name)
is written to files in an index folder, one fixed-size row per image. Memory holds a few bytes
per annotation (ids, a row number) plus one table per capture of cameras, whatever the number of
images; workers read the rows they build by position.

Index folder::

    mano.bin     while selecting: one row per MANO frame, pose 48 | shape 10 | trans 3 (f8) per hand
    rows.bin     one ``ROW`` per annotation that passed the hand-type filter, at its position
    names.bin    the images' file names (UTF-8), addressed by ``name_off`` / ``name_len``
"""
from __future__ import annotations

import os
import tempfile
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hand_nas.errors import HandNasError
from hand_nas.files import read_json
from hand_nas.hand.topology import HANDS
from hand_nas.json_stream import items, nested_items, top_level

SPLITS = ("train", "val", "test")
SUBSET_DIRS = {"H": "human_annot", "M": "machine_annot", "HM": "all"}
KINDS = ("data", "camera", "joint_3d", "MANO_NeuralAnnot")
HAND_TYPES = ("interacting", "left", "right")  # codes 0, 1, 2 in the annotation table

ROW = np.dtype([("pose", "<f8", (2, 48)), ("betas", "<f8", (2, 10)), ("transl", "<f8", (2, 3)),
                ("valid", "?", (2,)), ("cam_R", "<f8", (3, 3)), ("cam_t", "<f8", (3,)), ("K", "<f8", (3, 3)),
                ("ann_id", "<i8"), ("name_off", "<i8"), ("name_len", "<i8")])
MANO_ROW = np.dtype([("params", "<f8", (2, 61))])  # pose 48 | shape 10 | trans 3
ABSENT, PRESENT, MALFORMED = 0, 1, 2  # per frame and hand, in memory beside mano.bin


def annotation_paths(root: Path, split: str, subset: str = "HM") -> dict[str, Path]:
    """The four annotation files of a split, for the v1.0 or v0.0 layout."""
    if split not in SPLITS:
        raise HandNasError(f"split {split!r}: expected one of {SPLITS}")
    if subset not in SUBSET_DIRS:
        raise HandNasError(f"subset {subset!r}: expected one of {sorted(SUBSET_DIRS)}")
    v1 = root / "annotations" / split
    v0 = root / "annotations" / SUBSET_DIRS[subset]
    if subset == "HM" and v1.is_dir():
        folder = v1
    elif v0.is_dir():
        folder = v0
    elif subset != "HM" and v1.is_dir():
        raise HandNasError(f"{v0}: missing; the v1.0 layout ({v1}) mixes human and machine annotations, so "
                           f"subset {subset!r} needs v0.0's {SUBSET_DIRS[subset]}/ folder")
    else:
        raise HandNasError(f"{v1}: missing (expected InterHand2.6M's annotations/<split>/ folder)")
    return {k: folder / f"InterHand2.6M_{split}_{k}.json" for k in KINDS}


def _field(obj, key: str, path: Path, where: str):
    try:
        return obj[key]
    except (KeyError, TypeError, IndexError):
        raise HandNasError(f"{path}: {where} has no field {key!r}") from None


def _array(value, shape, path: Path, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise HandNasError(f"{path}: {where} is not numeric") from None
    if arr.shape != shape:
        raise HandNasError(f"{path}: {where} has shape {arr.shape}, expected {shape}")
    return arr


@dataclass(frozen=True)
class Record:
    """One selected image: where it is and everything needed to build its sample."""

    image_path: Path
    ann_id: int
    pose: np.ndarray  # (2, 48), left first
    betas: np.ndarray  # (2, 10)
    transl: np.ndarray  # (2, 3)
    valid: np.ndarray  # (2,) bool
    cam_R: np.ndarray  # (3, 3)
    cam_t: np.ndarray  # (3,) metres
    K: np.ndarray  # (3, 3) of the full image
    source_id: str


@dataclass(frozen=True)
class IndexFiles:
    """Where an index lives and what its names are relative to: small, so it travels to workers."""

    folder: str
    root: str
    split: str

    def read(self, positions) -> list[Record]:
        """The records at the given row positions (ascending), read with ``pread``: no mapping stays resident."""
        positions = np.asarray(positions, dtype=np.int64)
        if not len(positions):
            return []
        rows = _read_rows(os.path.join(self.folder, "rows.bin"), positions)
        names = os.path.join(self.folder, "names.bin")
        out = []
        fd = os.open(names, os.O_RDONLY)
        try:
            for row in rows:
                file_name = os.pread(fd, int(row["name_len"]), int(row["name_off"])).decode()
                out.append(Record(
                    image_path=Path(self.root) / "images" / self.split / file_name, ann_id=int(row["ann_id"]),
                    pose=row["pose"].copy(), betas=row["betas"].copy(), transl=row["transl"].copy(),
                    valid=row["valid"].copy(), cam_R=row["cam_R"].copy(), cam_t=row["cam_t"].copy(),
                    K=row["K"].copy(), source_id=f"{self.split}/{file_name}"))
        finally:
            os.close(fd)
        return out


def _read_rows(path: str, positions: np.ndarray) -> np.ndarray:
    # One read of the span when the rows lie close together (the usual case: only images without
    # MANO parameters leave gaps), else one read per row.
    fd = os.open(path, os.O_RDONLY)
    try:
        lo, hi = int(positions[0]), int(positions[-1]) + 1
        if hi - lo <= 4 * len(positions) + 16:
            span = np.frombuffer(os.pread(fd, (hi - lo) * ROW.itemsize, lo * ROW.itemsize), ROW)
            return span[positions - lo]
        return np.concatenate([np.frombuffer(os.pread(fd, ROW.itemsize, int(p) * ROW.itemsize), ROW)
                               for p in positions])
    finally:
        os.close(fd)


class Selection:
    """The selected images of a split, in annotation order: a sequence of ``Record`` read from disk.

    Holds the index's ``IndexFiles`` and the row position of each selected image (8 bytes per image).
    """

    def __init__(self, files: IndexFiles, positions: np.ndarray, keep_alive=None) -> None:
        self.files, self.positions = files, positions
        self._keep_alive = keep_alive  # the temporary folder of an index made by select_records

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Selection(self.files, self.positions[i], self._keep_alive)
        return self.files.read(self.positions[[i]])[0]

    def __iter__(self):
        for start in range(0, len(self), 1024):
            yield from self.files.read(self.positions[start:start + 1024])


def select_records(root: str | Path, split: str, subset: str = "HM", hands: str = "interacting",
                   folder: str | Path | None = None) -> Selection:
    """Read the annotation files and select images as IntagHand does (see ``hand_nas.data.interhand``).

    Args:
        folder: where to write the index, made if missing (None: a temporary folder, removed with the result).

    Streams ``_data.json`` twice (annotations, then images) and ``_MANO_NeuralAnnot.json`` once;
    ``_camera.json`` (a few numbers per camera) is read whole. Memory: about 20 bytes per
    annotation of the wanted hand type and 100 per MANO frame, plus one block of the file and its events.
    """
    if hands not in ("interacting", "single", "all"):
        raise HandNasError(f"hands {hands!r}: expected 'interacting', 'single' or 'all'")
    root = Path(root)
    paths = annotation_paths(root, split, subset)
    keep_alive = None
    if folder is None:
        keep_alive = tempfile.TemporaryDirectory(prefix="hand-nas-select-")
        folder = keep_alive.name
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("data", "MANO_NeuralAnnot", "joint_3d"):
        if not paths[kind].is_file():
            raise HandNasError(f"{paths[kind]}: missing")
    cameras = read_json(paths["camera"])
    ann_ids, image_ids, types = _annotations(paths["data"], hands)
    frames, status, errors = _mano(paths["MANO_NeuralAnnot"], folder / "mano.bin")
    state = _rows(root, paths, folder, hands, ann_ids, image_ids, types, frames, status, errors, cameras)
    missing = np.flatnonzero(state == 0)
    if len(missing):
        p = int(missing[0])
        raise HandNasError(f"{paths['data']}: annotation {ann_ids[p]} refers to image_id {image_ids[p]}, "
                           f"which is not in images[]")
    (folder / "mano.bin").unlink()
    return Selection(IndexFiles(str(folder), str(root), split), np.flatnonzero(state == 1), keep_alive)


def _top_level(path: Path, key: str) -> None:
    """Why ``items(path, key + ".item")`` gave nothing: no such field, or not a list (an empty list is fine)."""
    start = top_level(path).get(key)
    if start is None:
        raise HandNasError(f"{path}: the top level has no field {key!r}")
    if start != "start_array":
        raise HandNasError(f"{path}: the top-level field {key!r} is not a list")


def _annotations(path: Path, hands: str) -> tuple[array, array, array]:
    """(annotation id, image id, hand-type code) of every annotation the hand filter keeps, in file order."""
    ann_ids, image_ids, types = array("q"), array("q"), array("b")
    n_seen = 0
    for ann in items(path, "annotations.item"):
        n_seen += 1
        where = f"annotation {ann.get('id') if isinstance(ann, dict) else None}"
        hand_type = _field(ann, "hand_type", path, where)
        if not _field(ann, "hand_type_valid", path, where):
            continue
        if hands == "interacting" and hand_type != "interacting":
            continue
        if hands == "single" and hand_type not in ("left", "right"):
            continue
        if hand_type not in HAND_TYPES:
            continue  # no MANO parameters are stored under another name, so it would be skipped there
        image_ids.append(int(_field(ann, "image_id", path, where)))
        ann_ids.append(int(ann.get("id", -1)))
        types.append(HAND_TYPES.index(hand_type))
    if not n_seen:
        _top_level(path, "annotations")
    return ann_ids, image_ids, types


def _mano(path: Path, out: Path) -> tuple[dict, array, dict]:
    """Write every frame's parameters to ``out``; returns ({(capture, frame): row}, status per row and hand, errors).

    A hand's parameters are checked here, but a malformed one is only an error if a selected
    image needs it (as when the whole file was read), so its message waits in ``errors``.
    """
    frames, status, errors = {}, array("b"), {}
    n_rows = 0
    with open(out, "wb") as fh:
        for capture, frame, params in nested_items(path, "{capture: {frame: {left, right}}}"):
            if params is None:
                continue  # no annotation for this frame: its images are skipped
            row = np.zeros((2, 61))
            st = [ABSENT, ABSENT]
            for h, side in enumerate(HANDS):
                p = params.get(side) if isinstance(params, dict) else None
                if p is None:
                    continue
                mwhere = f"capture {capture} frame {frame} hand {side!r}"
                try:
                    row[h, :48] = _array(_field(p, "pose", path, mwhere), (48,), path, mwhere + " pose")
                    row[h, 48:58] = _array(_field(p, "shape", path, mwhere), (10,), path, mwhere + " shape")
                    row[h, 58:] = _array(_field(p, "trans", path, mwhere), (3,), path, mwhere + " trans")
                    st[h] = PRESENT
                except HandNasError as exc:
                    errors[(n_rows, h)] = str(exc)
                    st[h] = MALFORMED
            frames[(capture, frame)] = n_rows  # a repeated key: the last one counts, as in json.loads
            n_rows += 1
            status.extend(st)
            fh.write(row.tobytes())
    return frames, status, errors


def _camera(cameras, capture: str, cam: str, path: Path, image_id: int):
    cap_cam = cameras.get(capture) if isinstance(cameras, dict) else None
    if cap_cam is None:
        raise HandNasError(f"{path}: no capture {capture!r} (needed by image {image_id})")
    cwhere = f"capture {capture}"
    campos = _array(_field(_field(cap_cam, "campos", path, cwhere), cam, path, cwhere + " campos"), (3,), path, f"campos[{cam}]")
    camrot = _array(_field(_field(cap_cam, "camrot", path, cwhere), cam, path, cwhere + " camrot"), (3, 3), path, f"camrot[{cam}]")
    focal = _array(_field(_field(cap_cam, "focal", path, cwhere), cam, path, cwhere + " focal"), (2,), path, f"focal[{cam}]")
    princpt = _array(_field(_field(cap_cam, "princpt", path, cwhere), cam, path, cwhere + " princpt"), (2,), path, f"princpt[{cam}]")
    K = np.array([[focal[0], 0, princpt[0]], [0, focal[1], princpt[1]], [0, 0, 1.0]])
    return camrot, -camrot @ campos / 1000.0, K


def _rows(root: Path, paths: dict, folder: Path, hands: str, ann_ids: array, image_ids: array, types: array,
          frames: dict, status: array, errors: dict, cameras) -> np.ndarray:
    """Stream ``images[]`` and write the row of every annotation whose image is selected.

    Returns the state per annotation: 0 its image was not in images[], 1 selected, 2 skipped (no
    MANO parameters for a wanted hand).
    """
    data, mano_path = paths["data"], paths["MANO_NeuralAnnot"]
    ids = np.asarray(image_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    # array, not ndarray: bisect on it is a C loop over plain ints, ~10x faster than numpy scalars.
    by_image, order = array("q", ids[order].tobytes()), array("q", order.astype(np.int64).tobytes())
    del ids
    state = np.zeros(len(ann_ids), np.int8)
    n_seen = 0
    mano_fd = os.open(folder / "mano.bin", os.O_RDONLY)
    try:
        with open(folder / "rows.bin", "wb") as rows, open(folder / "names.bin", "wb") as names:
            rows.truncate(len(ann_ids) * ROW.itemsize)
            name_off = 0
            for im in items(data, "images.item"):
                n_seen += 1
                image_id = int(_field(im, "id", data, "an images[] entry"))
                lo, hi = bisect_left(by_image, image_id), bisect_right(by_image, image_id)
                if lo == hi:
                    continue
                where = f"image {image_id}"
                capture, frame = str(_field(im, "capture", data, where)), str(_field(im, "frame_idx", data, where))
                cam = str(_field(im, "camera", data, where))
                file_name = None
                for p in (order[k] for k in range(lo, hi)):
                    state[p] = 2
                    frame_row = frames.get((capture, frame))
                    if frame_row is None:
                        continue
                    kind = HAND_TYPES[types[p]]
                    wanted = (0, 1) if kind == "interacting" else (HANDS.index(kind),)
                    st = [status[2 * frame_row + h] for h in range(2)]
                    if any(st[h] == ABSENT for h in wanted):
                        continue
                    for h in wanted:
                        if st[h] == MALFORMED:
                            raise HandNasError(errors[(frame_row, h)])
                    params = np.frombuffer(os.pread(mano_fd, MANO_ROW.itemsize, frame_row * MANO_ROW.itemsize),
                                           np.float64).reshape(2, 61)
                    row = np.zeros((), ROW)
                    for h in wanted:
                        row["pose"][h], row["betas"][h], row["transl"][h] = params[h, :48], params[h, 48:58], params[h, 58:]
                        row["valid"][h] = True
                    row["cam_R"], row["cam_t"], row["K"] = _camera(cameras, capture, cam, paths["camera"], image_id)
                    if file_name is None:
                        file_name = str(_field(im, "file_name", data, where)).encode()
                        names.write(file_name)
                        name_off += len(file_name)
                    row["ann_id"], row["name_off"], row["name_len"] = ann_ids[p], name_off - len(file_name), len(file_name)
                    os.pwrite(rows.fileno(), row.tobytes(), p * ROW.itemsize)
                    state[p] = 1
    finally:
        os.close(mano_fd)
    if not n_seen:
        _top_level(data, "images")
    return state
