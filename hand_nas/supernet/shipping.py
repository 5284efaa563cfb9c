"""The shipped form of a trained supernet: fp16 tensors and a manifest of sha256s, verified on load.

``export_supernet`` writes ``supernet.safetensors`` in fp16 (half the bytes; every subnet is recalibrated and
scored in fp32 after loading), ``supernet.json``, ``space.yaml`` and ``manifest.json`` (sha256 and size of
each, ``manifest.py``); ``load_supernet`` refuses a folder whose files differ from its manifest, so a shipped
supernet that was changed after export is not searched.
"""
from __future__ import annotations

from pathlib import Path

import torch

from hand_nas.errors import HandNasError
from hand_nas.files import file_sha256
from hand_nas.supernet.manifest import MANIFEST, TENSORS, write_manifest
from hand_nas.supernet.supernet import load_supernet

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

    check_output(out, inputs=[folder], overwrite=overwrite)
    net, record = load_supernet(folder)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        net.save(tmp, dtype=torch.float16, **{k: v for k, v in record.items()
                                              if k not in ("format", "space", "buffers", "layout", "folder", "sha256")},
                 shipped_dtype="float16")
        size = write_manifest(tmp)[TENSORS]["bytes"]
    return file_sha256(Path(out) / MANIFEST), size
