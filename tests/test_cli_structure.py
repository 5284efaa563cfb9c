"""The command line's shape: small command modules, and every (sub)command's --help works."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parent.parent / "hand_nas" / "cli"
MAX_LINES = 250


def _commands(parser: argparse.ArgumentParser, path: tuple = ()):
    """(path, parser) of every command and group under ``parser``, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,), sub
                yield from _commands(sub, path + (name,))


def test_no_cli_module_is_over_the_line_limit():
    sizes = {p.name: len(p.read_text().splitlines()) for p in CLI.glob("*.py")}
    assert "__init__.py" in sizes
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_every_command_and_group_prints_its_help(capsys):
    from hand_nas.cli import build_parser

    parser = build_parser()
    paths = [path for path, _ in _commands(parser)]
    assert {("hand", "info"), ("search",), ("compress",), ("supernet", "train"), ("latency", "validate")} <= set(paths)
    for path in [()] + paths:
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([*path, "--help"])
        assert exit_.value.code == 0, path
        assert capsys.readouterr().out.startswith(f"usage: hand-nas {' '.join(path)}".rstrip()), path


def test_every_leaf_command_has_an_action():
    from hand_nas.cli import build_parser

    for path, sub in _commands(build_parser()):
        if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
            assert callable(sub.get_default("func")), path
