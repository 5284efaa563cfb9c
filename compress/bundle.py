"""Export bundles: one directory a user can ship and verify.

Files: ``model.safetensors`` and ``config.json`` (a hand-nas checkpoint: architecture, pruned
shapes, provenance), ``model.onnx`` (fp32), ``model.int8.onnx``, ``model.pte`` and ``model.int8.pte``
(ExecuTorch programs for the XNNPACK delegate, when ExecuTorch is installed), ``model.tflite`` (LiteRT, when
its converter is set up), ``report.json, the ``.hand-nas``
folder marker and ``manifest.json`` (sha256 and size of every other file). ``verify_bundle`` refuses
a bundle without its manifest, any symbolic link, subfolder or file the manifest does not list, and
any listed file whose sha256 differs; nothing in a bundle is unpickled (safetensors, JSON and ONNX
only). The manifest is a checksum, not a signature: whoever can edit the files can rewrite it too,
so a bundle from elsewhere is trusted by comparing ``manifest_sha256`` (printed at export) out of band.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from hand_nas.errors import HandNasError, short
from hand_nas.files import file_sha256

MANIFEST = "manifest.json"
FORMAT = "hand-nas bundle 1"
FILES = ("model.safetensors", "config.json", "model.onnx", "model.int8.onnx", "report.json")
CHECKPOINT_FILES = ("model.safetensors", "config.json", ".hand-nas")  # what a plain checkpoint folder holds
MAX_FILES = 64


def sha256(path: Path) -> str:
    return file_sha256(path)


def write_manifest(folder: Path) -> str:
    """Hash every file of ``folder`` (the manifest itself excluded) into manifest.json; returns its sha256.

    The returned hex digest is what a user compares out of band to trust the bundle.
    """
    entries = sorted(folder.iterdir())
    if bad := [p.name for p in entries if p.is_symlink() or not p.is_file()]:
        raise HandNasError(f"{folder / bad[0]}: a bundle holds plain files only (no links or subfolders)")
    files = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in entries if p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"format": FORMAT, "files": files}, indent=2))
    return manifest_sha256(folder)


def manifest_sha256(folder: str | Path) -> str:
    """sha256 of a bundle's manifest.json: one number that pins every file of the bundle."""
    return sha256(Path(folder) / MANIFEST)


def verify_bundle(folder: str | Path, expected_sha256: str | None = None) -> dict:
    """The manifest, after checking the whole folder against it.

    Refused (HandNasError, one line): no manifest; a symbolic link, subfolder or other non-regular
    entry; a file not listed; a listed file missing or with another size or sha256; with
    ``expected_sha256``, a manifest other than the one the user was given.
    """
    from hand_nas.files import read_json

    folder = Path(folder)
    if not folder.is_dir():
        raise HandNasError(f"{folder}: bundle folder not found")
    path = folder / MANIFEST
    if path.is_symlink() or not path.is_file():
        raise HandNasError(f"{path}: missing (a bundle must carry its manifest; this one is incomplete or was "
                           "altered); refused")
    entries = {}
    with os.scandir(folder) as it:
        for e in it:
            mode = e.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                raise HandNasError(f"{folder / e.name}: symbolic link in a bundle; refused")
            if stat.S_ISDIR(mode):
                raise HandNasError(f"{folder / e.name}: subfolder in a bundle (not listed in {MANIFEST}); refused")
            if not stat.S_ISREG(mode):
                raise HandNasError(f"{folder / e.name}: not a regular file; refused")
            entries[e.name] = e
            if len(entries) > MAX_FILES:
                raise HandNasError(f"{folder}: more than {MAX_FILES} files; not a hand-nas bundle")
    manifest = read_json(path, "bundle manifest", max_bytes=1 << 20)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise HandNasError(f"{path}: field 'format': expected {FORMAT!r}, got "
                           f"{short(manifest.get('format') if isinstance(manifest, dict) else manifest)}")
    if not isinstance(files, dict) or not files:
        raise HandNasError(f"{path}: field 'files' missing or empty")
    if expected_sha256 is not None and manifest_sha256(folder) != expected_sha256.strip().lower():
        raise HandNasError(f"{path}: sha256 {manifest_sha256(folder)} is not the expected {short(expected_sha256)}; "
                           "refused")
    extra = sorted(set(entries) - set(files) - {MANIFEST})
    if extra:
        raise HandNasError(f"{folder / extra[0]}: not listed in {MANIFEST}; refused")
    for name, entry in files.items():
        if name not in entries:  # also catches names with separators or '..': they are never folder entries
            raise HandNasError(f"{folder}/{short(name)}: listed in {MANIFEST} but missing")
        if not isinstance(entry, dict):
            raise HandNasError(f"{path}: files.{name}: expected {{sha256, bytes}}")
        p = folder / name
        if entries[name].stat(follow_symlinks=False).st_size != entry.get("bytes") or sha256(p) != entry.get("sha256"):
            raise HandNasError(f"{p}: sha256 differs from {MANIFEST} (the file was changed after export); refused")
    return manifest


def is_bundle(folder: str | Path) -> bool:
    """True when ``folder`` must be opened as a bundle, i.e. verified against a manifest.

    A manifest makes it one; so does anything a plain checkpoint folder (model.safetensors,
    config.json, the marker) does not hold (ONNX files, report.json, subfolders, links), and a
    config.json that records a compression run. Deleting manifest.json therefore does not turn a
    bundle into an unverified checkpoint: ``open_bundle`` refuses it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return False
    if (folder / MANIFEST).exists() or (folder / MANIFEST).is_symlink():
        return True
    for p in folder.iterdir():
        if p.name not in CHECKPOINT_FILES or p.is_symlink() or not p.is_file():
            return True
    try:
        from hand_nas.files import read_json

        config = read_json(folder / "config.json", "checkpoint config")
    except HandNasError:
        return False  # load_checkpoint reports it
    return isinstance(config, dict) and "compress" in config


def open_bundle(folder: str | Path, mano_dir=None, expected_sha256: str | None = None):
    """(model in eval mode, config dict, report dict) of a verified bundle."""
    from hand_nas.checkpoint import load_checkpoint
    from hand_nas.files import read_json

    verify_bundle(folder, expected_sha256)
    model, config = load_checkpoint(folder, mano_dir)
    report = read_json(Path(folder) / "report.json", "bundle report")
    return model, config, report


def open_model(path: str | Path, mano_dir=None):
    """(model, config) of a bundle (every hash verified) or of a plain checkpoint folder.

    The one way every command (evaluate, predict, bench, compress) opens what it is given: a folder that
    is a bundle (``is_bundle``) is verified against its manifest first; either way the config is
    validated, the shapes record read through its allow-list and non-finite weights refused
    (``hand_nas.checkpoint.load_checkpoint``).
    """
    from hand_nas.checkpoint import load_checkpoint

    if is_bundle(path):
        model, config, _ = open_bundle(path, mano_dir)
        return model, config
    return load_checkpoint(path, mano_dir)
