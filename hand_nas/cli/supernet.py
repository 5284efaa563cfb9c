"""``hand-nas supernet``: train a weight-sharing supernet once, inspect it, export the shipped fp16 copy."""
from __future__ import annotations

from hand_nas.cli._base import Command, Group
from hand_nas.cli._common import add_device, add_mano, interrupted


def print_history(history: list, baseline: dict | None) -> None:
    print("step    largest MPJPE  smallest MPJPE  (held-out, mm, IntagHand protocol; BatchNorm recalibrated)")
    for h in history:
        print(f"{h['step']:>6}  {h['largest']['mpjpe_mm']:13.2f}  {h['smallest']['mpjpe_mm']:14.2f}")
    if baseline:
        print(f"mean-shape baseline: {baseline['mpjpe_mm']:.2f} mm")


class Train(Command):
    name = "train"
    help = "train a space's supernet (sandwich rule, in-place distillation; resumable; torchrun for DDP)"

    def add_arguments(self, p) -> None:
        from hand_nas.supernet.training import RECIPES

        p.add_argument("--space", required=True, help="search space file or shipped name (lwa, tiny, ...)")
        p.add_argument("--recipe", default="lwa", help="; ".join(f"{k}: {r.about}" for k, r in RECIPES.items()))
        p.add_argument("--out", required=True, help="supernet folder")
        p.add_argument("--data", default="synthetic", help="'synthetic' (the recipe's cached set) or a sample folder")
        p.add_argument("--steps", type=int, help="override the recipe's step count")
        p.add_argument("--seed", type=int, help="override the recipe's seed")
        p.add_argument("--init", help="a trained supernet folder of the same space to start from (warm start)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing supernet folder at the end")
        p.add_argument("--no-resume", dest="resume", action="store_false", help="discard a killed run's snapshots")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        add_device(p)
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.data.resumable import partial_dir
        from hand_nas.supernet.training import get_recipe, train_supernet

        rec = get_recipe(args.recipe)
        t = rec.train
        steps = args.steps or t.steps
        rule = f"the sandwich rule (largest, smallest, {rec.n_random} random)" if rec.sandwich else \
            "the largest subnet alone"
        print(f"supernet of space {args.space!r} under recipe {args.recipe!r}: {steps} steps of {rule}, "
              f"batch {t.batch}, {t.resolution}x{t.resolution}, "
              f"lr {t.lr:g}, losses {t.losses}, distillation x{rec.kd:g}, {args.precision} on {args.device}"
              + (f", from {args.init}" if args.init else ""), flush=True)
        print(f"snapshot every {rec.save_every} steps in {partial_dir(args.out)} (after a kill, the same command "
              "resumes)", flush=True)
        try:
            run = train_supernet(args.space, args.recipe, args.out, data=args.data, device=args.device,
                                 precision=args.precision, mano_dir=args.mano, overwrite=args.overwrite,
                                 resume=args.resume, progress=not args.quiet, steps=args.steps, seed=args.seed, init=args.init,
                                 log=lambda text: print(text, flush=True))
        except KeyboardInterrupt:
            raise interrupted(f"the last snapshot is kept in {partial_dir(args.out)}") from None
        if run.out is not None and run.history:
            print_history(run.history, run.baseline)
            print(f"{run.steps} steps in {run.seconds:.0f} s; compute {run.compute}")
            print(f"supernet: {args.out}")


class Show(Command):
    name, help = "show", "a supernet's recipe, compute and MPJPE over training"

    def add_arguments(self, p) -> None:
        p.add_argument("folder")

    def run(self, args) -> None:
        from hand_nas.supernet.supernet import load_supernet

        net, record = load_supernet(args.folder)
        n = sum(p.numel() for p in net.shared)
        print(f"supernet of space {record['space']!r}: {len(net.keys)} shared tensors, {n / 1e6:.2f} M values")
        for k in ("recipe", "steps", "seconds", "images_seen", "compute", "data", "precision", "init",
                  "images_seen_total", "compute_total"):
            if k in record:
                print(f"{k}: {record[k]}")
        if record.get("history"):
            print_history(record["history"], record.get("baseline"))


class Export(Command):
    name, help = "export", "the shipped form: fp16 safetensors and a manifest with sha256"

    def add_arguments(self, p) -> None:
        p.add_argument("folder")
        p.add_argument("--out", required=True)
        p.add_argument("--overwrite", action="store_true")

    def run(self, args) -> None:
        from hand_nas.supernet.shipping import export_supernet

        sha, size = export_supernet(args.folder, args.out, overwrite=args.overwrite)
        print(f"{args.out}: fp16 supernet, {size / 2 ** 20:.1f} MiB; manifest sha256 {sha}")


GROUP = Group("supernet", "weight-sharing supernet: train once, then score any subnet in seconds", "supernet_command",
              (Train, Show, Export))
