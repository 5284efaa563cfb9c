"""The one exception type the CLI turns into a one-line message and a non-zero exit."""
from __future__ import annotations

MAX_VALUE_CHARS = 200
MAX_MESSAGE_CHARS = 1000


def short(value, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for quoting user input in a message.

    Containers are formatted piece by piece and stop early, so a value built by a YAML alias bomb
    (billions of elements sharing a few objects) costs ``limit`` characters, not its full size.
    """
    out: list[str] = []
    size = 0

    def put(s: str) -> bool:
        nonlocal size
        out.append(s)
        size += len(s)
        return size <= limit

    def walk(v, depth: int) -> bool:
        if isinstance(v, (list, tuple, dict, set, frozenset)) and depth < 20:
            opening, closing = {list: "[]", tuple: "()", dict: "{}"}.get(type(v), "{}")
            if not put(opening):
                return False
            items = v.items() if isinstance(v, dict) else v
            for i, item in enumerate(items):
                if i and not put(", "):
                    return False
                if isinstance(v, dict):
                    if not (walk(item[0], depth + 1) and put(": ") and walk(item[1], depth + 1)):
                        return False
                elif not walk(item, depth + 1):
                    return False
            return put(closing)
        text = repr(v) if not isinstance(v, str) or len(v) <= limit else repr(v[:limit])
        return put(text)

    complete = walk(value, 0)
    text = "".join(out)
    if complete and len(text) <= limit:
        return text
    n = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return text[:limit] + "..." + n


def one_line(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` on one line and at most about ``limit`` characters (the start names the file/field)."""
    message = " ".join(str(message).split("\n"))
    if len(message) > limit:
        message = message[:limit] + f"... ({len(message) - limit} more characters)"
    return message


class HandNasError(Exception):
    """A user-facing error: bad input, a missing file, a malformed field.

    The message must name the offending file or field and say what was expected; the CLI prints it
    on one line as ``hand-nas: error: <message>`` and exits with status 2. The message is bounded
    here (``one_line``), whatever a caller formatted into it; quote user values with ``short``.
    """

    def __init__(self, message: str = "", *args) -> None:
        super().__init__(one_line(message), *args)


def is_disk_full(exc: BaseException) -> bool:
    """True for a write that failed because the disk (or quota) is full, whoever raised it.

    ``OSError`` carries errno ENOSPC / EDQUOT; SQLite says 'database or disk is full' (wrapped by
    SQLAlchemy and optuna); safetensors and other native writers put the OS text in their message.
    """
    import errno

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(exc)
        if "database or disk is full" in text or "No space left on device" in text or "StorageFull" in text:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        seen += 1
    return False
