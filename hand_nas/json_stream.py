"""Streaming JSON with ijson: a big file's values one at a time, errors as one line naming the file.

InterHand2.6M's annotation files are single JSON documents of hundreds of MB (train), so
``json.loads`` would hold the whole text plus every parsed object at once. ijson (C backend
yajl2_c) reads the file in blocks and builds one value at a time; numbers come back as Python
``int``/``float`` (``use_float=True``), equal to ``json.loads``'s. The whole file is checked:
text after the document, a truncation or a syntax error anywhere is an error once the stream
gets there, ``<path>: not valid JSON (<what ijson says>)`` (or ``not UTF-8 text``), one line.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ijson

from hand_nas.errors import HandNasError

# Bytes read at a time. yajl2_c parses a whole block before handing out its events, so memory holds
# one block's events (measured with tracemalloc: about 1 MB at 64 KiB) plus one value.
BUF_SIZE = 64 * 1024


def _message(exc: ijson.JSONError) -> str:
    """yajl's first line ('parse error: premature EOF'), without the kind or the excerpt under it."""
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    line = (str(text).strip().splitlines() or ["?"])[0].strip()
    for kind in ("parse error: ", "lexical error: "):
        line = line.removeprefix(kind)
    return line


@contextmanager
def _stream(path: Path):
    """The file opened in binary; ijson's and the OS's errors become one-line HandNasErrors."""
    if not path.is_file():
        raise HandNasError(f"{path}: missing")
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise HandNasError(f"{path}: unreadable ({exc.strerror or exc})") from None
    try:
        with fh:
            yield fh
    except ijson.JSONError as exc:
        what = _message(exc)
        kind = "not UTF-8 text" if "UTF8" in what else "not valid JSON"
        raise HandNasError(f"{path}: {kind} ({what})") from None
    except OSError as exc:
        raise HandNasError(f"{path}: unreadable ({exc.strerror or exc})") from None


def items(path: str | Path, prefix: str) -> Iterator[Any]:
    """The values at ijson ``prefix`` (e.g. ``"images.item"``: each element of the top-level ``images``), in file order."""
    path = Path(path)
    with _stream(path) as fh:
        yield from ijson.items(fh, prefix, use_float=True, buf_size=BUF_SIZE)


def top_level(path: str | Path) -> dict[str, str]:
    """{key: the event that starts its value ('start_array', 'number', ...)} of a top-level object; {} otherwise.

    Streams the whole file through Python: for error messages, not the common path.
    """
    path = Path(path)
    found: dict[str, str] = {}
    key = None
    with _stream(path) as fh:
        for prefix, event, value in ijson.parse(fh, use_float=True, buf_size=BUF_SIZE):
            if prefix == "" and event == "map_key":
                key = value
            elif key is not None and prefix == key and key not in found:
                found[key] = event
    return found


def nested_items(path: str | Path, shape: str = "{key: {key: value}}") -> Iterator[tuple[str, str, Any]]:
    """``(outer key, inner key, value)`` for an object of objects ``{a: {b: value}}``, in file order.

    A top level or an outer value that is not an object is a HandNasError saying where and that
    ``shape`` was expected. The events of each outer value are handed, under one fixed prefix, to
    ijson's ``kvitems``, which builds the values.
    """
    path = Path(path)
    outer = [None]

    def expected(where: str):
        return HandNasError(f"{path}: expected {shape}, found something else at {where}")

    def events(parsed):
        for prefix, event, value in parsed:
            if prefix == "":
                if event == "map_key":
                    outer[0] = value
                elif event not in ("start_map", "end_map"):
                    raise expected("the top level")
                continue
            key = outer[0]
            if prefix == key and event not in ("start_map", "map_key", "end_map"):
                raise expected(key)
            yield "x" + prefix[len(key):], event, value  # prefix is key or key.<rest>

    with _stream(path) as fh:
        for inner, value in ijson.kvitems(events(ijson.parse(fh, use_float=True, buf_size=BUF_SIZE)), "x"):
            yield outer[0], inner, value
