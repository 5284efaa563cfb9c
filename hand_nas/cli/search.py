"""``hand-nas search``: a budget-constrained architecture search; its options are ``StudyCfg``'s fields."""
from __future__ import annotations

import dataclasses
import math

from hand_nas.cli._base import Command
from hand_nas.cli._common import DEVICE_HELP, FLOPS_NOTE, PRECISION_HELP, STORAGE_HELP, config_option
from hand_nas.errors import HandNasError

WORKER_GIB = 0.5  # what one trial process takes (torch, the hand model, a proxy batch): measured ~0.3 GiB


def study_options() -> dict[str, dict]:
    """argparse settings of StudyCfg fields beyond their type and default: help, choices, another spelling."""
    from hand_nas.search.pruning import PRUNERS
    from hand_nas.search.strategy import SAMPLERS

    return {
        "space": {"required": True,
                  "help": "a search space YAML, or a shipped space's name (search_spaces/: tiny, lwa, lwa_mobile, "
                          "...)"},
        "study": {"default": None, "help": "study name (default: the space's name); the same name resumes"},
        "storage": {"help": STORAGE_HELP},
        "backend": {"choices": sorted(SAMPLERS)},
        "sampler": {"help": "; ".join(f"{b}: {', '.join(s)} (default {s[0]})" for b, s in SAMPLERS.items())},
        "pruner": {"choices": list(PRUNERS),
                   "help": "noise (default): multi-fidelity, a trial stops only when behind by more than "
                           "--noise-factor x the proxy's measured seed noise; median: optuna's median rule; none"},
        "noise": {"help": "the proxy's seed noise: a `hand-nas proxy check` JSON or a figure in mm "
                          "(default OUT/proxy_check/SPACE.json when it exists)"},
        "noise_factor": {"help": "the margin in units of the noise"},
        "trials": {"help": "finished trials the study should hold"},
        "executor": {"option": "--local", "action": "store_const", "const": "local",
                     "help": "run trials in this process instead of on Ray"},
        "ray_address": {"help": "join a running Ray cluster"},
        "budget_gmacs": {"option": "--budget", "metavar": "BUDGET",
                         "help": "max GMACs at 256x256, finite and > 0 (default: the space's)"},
        "out": {"help": "checkpoints go to OUT/STUDY/trial_NNNN (stored as absolute paths)"},
        "storage_path": {"help": "what trials read and write, for clusters: a folder every node mounts at the same "
                                 "path, or a pyarrow URI (s3://bucket/prefix); the data set is put under it once, "
                                 "checkpoints go to STORAGE_PATH/STUDY/trial_NNNN"},
        "latency": {"help": "also time every trained trial (torch, 1 thread; spaces with a latency objective or "
                            "budget use the predictor instead)"},
        "heartbeat_s": {"help": "seconds between heartbeats; a trial silent for 3 intervals is taken as killed"},
        "latency_predictor": {"help": "`hand-nas latency calibrate` file (default: this CPU's)"},
        "device": {"help": DEVICE_HELP},
        "precision": {"help": PRECISION_HELP},
        "evaluator": {"choices": ["train", "supernet"],
                      "help": "how trials are scored: train (the space's proxy training) or supernet (weights "
                              "inherited from --supernet, BatchNorm recalibrated: seconds a trial)"},
        "supernet": {"help": "with --evaluator supernet: a `hand-nas supernet train`/`export` folder"},
        "eval_images": {"help": "with --evaluator supernet: held-out images scored per trial (0: the whole split)"},
    }


