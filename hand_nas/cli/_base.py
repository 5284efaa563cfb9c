"""The shape of a ``hand-nas`` subcommand: one class per command, its arguments and its action (optuna's CLI)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass


class Command:
    """One subcommand: ``name`` and ``help`` as ``hand-nas --help`` lists them, its options, its action.

    ``run`` parses nothing and computes nothing a notebook could not: it calls library functions and prints.
    """

    name: str = ""
    help: str = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's positional arguments and options on its own parser."""

    def run(self, args: argparse.Namespace) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Group:
    """A command of subcommands (``hand-nas hand info``); ``dest`` holds the chosen one's name in the args."""

    name: str
    help: str
    dest: str
    commands: tuple[type[Command], ...]


def add_commands(sub: argparse._SubParsersAction, commands: tuple) -> None:
    """Add ``Command`` classes and ``Group``s, in order, under ``sub``; each command's ``run`` becomes ``args.func``."""
    for c in commands:
        parser = sub.add_parser(c.name, help=c.help)
        if isinstance(c, Group):
            add_commands(parser.add_subparsers(dest=c.dest, required=True), c.commands)
            continue
        command = c()
        command.add_arguments(parser)
        parser.set_defaults(func=command.run)
