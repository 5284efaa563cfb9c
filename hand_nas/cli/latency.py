"""``hand-nas latency``: fit and check this CPU's latency predictor of the deployment graph."""
from __future__ import annotations

from hand_nas.cli._base import Command, Group
from hand_nas.errors import HandNasError


class _Predictor(Command):
    """The options and the start both subcommands share; ``n`` and ``seed``: their defaults."""

    n: int
    seed: int

    def add_arguments(self, p) -> None:
        from hand_nas.cost.predictor import RUNTIMES

        p.add_argument("--space", required=True, help="a search space YAML or a shipped space's name")
        p.add_argument("--n", type=int, default=self.n, help="architectures (the base preset and evenly spread samples)")
        p.add_argument("--seed", type=int, default=self.seed, help="sample seed (validate: not calibrate's)")
        p.add_argument("--predictor", help="calibration file (default $HAND_NAS_HOME/latency/<CPU>[.<RUNTIME>].json)")
        p.add_argument("--runtime", choices=list(RUNTIMES), help="what to time (default: the space's latency_runtime)")
        p.add_argument("--programs", help="ExecuTorch program cache (default $HAND_NAS_HOME/latency/programs)")

    def start(self, args):
        """The checked space and the predictor's path, after a line naming this CPU."""
        from pathlib import Path

        from hand_nas.cost.bench import cpu_info
        from hand_nas.cost.predictor import RUNTIMES, check_runtime, default_path
        from hand_nas.models.validate import check
        from hand_nas.search.space import load_space

        check("command line", numbers={"--n": (args.n, 3, 1000)})
        space = load_space(args.space)
        info = cpu_info()
        runtime = args.runtime or space.latency_runtime
        check_runtime(runtime)
        print(f"CPU {info['model']}, flags {', '.join(info['flags']) or 'none of ' + 'avx2/avx512/vnni'}; "
              f"{RUNTIMES[runtime]}, 1 thread, batch 1, 256x256")
        return space, Path(args.predictor) if args.predictor else default_path(runtime), runtime


class Calibrate(_Predictor):
    name, help = "calibrate", "measure sampled architectures of a space and fit this CPU's predictor"
    n, seed = 40, 1

    def add_arguments(self, p) -> None:
        super().add_arguments(p)
        p.add_argument("--lower-only", action="store_true",
                       help="ExecuTorch: lower the calibration and validation programs into the cache, time nothing "
                            "(safe beside other jobs); then calibrate and validate on a quiet machine")

    def run(self, args) -> None:
        from hand_nas.cost.predictor import calibrate, lower_programs, sample_configs

        space, path, runtime = self.start(args)
        if args.lower_only:
            if runtime == "onnxruntime":
                raise HandNasError("--lower-only: onnxruntime has nothing to lower (its export takes a second)")
            cfgs = sample_configs(space, args.n, args.seed) + sample_configs(space, Validate.n, Validate.seed)
            lower_programs(cfgs, runtime, args.programs)
            print(f"{len(cfgs)} programs in the cache ({args.n} to calibrate, {Validate.n} to validate)")
            return
        pred, rows = calibrate(space, args.n, args.seed, runtime=runtime, folder=args.programs)
        pred.save(path, rows)
        print(f"fitted on {pred.n} architectures: {pred.fit_share_within_10:.0%} within +-10% of measured; wrote {path}")


class Validate(_Predictor):
    # '%%': argparse %-formats help strings
    name, help = "validate", "measure fresh architectures: share predicted within +-10%%, worst error"
    n, seed = 50, 7

    def add_arguments(self, p) -> None:
        super().add_arguments(p)
        p.add_argument("--json", help="also write the rows and figures here")

    def run(self, args) -> None:
        import json
        from pathlib import Path

        from hand_nas.cost.predictor import LatencyPredictor, speed_drift, validate

        space, path, _ = self.start(args)
        pred = LatencyPredictor.load(path)
        res = validate(pred, space, args.n, args.seed, folder=args.programs)
        for r in res["rows"]:
            print(f"  {r['config']:<22} {r['gmacs']:.4f} GMACs  measured {r['measured_ms']:7.2f} ms  predicted "
                  f"{r['predicted_ms']:7.2f} ms  ({(r['predicted_ms'] / r['measured_ms'] - 1) * 100:+.1f}%)")
        print(f"{res['n']} architectures of {space.source}: {res['share_within_10']:.0%} predicted within +-10%, "
              f"median error {res['median_rel_error']:.1%}, worst {res['worst_rel_error']:.1%}; Kendall tau of GMACs "
              f"vs measured latency {res['gmacs_vs_latency_tau']:.2f}")
        res["speed_drift"] = drift = speed_drift(json.loads(path.read_text()).get("rows", []), res["rows"])
        if drift is not None and abs(drift - 1) > 0.05:
            print(f"warning: the architectures timed at calibration too take {drift:.2f}x their calibration time now: "
                  f"this machine's speed has moved since {path} was fitted; calibrate again and validate right after")
        if args.json:
            from hand_nas.atomic import atomic_file

            with atomic_file(Path(args.json), "w") as fh:
                json.dump(res, fh, indent=1)
            print(f"wrote {args.json}")


GROUP = Group("latency", "latency known before training: a per-CPU predictor of the deployment graph",
              "latency_command", (Calibrate, Validate))
