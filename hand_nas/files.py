"""Reading structured files with one-line errors that name the file and what is wrong.

Inputs are bounded before they are parsed: a size limit, UTF-8 only, and YAML without aliases
(``*name``), so a kilobyte-sized alias bomb cannot expand into gigabytes of lists.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hand_nas.errors import HandNasError

MAX_BYTES = 16 * 2 ** 20  # far above any config, manifest or report hand-nas writes


def read_text(path: str | Path, what: str = "file", max_bytes: int = MAX_BYTES) -> str:
    """The UTF-8 text of ``path``; missing, oversized or non-UTF-8 files are a HandNasError naming it."""
    path = Path(path)
    if not path.is_file():
        raise HandNasError(f"{path}: missing ({what} not found)")
    size = path.stat().st_size
    if size > max_bytes:
        raise HandNasError(f"{path}: {size} bytes, more than the {max_bytes} a {what} may have")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HandNasError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") \
            from None
    except OSError as exc:
        raise HandNasError(f"{path}: unreadable ({exc.strerror or exc})") from None


def read_json(path: str | Path, what: str = "file", max_bytes: int = MAX_BYTES):
    """Parsed JSON; a missing, oversized, non-UTF-8 or malformed file is a HandNasError naming it."""
    path = Path(path)
    text = read_text(path, what, max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HandNasError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise HandNasError(f"{path}: not valid JSON (nested too deeply)") from None


def _no_alias_loader():
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        """SafeLoader that refuses aliases: hand-nas files never need them, alias bombs do."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in hand-nas files",
                                                  event.start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def read_yaml(path: str | Path, what: str = "file", max_bytes: int = MAX_BYTES):
    """Parsed YAML (JSON is YAML too); a missing, oversized, non-UTF-8, aliased or malformed file is a HandNasError."""
    import yaml

    path = Path(path)
    if path.suffix == ".json":
        return read_json(path, what, max_bytes)
    text = read_text(path, what, max_bytes)
    try:
        return yaml.load(text, Loader=_no_alias_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        lines = [x.strip().rstrip(":").replace('in "<unicode string>", ', "at ") for x in str(exc).splitlines()[:2]]
        raise HandNasError(f"{path}: not valid YAML ({' '.join(lines)})") from None
    except RecursionError:
        raise HandNasError(f"{path}: not valid YAML (nested too deeply)") from None


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
