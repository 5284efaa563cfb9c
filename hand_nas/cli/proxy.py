"""``hand-nas proxy check``: does the search's cheap training (or the supernet) rank like a long training?"""
from __future__ import annotations

import json
from pathlib import Path

from hand_nas.cli._base import Command, Group
from hand_nas.cli._common import add_mano, add_storage, key_value
from hand_nas.errors import HandNasError


class Check(Command):
    name = "check"
    help = ("Kendall tau / Spearman rho of the space's proxy vs a longer training, seed noise vs the spread between "
            "architectures (resumable: runs are cached)")

    def add_arguments(self, p) -> None:
        p.add_argument("--space", required=True, help="a search space YAML or a shipped space's name")
        p.add_argument("--n", type=int, default=8, help="sampled architectures (the base preset is added)")
        p.add_argument("--factor", type=int, default=10, help="the long training is FACTOR x the proxy's steps")
        p.add_argument("--seeds", type=int, default=2, help="proxy trainings per architecture")
        p.add_argument("--sample-seed", type=int, default=0)
        p.add_argument("--proxy-set", action="append", default=[], metavar="FIELD=VALUE",
                       help="a proxy variant: change this training field of the short runs only (repeatable, e.g. "
                            "--proxy-set resolution=64 --proxy-set steps=1000); the long runs stay FACTOR x the "
                            "space's proxy, so variants are ranked against the same reference")
        p.add_argument("--max-minutes", type=float, help="stop starting new runs after this many minutes (continue later)")
        p.add_argument("--workers", type=int, default=1, help="runs trained at once (processes, one thread each)")
        p.add_argument("--cache", help="folder of the per-run results (default $HAND_NAS_HOME/proxy_runs; keep it to "
                                       "continue elsewhere with the same data path)")
        p.add_argument("--data", default="synthetic")
        p.add_argument("--out", help="result JSON (default runs/proxy_check/SPACE.json)")
        p.add_argument("--study", help="also store the figures in this study, for its report")
        add_storage(p)
        p.add_argument("--evaluator", default="train", choices=["train", "supernet"],
                       help="supernet: rank --reference's stand-alone runs by the supernet's inherited weights instead")
        p.add_argument("--supernet", help="with --evaluator supernet: the supernet folder")
        p.add_argument("--scores", help="with --evaluator supernet, instead of --supernet: the supernet scores of an "
                                        "earlier result of this command (its JSON), ranked against --reference as "
                                        "it stands now; nothing is scored again")
        p.add_argument("--reference", nargs="+", default=[],
                       help="with --evaluator supernet: proxy-check JSONs and retrain-record JSONs of stand-alone runs")
        p.add_argument("--images", type=int, default=0, help="with --evaluator supernet: held-out images (0: all)")
        p.add_argument("--quiet", action="store_true")
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.atomic import atomic_file
        from hand_nas.app.proxy_check import run_check
        from hand_nas.report.proxy_check import ProxyCheckCfg, format_check, short_training
        from hand_nas.search.runner import data_dir
        from hand_nas.search.space import load_space

        if args.evaluator == "supernet":
            return check_supernet(args)
        space = load_space(args.space)
        proxy_set = tuple(key_value(kv, "--proxy-set") for kv in args.proxy_set)
        short_training(space.proxy, proxy_set)  # refused before any data is generated
        data = str(data_dir(args.data, space.synthetic_n, progress=not args.quiet))
        cfg = ProxyCheckCfg(n=args.n, factor=args.factor, seeds=args.seeds, sample_seed=args.sample_seed,
                            proxy_set=proxy_set)
        # resolved: the worker processes get the path as it is now, whatever their working directory
        result = run_check(space, cfg, data, max_minutes=args.max_minutes, mano_dir=args.mano,
                           progress=not args.quiet, workers=args.workers,
                           cache=Path(args.cache).resolve() if args.cache else None)
        print(format_check(result))
        out = Path(args.out or f"runs/proxy_check/{space.name}.json")
        with atomic_file(out, "w") as fh:
            json.dump(result, fh, indent=1)
        print(f"wrote {out}")
        if args.study:
            from hand_nas.search.storage import ProxyCheck, write_proxy_check

            write_proxy_check(args.study, args.storage, ProxyCheck.from_result(result))
            print(f"stored in study {args.study!r} ({args.storage}) for its report")


def check_supernet(args) -> None:
    """``--evaluator supernet``: the supernet's ranking of the stand-alone runs in ``--reference``."""
    from hand_nas.atomic import atomic_file
    from hand_nas.config import TrainCfg
    from hand_nas.files import read_json
    from hand_nas.report.supernet_check import format_supernet_check, reference_runs, rerank, supernet_check
    from hand_nas.supernet import SubnetScorer, load_supernet

    if not (args.supernet or args.scores) or not args.reference:
        raise HandNasError("--evaluator supernet needs --supernet FOLDER (or --scores FILE) and --reference FILE [FILE ...]")
    if args.supernet and args.scores:
        raise HandNasError("--supernet and --scores: give one (--scores ranks an earlier result's scores again)")
    refs = reference_runs(args.reference)
    if args.scores:
        stored = read_json(args.scores, "supernet proxy check")
        result = rerank(stored, refs, args.scores)
        result.update({k: stored.get(k) for k in ("supernet", "sha256", "data", "images")}, scores=str(args.scores),
                      reference=[str(p) for p in args.reference])
        space_name = f"{Path(args.scores).stem}_rerank"
    else:
        net, record = load_supernet(args.supernet, args.mano)
        scorer = SubnetScorer.on(record["data"], TrainCfg.from_dict(record["train"]), record.get("calib_batches", 8),
                                 args.images or None)
        result = supernet_check(net, scorer, refs, log=None if args.quiet else print)
        result.update(supernet=record["folder"], sha256=record["sha256"], reference=[str(p) for p in args.reference],
                      data=record["data"], images=args.images or None)
        space_name = f"{net.space.name}_supernet"
    trained = None
    for ref in args.reference:  # a proxy check among the references: its trained proxy's tau, for comparison
        with open(ref) as fh:
            data = json.load(fh)
        trained = (data.get("summary") or {}).get("kendall_tau", trained) if isinstance(data, dict) else trained
    print(format_supernet_check(result, trained))
    out = Path(args.out or f"runs/proxy_check/{space_name}.json")
    with atomic_file(out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {out}")


GROUP = Group("proxy", "proxy quality: does the search's cheap training rank like a long one?", "proxy_command",
              (Check,))
