"""Streaming JSON: the values a fixed depth into a file's objects and arrays, one at a time.

InterHand2.6M's annotation files are single JSON documents of hundreds of MB (train), so
``json.loads`` would hold the whole text plus every parsed object at once. ``iter_values`` walks
the outer containers itself and hands each value at ``depth`` to ``json``'s C decoder, reading the
file in blocks: memory holds one block plus one value, whatever the file's size.
ijson would do this walk for us, but it is not among the installed packages; this covers just
what the annotation reader needs (containers of containers, UTF-8).

Errors are one line naming the file, like ``hand_nas.files.read_json``'s:
``<path>: not valid JSON (<what> at line L column C)``.
"""
from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hand_nas.errors import HandNasError

BLOCK_CHARS = 1 << 20  # characters read at a time
MAX_VALUE_CHARS = 64 << 20  # one value at ``depth`` may not be longer than this
_SPACE = re.compile(r"[ \t\n\r]*")


class _Reader:
    """A window on the file's text: ``buf[pos:]`` is what is not consumed yet."""

    def __init__(self, fh, path: Path) -> None:
        self.fh, self.path = fh, path
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.bytes_read = 0
        self.buf, self.pos, self.eof = "", 0, False
        self.line, self.col = 1, 1  # where buf[0] sits in the file
        self.decoder = json.JSONDecoder()

    def more(self) -> bool:
        """Drop the consumed text, append a block; False at the end of the file."""
        if self.eof:
            return False
        done = self.buf[:self.pos]
        newlines = done.count("\n")
        self.line += newlines
        self.col = len(done) - done.rfind("\n") if newlines else self.col + len(done)
        self.buf, self.pos = self.buf[self.pos:], 0
        raw = self.fh.read(BLOCK_CHARS)
        try:
            text = self.utf8.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise HandNasError(f"{self.path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                               f"{self.bytes_read + exc.start})") from None
        self.bytes_read += len(raw)
        self.buf += text
        self.eof = not raw
        return bool(raw) or bool(text)

    def peek(self) -> str:
        """The next non-space character, not consumed ('' at the end of the file)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def fail(self, what: str, at: int | None = None):
        at = self.pos if at is None else at
        newlines = self.buf.count("\n", 0, at)
        line = self.line + newlines
        col = at - self.buf.rfind("\n", 0, at) if newlines else self.col + at
        raise HandNasError(f"{self.path}: not valid JSON ({what} at line {line} column {col})")

    def value(self) -> Any:
        """Decode the value that starts at the next non-space character."""
        if self.peek() == "":
            self.fail("Expecting value")
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof or len(self.buf) - self.pos > MAX_VALUE_CHARS:
                    self.fail(exc.msg, exc.pos)
                self.more()  # the value may run past the block
                continue
            except RecursionError:
                raise HandNasError(f"{self.path}: not valid JSON (nested too deeply)") from None
            # A number (or literal) that ends the block may go on in the next one.
            if end == len(self.buf) and not self.eof:
                self.more()
                continue
            self.pos = end
            return value


def _walk(r: _Reader, keys: tuple, depth: int) -> Iterator[tuple[tuple, Any]]:
    c = r.peek()
    if len(keys) == depth or c not in "{[":
        yield keys, r.value()
        return
    close = "}" if c == "{" else "]"
    r.pos += 1
    if r.peek() == close:
        r.pos += 1
        return
    index = 0
    while True:
        if close == "}":
            if r.peek() != '"':
                r.fail("Expecting property name enclosed in double quotes")
            key = r.value()
            if r.peek() != ":":
                r.fail("Expecting ':' delimiter")
            r.pos += 1
        else:
            key, index = index, index + 1
        yield from _walk(r, keys + (key,), depth)
        c = r.peek()
        r.pos += 1
        if c == close:
            return
        if c != ",":
            r.pos -= 1
            r.fail("Expecting ',' delimiter")


def iter_values(path: str | Path, depth: int) -> Iterator[tuple[tuple, Any]]:
    """Yield ``(keys, value)`` for every value ``depth`` containers deep, in file order.

    ``keys`` holds the object keys (str) and array positions (int) on the way down; a scalar or
    an empty container met above ``depth`` is yielded with fewer keys (scalars) or not at all
    (empty containers), so callers check ``len(keys)``. The whole file is checked: text after
    the document, a truncation or a syntax error anywhere raises a HandNasError naming the file,
    once the walk gets there.
    """
    path = Path(path)
    if not path.is_file():
        raise HandNasError(f"{path}: missing")
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise HandNasError(f"{path}: unreadable ({exc.strerror or exc})") from None
    with fh:
        r = _Reader(fh, path)
        yield from _walk(r, (), depth)
        if r.peek() != "":
            r.fail("Extra data")
