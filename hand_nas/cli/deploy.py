"""Using a bundle or checkpoint: ``hand-nas predict`` (one image), ``bench`` (latency table), ``evaluate``."""
from __future__ import annotations

from hand_nas.cli._base import Command
from hand_nas.cli._common import add_mano, int_list
from hand_nas.errors import HandNasError


class Predict(Command):
    name, help = "predict", "both hands' meshes (OBJ) and an overlay PNG from one image"

    def add_arguments(self, p) -> None:
        p.add_argument("image")
        p.add_argument("--checkpoint", required=True, help="a bundle or a checkpoint folder")
        p.add_argument("--out", help="output folder (default: IMAGE_hands next to the image)")
        p.add_argument("--size", type=int, help="network input size (default: the checkpoint's training resolution)")
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.app.bundles import predict_files

        for p in predict_files(args.image, args.checkpoint, args.out, args.size, args.mano):
            print(f"wrote {p}")


class Bench(Command):
    name, help = "bench", "latency table of a bundle or checkpoint on this machine (torch, ORT fp32, int8)"

    def add_arguments(self, p) -> None:
        p.add_argument("target", help="a bundle folder (verified; its ONNX graphs are timed) or a checkpoint folder")
        p.add_argument("--threads", default="1", help="comma-separated intra-op thread counts (default 1)")
        p.add_argument("--batch", default="1", help="comma-separated batch sizes (default 1)")
        p.add_argument("--size", type=int, default=256, help="input side (default the deployment 256)")
        p.add_argument("--rounds", type=int, default=10, help="alternating rounds of 5 runs per engine")
        p.add_argument("--json", action="store_true", help="the result as JSON (for machines)")
        p.add_argument("--profile", action="store_true",
                       help="also where each ExecuTorch program's time goes, by XNNPACK operator (event tracer)")

    def run(self, args) -> None:
        import json

        from hand_nas.app.bundles import bench_target
        from hand_nas.cost.bench import format_bench
        from hand_nas.models.validate import check

        threads = int_list("--threads", args.threads, 1, 256)
        batches = int_list("--batch", args.batch, 1, 1024)
        check("command line", numbers={"--size": (args.size, 32, 4096), "--rounds": (args.rounds, 1, 10_000)})
        if args.size % 32:
            raise HandNasError(f"--size {args.size}: must be a multiple of 32")
        r = bench_target(args.target, threads, batches, args.size, args.rounds, progress=not args.json,
                         profile=args.profile)
        print(json.dumps(r.to_dict(), indent=1) if args.json else format_bench(r))


class Evaluate(Command):
    name, help = "evaluate", "held-out MPJPE/MPVPE of a bundle or checkpoint (bundle hashes verified)"

    def add_arguments(self, p) -> None:
        p.add_argument("--checkpoint", required=True)
        p.add_argument("--data", help="sample folder (default: the recorded one)")
        p.add_argument("--device", default="auto", help="where the network runs: auto (CUDA when available), cpu, cuda[:N]")
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.app.bundles import evaluate_checkpoint

        m, train_cfg, recorded = evaluate_checkpoint(args.checkpoint, args.data, args.mano, device=args.device)
        print(f"held-out ({m.count} samples at {train_cfg.resolution} px, IntagHand protocol): MPJPE {m.mpjpe_mm:.2f} "
              f"mm, MPVPE {m.mpvpe_mm:.2f} mm")
        if recorded.get("mpjpe_mm") is not None:
            print(f"recorded in {args.checkpoint}: MPJPE {recorded['mpjpe_mm']:.2f} mm, MPVPE {recorded['mpvpe_mm']:.2f} mm")
