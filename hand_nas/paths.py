"""Where hand-nas keeps generated files that are not part of a run (the procedural hand model)."""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The cache root: ``$HAND_NAS_HOME`` or ``~/.cache/hand-nas`` (a one-line error when it is not a folder)."""
    root = Path(os.environ.get("HAND_NAS_HOME", Path.home() / ".cache" / "hand-nas"))
    if root.exists() and not root.is_dir():
        from hand_nas.errors import HandNasError

        raise HandNasError(f"HAND_NAS_HOME {root}: is a file, not a folder; point it at a folder (or unset it)")
    return root
