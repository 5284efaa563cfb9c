"""``hand-nas data``: render the synthetic set, prepare InterHand2.6M, draw a contact sheet."""
from __future__ import annotations

import argparse

from hand_nas.cli._base import Command, Group
from hand_nas.cli._common import add_mano, check_side, interrupted


class Synth(Command):
    name, help = "synth", "render the synthetic two-hand set"

    def add_arguments(self, p) -> None:
        p.add_argument("--n", type=int, required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--size", type=int, default=256)
        p.add_argument("--workers", type=int, default=1)
        p.add_argument("--overwrite", action="store_true")
        p.add_argument("--quiet", action="store_true")
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.atomic import check_output
        from hand_nas.data.synthetic import synthesize
        from hand_nas.models.validate import check

        check("command line", numbers={"--n": (args.n, 1, 10_000_000), "--workers": (args.workers, 1, 256)})
        check_side("--size", args.size)
        check_output(args.out, overwrite=args.overwrite)  # a foreign folder, a path under a file: before rendering
        r = synthesize(args.out, args.n, seed=args.seed, mano_dir=args.mano, size=args.size, workers=args.workers,
                       overwrite=args.overwrite, progress=not args.quiet)
        print(f"wrote {args.n} samples to {args.out} in {r['seconds']:.1f} s: {r['images_per_s']:.1f} images/s "
              f"with {r['workers']} worker(s), {r['images_per_s_per_worker']:.1f} images/s per core")


class Prepare(Command):
    name, help = "prepare", "preprocess an InterHand2.6M split into a sample cache"

    def add_arguments(self, p) -> None:
        p.add_argument("--root", required=True, help="InterHand2.6M root (holds images/ and annotations/)")
        p.add_argument("--out", required=True)
        p.add_argument("--split", default="test", choices=["train", "val", "test"])
        p.add_argument("--subset", default="HM", choices=["H", "M", "HM"])
        p.add_argument("--hands", default="interacting", choices=["interacting", "single", "all"])
        p.add_argument("--size", type=int, default=256)
        p.add_argument("--limit", type=int, help="keep only the first N selected images")
        p.add_argument("--workers", type=int, default=1, help="worker processes (the output is the same for any number)")
        p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="continue the partial build .<out>.partial left by an interrupted run (default: yes)")
        p.add_argument("--chunk", type=int, default=64, help="images per committed chunk (the work a kill can lose)")
        p.add_argument("--overwrite", action="store_true")
        p.add_argument("--quiet", action="store_true")
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.atomic import check_output
        from hand_nas.data.interhand import prepare

        check_output(args.out, inputs=[args.root], overwrite=True)  # never inside (or around) the release it reads
        try:
            r = prepare(args.root, args.out, split=args.split, subset=args.subset, hands=args.hands,
                        mano_dir=args.mano, size=args.size, limit=args.limit, overwrite=args.overwrite,
                        progress=not args.quiet, workers=args.workers, resume=args.resume, chunk=args.chunk)
        except KeyboardInterrupt:
            from hand_nas.data.resumable import partial_dir

            raise interrupted(f"the work done so far is kept in {partial_dir(args.out)}") from None
        print(f"selected {r['selected']} images, wrote {r['written']} samples to {args.out} "
              f"({r['dropped_dark']} dropped as too dark){' after resuming' if r['resumed'] else ''}; "
              f"{r['images_per_s']:.1f} images/s with {r['workers']} worker(s), "
              f"{r['images_per_s'] / r['workers']:.1f} images/s per worker")


class Show(Command):
    name, help = "show", "contact sheet with meshes and joints drawn over samples"

    def add_arguments(self, p) -> None:
        p.add_argument("folder")
        p.add_argument("--out", required=True)
        p.add_argument("--count", type=int, default=16)
        p.add_argument("--cols", type=int, default=4)

    def run(self, args) -> None:
        from hand_nas.data.sheet import contact_sheet

        print(f"wrote {contact_sheet(args.folder, args.out, count=args.count, cols=args.cols)}")


GROUP = Group("data", "data sets: synthesize, prepare InterHand2.6M, show", "data_command", (Synth, Prepare, Show))
