"""The one exception type the CLI turns into a one-line message and a non-zero exit."""
from __future__ import annotations


class HandNasError(Exception):
    """A user-facing error: bad input, a missing file, a malformed field.

    The message must name the offending file or field and say what was expected; the CLI prints it
    on one line as ``hand-nas: error: <message>`` and exits with status 2.
    """
