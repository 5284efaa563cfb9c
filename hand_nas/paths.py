"""Where hand-nas keeps generated files that are not part of a run (the procedural hand model)."""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The cache root: ``$HAND_NAS_HOME`` or ``~/.cache/hand-nas``."""
    return Path(os.environ.get("HAND_NAS_HOME", Path.home() / ".cache" / "hand-nas"))
