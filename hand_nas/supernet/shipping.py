"""The shipped form of a trained supernet: fp16 tensors and a manifest of sha256s, verified on load.

``export_supernet`` writes ``supernet.safetensors`` in fp16 (half the bytes; every subnet is recalibrated and
scored in fp32 after loading), ``supernet.json``, ``space.yaml`` and ``manifest.json`` (sha256 and size of
each). ``verify_supernet`` refuses a folder whose files differ from its manifest, so a shipped supernet that
was changed after export is not searched.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from hand_nas.errors import HandNasError
from hand_nas.files import file_sha256

MANIFEST = "manifest.json"
SHIPPED = Path(__file__).parent / "shipped"


def shipped_supernet(space: str) -> Path:
    """The trained supernet hand-nas ships for a space (``hand_nas/supernet/shipped/<space>``)."""
    folder = SHIPPED / space
    if not (folder / MANIFEST).is_file():
        known = sorted(p.name for p in SHIPPED.glob("*") if (p / MANIFEST).is_file()) if SHIPPED.is_dir() else []
        raise HandNasError(f"no shipped supernet for space {space!r} (shipped: {', '.join(known) or 'none'}); "
                           f"train one with `hand-nas supernet train --space {space}`")
    return folder


def export_supernet(folder: str | Path, out: str | Path, overwrite: bool = False) -> tuple[str, int]:
    """Write the fp16 copy of the supernet in ``folder`` to ``out``; returns (manifest sha256, weight bytes)."""
    from hand_nas.atomic import atomic_dir, check_output
    from hand_nas.supernet.supernet import LAYOUT, SPACE, TENSORS, load_supernet

    check_output(out, inputs=[folder], overwrite=overwrite)
    net, record = load_supernet(folder)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        net.save(tmp, dtype=torch.float16, **{k: v for k, v in record.items()
                                              if k not in ("format", "space", "buffers", "layout", "folder", "sha256")},
                 shipped_dtype="float16")
        files = {name: {"sha256": file_sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
                 for name in (TENSORS, LAYOUT, SPACE)}
        (tmp / MANIFEST).write_text(json.dumps({"files": files}, indent=1))
        size = files[TENSORS]["bytes"]
    return file_sha256(Path(out) / MANIFEST), size


_VERIFIED: dict = {}  # (folder, files' size and mtime) -> sha256: a worker re-checks in microseconds


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
    from hand_nas.supernet.supernet import TENSORS

    folder = Path(folder)
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
