"""``hand-nas compress``: prune, fine-tune, quantize (int8) and export a verified bundle (``compress.pipeline``)."""
from __future__ import annotations

from pathlib import Path

from hand_nas.cli._base import Command
from hand_nas.cli._common import add_device, add_mano, add_storage
from hand_nas.errors import HandNasError


class Compress(Command):
    name, help = "compress", "prune, fine-tune, quantize (int8) and export a verified bundle"

    def add_arguments(self, p) -> None:
        from compress.pipeline import INT8_CHOICES, MOBILE_CHOICES

        p.add_argument("--study", help="take the checkpoint of a stored trial of this study")
        p.add_argument("--trial", default="best", help="'best' (best feasible) or a trial number")
        add_storage(p)
        p.add_argument("--checkpoint", help="or: a checkpoint folder (model.safetensors + config.json)")
        p.add_argument("--target-gmacs", type=float, default=0.25, help="GMACs after pruning (fvcore convention, 256 px)")
        p.add_argument("--ratio", type=float, help="prune every layer by this channel ratio instead of a GMACs target")
        p.add_argument("--prune-heads", action="store_true", help="also remove whole attention heads")
        p.add_argument("--bits", type=int, default=8, help="weight bit width (activations stay 8-bit)")
        p.add_argument("--finetune-steps", type=int, default=200)
        p.add_argument("--qat-steps", type=int, default=50)
        p.add_argument("--int8", choices=list(INT8_CHOICES), default="auto",
                       help="int8 file: the fastest candidate within the MPJPE tolerance (auto) or a named one")
        p.add_argument("--mobile", choices=list(MOBILE_CHOICES), default="auto",
                       help="mobile runtimes' files: ExecuTorch (model.pte, model.int8.pte) and LiteRT (model.tflite) "
                       "when their tools are installed (auto), one of them or both (required), or off")
        p.add_argument("--size", type=int, default=256, help="input size of the ONNX files and latencies")
        p.add_argument("--threads", type=int, default=1, help="threads for every latency")
        p.add_argument("--data", help="sample folder (default: the one the checkpoint was trained on)")
        p.add_argument("--out", required=True, help="bundle folder")
        p.add_argument("--overwrite", action="store_true")
        add_device(p)
        add_mano(p)

    def run(self, args) -> None:
        from compress.pipeline import CompressCfg, check_cfg, compress, format_int8, format_mobile, format_report
        from compress.prune import PruneCfg
        from compress.quantize import QuantCfg
        from hand_nas.app.bundles import trial_checkpoint
        from hand_nas.device import check_options

        if bool(args.study) == bool(args.checkpoint):
            raise HandNasError("give either --study NAME [--trial best|N] or --checkpoint DIR")
        cfg = CompressCfg(prune=PruneCfg(target_gmacs=args.target_gmacs, ratio=args.ratio, prune_heads=args.prune_heads),
                          quant=QuantCfg(weight_bits=args.bits, qat_steps=args.qat_steps),
                          finetune_steps=args.finetune_steps, size=args.size, threads=args.threads, int8=args.int8,
                          mobile=args.mobile, device=args.device, precision=args.precision)
        check_cfg(cfg, "command line", flags=True)  # compress() checks it too; here, before a trial is looked up
        check_options(args.device, args.precision)
        checkpoint, prov = trial_checkpoint(args.study, args.trial, args.storage) if args.study else (args.checkpoint, {})
        if args.study:
            rt = prov["retrain"]
            which = (f"the retrain under recipe {rt['recipe']!r} (seed {rt['seed']}, {rt['steps']} steps, held-out "
                     f"MPJPE {rt['metrics']['mpjpe_mm']:.2f} mm)" if rt
                     else "the search's proxy checkpoint (no retrain recorded)")
            print(f"compressing trial {prov['trial']} of study {args.study!r}: {which}: {checkpoint}")
        out = Path(args.out)
        report = compress(checkpoint, out, cfg, provenance=prov, data=args.data, mano_dir=args.mano,
                          overwrite=args.overwrite)
        print(format_report(report))
        print(format_int8(report))
        print(format_mobile(report))
        print(f"bundle: {out} ({', '.join(sorted(p.name for p in out.iterdir()))})")
        print(f"manifest.json sha256 {report['manifest_sha256']}: compare it out of band before trusting a copy "
              "(a manifest is a checksum, not a signature)")
