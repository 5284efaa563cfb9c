"""The on-disk sample format shared by the synthetic set and the prepared InterHand2.6M cache.

A sample directory holds one ``.npy`` file per field (memory-mapped on read) and ``meta.json``:

====================  ===================  ==================================================
file                  shape, dtype         meaning
====================  ===================  ==================================================
images.npy            (N, S, S, 3) uint8   RGB crop
masks.npy             (N, S, S) uint8      0 background, 1 left hand, 2 right hand
verts.npy             (N, 2, 778, 3) f32   vertices, camera frame, metres (left, right)
joints.npy            (N, 2, 21, 3) f32    joints in hand-nas' 21-joint order, camera frame, m
K.npy                 (N, 3, 3) f32        intrinsics of the crop
pose.npy              (N, 2, 48) f32       MANO axis-angle (global first, hand pose mean-relative)
betas.npy             (N, 2, 10) f32       MANO shape
transl.npy            (N, 2, 3) f32        MANO translation (MANO frame)
cam_R.npy, cam_t.npy  (N, 3, 3), (N, 3)    MANO frame -> camera frame: X_cam = R X + t (metres)
valid.npy             (N, 2) bool          hand annotated
source_ids.json       N strings            where each sample came from (file or seed/index)
====================  ===================  ==================================================

``meta.json`` names the source, the image size, the hand model (folder + topology fingerprint) and
free-form provenance. Writers build the directory under a temporary name and rename it at the end.

Two ways to fill the fields: ``SampleWriter`` (memory-mapped, one process owns the arrays) and
``allocate_fields`` + ``write_rows`` (preallocated files of the final size, rows written with
``pwrite`` by any process, so resident memory stays at one block of rows whatever ``N`` is).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hand_nas.errors import HandNasError

FORMAT = "hand-nas-samples"
VERSION = 1


def field_specs(n: int, size: int) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shape and dtype of every stored field for ``n`` samples of ``size`` x ``size`` pixels."""
    return {
        "images": ((n, size, size, 3), "uint8"),
        "masks": ((n, size, size), "uint8"),
        "verts": ((n, 2, 778, 3), "float32"),
        "joints": ((n, 2, 21, 3), "float32"),
        "K": ((n, 3, 3), "float32"),
        "pose": ((n, 2, 48), "float32"),
        "betas": ((n, 2, 10), "float32"),
        "transl": ((n, 2, 3), "float32"),
        "cam_R": ((n, 3, 3), "float32"),
        "cam_t": ((n, 3), "float32"),
        "valid": ((n, 2), "bool"),
    }


class SampleWriter:
    """Fills the fields of a sample directory that is being built (see ``hand_nas.atomic``).

    Args:
        folder: the (temporary) directory to write into.
        n: number of samples.
        size: image side in pixels.
    """

    def __init__(self, folder: str | Path, n: int, size: int) -> None:
        self.folder, self.n, self.size = Path(folder), n, size
        self.source_ids: list[str] = [""] * n
        self.arrays = {}
        for name, (shape, dtype) in field_specs(n, size).items():
            self.arrays[name] = np.lib.format.open_memmap(self.folder / f"{name}.npy", mode="w+",
                                                          dtype=dtype, shape=shape)

    def put(self, i: int, source_id: str = "", **fields: np.ndarray) -> None:
        """Store the given fields of sample ``i``; unknown field names are an error."""
        self.source_ids[i] = source_id
        for name, value in fields.items():
            if name not in self.arrays:
                raise KeyError(f"unknown sample field {name!r}; known: {sorted(self.arrays)}")
            self.arrays[name][i] = value

    def close(self, meta: dict, count: int | None = None) -> None:
        """Flush the arrays (keeping the first ``count`` samples) and write ``meta.json``."""
        count = self.n if count is None else count
        for arr in self.arrays.values():
            arr.flush()
        self.arrays.clear()  # unmaps the files before they are shortened
        if count < self.n:
            for name in field_specs(self.n, self.size):
                shrink_npy(self.folder / f"{name}.npy", count)
        write_index(self.folder, meta, self.source_ids[:count], self.size)


def write_index(folder: str | Path, meta: dict, source_ids: Iterable[str], size: int) -> None:
    """Write ``source_ids.json`` and ``meta.json`` of a sample directory with one sample per source id.

    ``source_ids`` may be any iterable: it is written as it comes, in the bytes ``json.dumps`` gives
    the whole list, so a million ids need not be in memory at once.
    """
    folder = Path(folder)
    count = 0
    with open(folder / "source_ids.json", "w") as fh:
        fh.write("[")
        for sid in source_ids:
            fh.write((", " if count else "") + json.dumps(sid))
            count += 1
        fh.write("]")
    meta = {"format": FORMAT, "version": VERSION, "count": count, "image_size": size, **meta}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, byte offset of the data) of a C-ordered ``.npy`` file."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        if fortran:
            raise ValueError(f"{path}: Fortran-ordered arrays are not written here")
        return shape, dtype, fh.tell()


