"""A saved supernet's files and their manifest: what a folder holds, and the check before it is used.

A folder holds ``supernet.safetensors`` (the shared tensors), ``supernet.json`` (layout and provenance) and
``space.yaml``; an exported (shipped) one also ``manifest.json``, the sha256 and size of each. A folder whose
files differ from its manifest is refused, so a shipped supernet changed after export is never searched.
"""
from __future__ import annotations

import json
from pathlib import Path

from hand_nas.errors import HandNasError
from hand_nas.files import file_sha256

TENSORS, LAYOUT, SPACE, MANIFEST = "supernet.safetensors", "supernet.json", "space.yaml", "manifest.json"

_VERIFIED: dict = {}  # (folder, files' size and mtime) -> sha256: a worker re-checks in microseconds


def write_manifest(folder: Path) -> dict:
    """Write ``folder``'s manifest.json over its three files; returns the manifest's ``files`` entry."""
    files = {name: {"sha256": file_sha256(folder / name), "bytes": (folder / name).stat().st_size}
             for name in (TENSORS, LAYOUT, SPACE)}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1))
    return files


def verify_supernet(folder: str | Path) -> str | None:
    """Check a folder against its manifest (when it has one); returns the weights' sha256 either way.
    Repeated calls on unchanged files (same sizes and modification times) return the first answer."""
    folder = Path(folder)
    stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.glob("*")) if p.is_file())
    if (folder, stamp) not in _VERIFIED:
        _VERIFIED[(folder, stamp)] = _verify(folder)
    return _VERIFIED[(folder, stamp)]


def _verify(folder: Path) -> str | None:
    from hand_nas.files import read_json

    if not (folder / MANIFEST).is_file():
        return file_sha256(folder / TENSORS) if (folder / TENSORS).is_file() else None
    files = read_json(folder / MANIFEST, "supernet manifest").get("files")
    if not isinstance(files, dict) or TENSORS not in files:
        raise HandNasError(f"{folder / MANIFEST}: expected files.{TENSORS} with its sha256")
    for name, entry in files.items():
        path = folder / Path(name).name
        if not path.is_file() or path.stat().st_size != entry.get("bytes") or file_sha256(path) != entry.get("sha256"):
            raise HandNasError(f"{path}: differs from {MANIFEST} (changed after export); refused")
    return files[TENSORS]["sha256"]
