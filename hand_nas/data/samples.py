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
"""
from __future__ import annotations

import json
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
        for name, arr in self.arrays.items():
            arr.flush()
            if count < self.n:
                kept = np.array(arr[:count])
                del arr
                np.save(self.folder / f"{name}.npy", kept)
        self.arrays.clear()
        (self.folder / "source_ids.json").write_text(json.dumps(self.source_ids[:count]))
        meta = {"format": FORMAT, "version": VERSION, "count": count, "image_size": self.size, **meta}
        (self.folder / "meta.json").write_text(json.dumps(meta, indent=2))


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
