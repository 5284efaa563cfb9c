"""``hand-nas``: the command line. Each subcommand parses arguments and calls one library function.

One class per command (``_base.Command``: its name, help, arguments and action), grouped by topic in the
modules of this package; ``build_parser`` assembles them. Workflows live in the libraries
(``hand_nas.search.runner``, ``hand_nas.report``, ``hand_nas.app``); a command only parses, delegates and
prints. With ``hand_nas.app`` it is the application layer, the only part of ``hand_nas`` that imports
``compress``; the libraries never do.

Errors a user can fix (bad paths, malformed files) are ``HandNasError``s and print as one line,
``hand-nas: error: <what and where>``, with exit status 2.
"""
from __future__ import annotations

import argparse
import sys

from hand_nas.cli import cost, data, demo, deploy, hand, latency, mobile, proxy, report, search, supernet, train, trial
from hand_nas.cli import compress as compression
from hand_nas.errors import HandNasError

# in the order `hand-nas --help` lists them
COMMANDS = (hand.GROUP, data.GROUP, cost.Cost, train.Train, train.Retrain, search.Search, latency.GROUP,
            proxy.GROUP, trial.GROUP, compression.Compress, mobile.GROUP, deploy.Predict, deploy.Bench, deploy.Evaluate,
            report.Report, report.Dashboard, demo.Demo, report.Reproduce, supernet.GROUP)


def build_parser() -> argparse.ArgumentParser:
    from hand_nas.cli._base import add_commands

    parser = argparse.ArgumentParser(prog="hand-nas", description=__doc__.splitlines()[0])
    add_commands(parser.add_subparsers(dest="command", required=True), COMMANDS)
    return parser


def environment_error(exc: BaseException, args) -> str | None:
    """The one line for a failure of the machine rather than of hand-nas (None: a real bug, keep the traceback).

    A full disk (OSError ENOSPC, SQLite's 'database or disk is full'), a damaged database (optuna's
    StorageInternalError: a corrupt page, 'file is not a database') and any OS error that names its
    file (a path under a file, permissions, a read-only disk) are reported with the file or storage
    they concern. What was being written is not half-written: files and folders are renamed into place
    only when complete, and a study's transaction is rolled back.
    """
    from hand_nas.errors import is_disk_full, one_line

    root = exc
    for _ in range(8):  # the database's own words, under SQLAlchemy's and optuna's wrappers
        if (inner := getattr(root, "orig", None) or root.__cause__) is None:
            break
        root = inner
    why = one_line((str(root).strip().splitlines() or [type(root).__name__])[0], 300)
    database = (type(exc).__name__ == "StorageInternalError"
                or type(root).__module__.startswith(("sqlite3", "sqlalchemy")))
    storage, out = getattr(args, "storage", None), getattr(args, "out", None)
    if isinstance(exc, OSError) and exc.filename:
        where = str(exc.filename)
    elif database and storage:
        where = f"storage {storage}"
    else:
        where = f"{out} (or the files beside it)" if out else None
    if is_disk_full(exc):
        return (f"{where or 'the output'}: disk full ({why}); nothing half-written is left: free space and run the "
                "same command again")
    if database:
        return f"{where or 'storage'}: the database cannot be read or written ({why}); it may be damaged"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or why}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except HandNasError as exc:
        print(f"hand-nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hand-nas: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the machine's failures (disk, damaged database) as one line; bugs keep their traceback
        line = environment_error(exc, args)
        if line is None:
            raise
        print(f"hand-nas: error: {line}", file=sys.stderr)
        return 2
    return 0
