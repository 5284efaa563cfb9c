"""ExportedProgram (.pt2) -> LiteRT flatbuffer (.tflite), run by the LiteRT converter's own Python.

litert-torch pins pydantic, typing-extensions and anyio below what hand-nas' environment holds, so it lives
in a venv of its own (``compress.litert.setup_converter``) and this file is all that runs there: it imports
torch and litert_torch only, never hand_nas. ``compress.litert.export_tflite`` saves the program with
``torch.export.save`` (same torch version on both sides) and calls

    <converter python> compress/litert_convert.py PROGRAM.pt2 OUT.tflite SIZE
"""
from __future__ import annotations

import sys


def main(src: str, dst: str, size: int) -> None:
    import torch

    import litert_torch

    program = torch.export.load(src)
    # the converter re-exports what it is given: the program's module (not put in eval mode: that raises)
    edge = litert_torch.convert(program.module(), (torch.rand(1, 3, size, size),))
    edge.export(dst)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: litert_convert.py PROGRAM.pt2 OUT.tflite SIZE")
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