def shrink_npy(path: str | Path, count: int) -> None:
    """Keep the first ``count`` rows of a C-ordered ``.npy`` file, in place and in O(1) memory.

    The rows to keep are already a prefix of the data, so only the header changes and the file is
    cut. numpy pads headers so that the first axis can grow to 21 digits without moving the data;
    the result is byte for byte what ``np.save`` writes for the shortened array.
    """
    path = Path(path)
    shape, dtype, offset = _npy_header(path)
    if not 0 <= count <= shape[0]:
        raise ValueError(f"{path}: cannot keep {count} of {shape[0]} rows")
    header = _header_bytes((count, *shape[1:]), dtype)
    if len(header) != offset:  # never with numpy's padding; kept so an odd header cannot corrupt data
        raise ValueError(f"{path}: header of {len(header)} bytes does not fit the existing {offset}")
    row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    with open(path, "r+b") as fh:
        fh.write(header)
        fh.truncate(offset + count * row)


def _header_bytes(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    import io

    # Version 1.0, as np.save and open_memmap write for every header shorter than 64 KiB.
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def allocate_fields(folder: str | Path, n: int, size: int) -> None:
    """Create every field file of ``n`` samples at its final size (sparse: nothing is written yet)."""
    folder = Path(folder)
    for name, (shape, dtype) in field_specs(n, size).items():
        header = _header_bytes(shape, np.dtype(dtype))
        with open(folder / f"{name}.npy", "wb") as fh:
            fh.write(header)
            fh.truncate(len(header) + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize)


def write_rows(folder: str | Path, start: int, **fields: np.ndarray) -> None:
    """Write rows ``start, start + 1, ...`` of the given fields into files made by ``allocate_fields``.

    Each value is a (B, ...) array of that field's row shape; the files are opened, written with
    ``pwrite``, synced to disk (so a resumable build may record the rows as done, even across a
    power cut) and closed: nothing stays mapped and processes may write disjoint rows at once.
    """
    folder = Path(folder)
    for name, value in fields.items():
        path = folder / f"{name}.npy"
        shape, dtype, offset = _npy_header(path)
        value = np.ascontiguousarray(value, dtype=dtype)
        if value.shape[1:] != shape[1:] or start < 0 or start + len(value) > shape[0]:
            raise ValueError(f"{path}: rows {start}..{start + len(value)} of shape {value.shape[1:]} do not fit "
                             f"{shape}")
        data = memoryview(value.reshape(-1).view(np.uint8))
        pos = offset + start * (value.nbytes // max(len(value), 1))
        fd = os.open(path, os.O_WRONLY)
        try:
            while data:
                written = os.pwrite(fd, data, pos)
                data, pos = data[written:], pos + written
            os.fdatasync(fd)
        finally:
            os.close(fd)


@dataclass
class SampleSet:
    """A sample directory opened read-only (arrays memory-mapped)."""

    folder: Path
    meta: dict
    arrays: dict[str, np.ndarray] = field(repr=False)

    def __len__(self) -> int:
        return int(self.meta["count"])

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]


def open_samples(folder: str | Path) -> SampleSet:
    """Open a sample directory, checking ``meta.json`` and every field's shape.

    Raises:
        HandNasError: naming the file and what was expected, if anything is missing or malformed.
    """
    folder = Path(folder)
    from hand_nas.files import read_json

    meta_path = folder / "meta.json"
    meta = read_json(meta_path, "not a hand-nas sample directory; create one with 'hand-nas data synth' or "
                                "'hand-nas data prepare'")
    found = meta.get("format") if isinstance(meta, dict) else None
    if found != FORMAT:
        raise HandNasError(f"{meta_path}: field 'format' is {found!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise HandNasError(f"{meta_path}: field 'version' is {meta.get('version')!r}, expected {VERSION}")
    arrays = {}
    for name, (shape, dtype) in field_specs(int(meta["count"]), int(meta["image_size"])).items():
        path = folder / f"{name}.npy"
        if not path.is_file():
            raise HandNasError(f"{path}: missing")
        try:
            arr = np.load(path, mmap_mode="r")
        except ValueError as exc:
            raise HandNasError(f"{path}: unreadable ({exc})") from None
        if arr.shape != shape or arr.dtype != np.dtype(dtype):
            raise HandNasError(f"{path}: shape {arr.shape} {arr.dtype}, expected {shape} {dtype}")
        arrays[name] = arr
    return SampleSet(folder, meta, arrays)
