"""Reading structured files with one-line errors that name the file and what is wrong."""
from __future__ import annotations

import json
from pathlib import Path

from hand_nas.errors import HandNasError


def read_json(path: str | Path, what: str = "file"):
    """Parsed JSON; a missing or malformed file is a HandNasError naming it."""
    path = Path(path)
    if not path.is_file():
        raise HandNasError(f"{path}: missing ({what} not found)")
    try:
        with open(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise HandNasError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def read_yaml(path: str | Path, what: str = "file"):
    """Parsed YAML (JSON is YAML too); a missing or malformed file is a HandNasError naming it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise HandNasError(f"{path}: missing ({what} not found)")
    if path.suffix == ".json":
        return read_json(path, what)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise HandNasError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
