"""Reports: ``hand-nas report`` (a study's HTML page), ``dashboard`` (optuna-dashboard), ``reproduce`` (a paper table)."""
from __future__ import annotations

import sys

from hand_nas.cli._base import Command
from hand_nas.cli._common import add_mano, add_storage
from hand_nas.errors import HandNasError


class Report(Command):
    name, help = "report", "a study's self-contained HTML report and PNG figures"

    def add_arguments(self, p) -> None:
        p.add_argument("--study", required=True)
        add_storage(p)
        p.add_argument("--out", required=True, help="report folder (index.html, *.png, pareto.md, trials.json)")
        p.add_argument("--references", default="lwa_hand,lagc_hand",
                       help="presets trained under the study's proxy as reference points ('' for none); kept in the "
                            "study")
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.report.page import write_report
        from hand_nas.app.references import add_references
        from hand_nas.report.study_data import load_study_data

        sd = load_study_data(args.study, args.storage)
        if not sd.records:
            raise HandNasError(f"study {args.study!r}: no trials yet")
        if args.references:
            add_references(sd, [n for n in args.references.split(",") if n], mano_dir=args.mano)
        from hand_nas.report.page import front_markdown

        print(front_markdown(sd))
        for p in write_report(sd, args.out):
            print(f"wrote {p}")


class Dashboard(Command):
    name, help = "dashboard", "optuna-dashboard on a stored study (optuna- or nni-backed)"

    def add_arguments(self, p) -> None:
        p.add_argument("--study", required=True)
        add_storage(p)
        p.add_argument("--host", default="127.0.0.1", help="listen address (default: this machine only; any other "
                                                           "needs --allow-remote)")
        p.add_argument("--port", type=int, default=8080)
        p.add_argument("--allow-remote", action="store_true",
                       help="serve on a non-loopback --host: the dashboard API is unauthenticated, anyone who reaches "
                            "the port can read and change every study of the storage")

    def run(self, args) -> None:
        from hand_nas.report.dashboard import serve

        serve(args.study, args.storage, args.host, args.port, allow_remote=args.allow_remote,
              warn=lambda text: print(f"hand-nas: {text}", file=sys.stderr, flush=True))


class Reproduce(Command):
    name, help = "reproduce", "reproduce a paper table (Markdown + CSV)"

    def add_arguments(self, p) -> None:
        from hand_nas.app.reproduce import TABLES

        p.add_argument("table", choices=TABLES)
        p.add_argument("--proxy", default="quick", help="named proxy budget for tables that train: quick, standard, full")
        p.add_argument("--data", default="synthetic", help="'synthetic' (the proxy's cached set) or a sample folder")
        p.add_argument("--study", help="add the best feasible trial of this study")
        add_storage(p)
        p.add_argument("--out", help="folder for TABLE.md and TABLE.csv")
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.app.reproduce import reproduce_table
        from hand_nas.report.tables import to_markdown, write_table

        rows, notes = reproduce_table(args.table, args.proxy, args.data, args.study, args.storage, args.mano)
        print(to_markdown(rows, notes))
        if args.out:
            md, csv = write_table(args.out, args.table, rows, notes)
            print(f"wrote {md} and {csv}")
