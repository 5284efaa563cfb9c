"""Export bundles: one directory a user can ship and trust.

Files: ``model.safetensors`` and ``config.json`` (a hand-nas checkpoint: architecture, pruned
shapes, provenance), ``model.onnx`` (fp32), ``model.int8.onnx``, ``report.json`` and
``manifest.json`` (sha256 and size of every other file). ``open_bundle`` checks every hash before
anything is read, so a changed, missing or extra file is refused; nothing in a bundle is unpickled
(safetensors, JSON and ONNX only).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hand_nas.errors import HandNasError

MANIFEST = "manifest.json"
FILES = ("model.safetensors", "config.json", "model.onnx", "model.int8.onnx", "report.json")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> dict:
    """Hash every file of ``folder`` (the manifest itself excluded) into manifest.json."""
    files = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size}
             for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {"format": "hand-nas bundle 1", "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def verify_bundle(folder: str | Path) -> dict:
    """The manifest, after checking that every listed file exists unchanged and nothing else was added."""
    from hand_nas.files import read_json

    folder = Path(folder)
    if not folder.is_dir():
        raise HandNasError(f"{folder}: bundle folder not found")
    path = folder / MANIFEST
    if not path.is_file():
        raise HandNasError(f"{path}: missing (not a hand-nas bundle, or an incomplete one)")
    manifest = read_json(path, "bundle manifest")
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        raise HandNasError(f"{path}: field 'files' missing or empty")
    for name, entry in files.items():
        p = folder / name
        if not p.is_file():
            raise HandNasError(f"{p}: listed in {MANIFEST} but missing")
        if sha256(p) != entry.get("sha256"):
            raise HandNasError(f"{p}: sha256 differs from {MANIFEST} (the file was changed after export); refused")
    extra = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != MANIFEST and p.name not in files)
    if extra:
        raise HandNasError(f"{folder / extra[0]}: not listed in {MANIFEST}; refused")
    return manifest


def is_bundle(folder: str | Path) -> bool:
    return (Path(folder) / MANIFEST).is_file()


def open_bundle(folder: str | Path, mano_dir=None):
    """(model in eval mode, config dict, report dict) of a verified bundle."""
    from hand_nas.checkpoint import load_checkpoint
    from hand_nas.files import read_json

    verify_bundle(folder)
    model, config = load_checkpoint(folder, mano_dir)
    report = read_json(Path(folder) / "report.json", "bundle report")
    return model, config, report