def check_local_workers(workers: int, cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Refuse more trials at once than this machine holds: its CPUs (at --cpus-per-trial each), its
    available memory (at ~WORKER_GIB per trial process) and, with --gpus-per-trial, its GPUs."""
    import psutil

    from hand_nas.threads import usable_cpus

    cpus = usable_cpus()
    free_gib = psutil.virtual_memory().available / 2**30
    limits = {f"{cpus} CPU(s) at --cpus-per-trial {cpus_per_trial:g}": int(cpus / cpus_per_trial + 1e-9),
              f"{free_gib:.1f} GiB available at ~{WORKER_GIB} GiB per trial": int(free_gib / WORKER_GIB)}
    if gpus_per_trial > 0:
        import torch

        gpus = torch.cuda.device_count()
        limits[f"{gpus} GPU(s) at --gpus-per-trial {gpus_per_trial:g}"] = int(gpus / gpus_per_trial + 1e-9)
    why, most = min(limits.items(), key=lambda kv: kv[1])
    if most < 1:
        raise HandNasError(f"--gpus-per-trial {gpus_per_trial:g}: this machine has {why.split(' at ')[0]}; a local "
                           "Ray could never start a trial (join a cluster with GPUs with --ray-address)"
                           if "GPU" in why else f"this machine cannot hold one trial ({why})")
    if workers > most:
        raise HandNasError(f"--workers {workers}: this machine holds at most {most} trial(s) at once ({why}); "
                           f"pass --workers {most} or fewer (or --ray-address for a cluster)")


class Search(Command):
    name, help = "search", "budget-constrained architecture search (optuna or nni, on Ray)"

    def add_arguments(self, p) -> None:
        from hand_nas.config import StudyCfg

        options = study_options()
        for f in dataclasses.fields(StudyCfg):
            config_option(p, StudyCfg, f.name, **options.get(f.name, {}))
        p.add_argument("--quiet", action="store_true")

    def run(self, args) -> None:
        from hand_nas.config import StudyCfg
        from hand_nas.device import check_options
        from hand_nas.models.validate import check
        from hand_nas.report.study_data import best_trials
        from hand_nas.search.records import best_trained, first_of_each_architecture, format_table, pareto_front
        from hand_nas.search.runner import run_search
        from hand_nas.search.space import load_space, with_budget
        from hand_nas.search.storage import check_heartbeat

        check("command line", numbers={"--noise-factor": (args.noise_factor, 0.0, 100.0),
                                       "--trials": (args.trials, 1, 1_000_000), "--workers": (args.workers, 1, 100_000),
                                       "--eval-images": (args.eval_images, 0, 10 ** 7),
                                       "--cpus-per-trial": (args.cpus_per_trial, 0.0, 1024.0)})
        if not (math.isfinite(args.gpus_per_trial) and 0 <= args.gpus_per_trial <= 64):
            raise HandNasError(f"command line: --gpus-per-trial: {args.gpus_per_trial!r}, expected a finite number in "
                               "[0, 64]")
        check_heartbeat(args.heartbeat_s)
        if args.executor != "local" and not args.ray_address:
            check_local_workers(args.workers, args.cpus_per_trial, args.gpus_per_trial)
        check_options(args.device, args.precision, remote_gpus=args.gpus_per_trial > 0)
        space = with_budget(load_space(args.space), args.budget_gmacs)
        cfg = StudyCfg(**{f.name: getattr(args, f.name) for f in dataclasses.fields(StudyCfg)}
                       | {"study": args.study or space.name})
        r = run_search(cfg, progress=not args.quiet, space=space)
        print(f"study {r.study} ({r.storage}): {r.finished} finished trials, {r.ran} run now in {r.seconds:.0f} s"
              + (f", {r.recovered} interrupted trial(s) marked failed" if r.recovered else ""))
        print(f"budget {space.budget_gmacs} GMACs at 256x256 ({FLOPS_NOTE}); MPJPE/MPVPE held-out, mm, IntagHand "
              "protocol")
        if space.multi_objective:
            print(f"Pareto front over ({', '.join(space.objectives)}), feasible trials:")
            print(format_table(first_of_each_architecture(pareto_front(r.records, space.objectives))))
        else:
            print("best trials:")
            print(format_table(best_trials(r.records)))
        best = best_trained(r.records)
        if best:
            print(f"best feasible: trial {best.number}, MPJPE {best.mpjpe_mm:.2f} mm at {best.gmacs:.4f} GMACs; "
                  f"checkpoint {best.checkpoint}")
        else:
            print("no feasible completed trial yet")
