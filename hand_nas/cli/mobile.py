"""``hand-nas mobile``: the mobile runtimes' tools (``setup-litert``: LiteRT's converter in a venv of its own)."""
from __future__ import annotations

from hand_nas.cli._base import Command, Group


class SetupLitert(Command):
    name, help = "setup-litert", "make $HAND_NAS_HOME/litert-venv: torch + litert-torch, the LiteRT converter"

    def run(self, args) -> None:
        from compress.litert import setup_converter

        py = setup_converter()
        print(f"LiteRT converter ready: {py} (hand-nas compress now also writes model.tflite)")


GROUP = Group("mobile", "mobile runtimes' tools (ExecuTorch, LiteRT)", "mobile_command", (SetupLitert,))
