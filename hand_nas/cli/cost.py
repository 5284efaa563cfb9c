"""``hand-nas cost``: a model's GMACs (image/pose split), parameters and, optionally, CPU latency."""
from __future__ import annotations

from hand_nas.cli._base import Command
from hand_nas.cli._common import FLOPS_NOTE, add_mano


class Cost(Command):
    name, help = "cost", f"GMACs (image/pose split), parameters, optional CPU latency; {FLOPS_NOTE}"

    def add_arguments(self, p) -> None:
        p.add_argument("model", help="a preset name or a YAML/JSON model config")
        p.add_argument("--size", type=int, default=256, help="input side (default: the deployment 256)")
        p.add_argument("--latency", action="store_true", help="also time torch eager and onnxruntime fp32")
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--repeats", type=int, default=20)
        p.add_argument("--json", action="store_true")
        add_mano(p)

    def run(self, args) -> None:
        import json

        from hand_nas.cost.flops import model_cost
        from hand_nas.models import build_model
        from hand_nas.models.presets import resolve_model
        from hand_nas.models.validate import check

        cfg = resolve_model(args.model)
        check(args.model, cfg, sizes={"--size": args.size},
              numbers={"--threads": (args.threads, 1, 256), "--repeats": (args.repeats, 1, 100_000)})
        model = build_model(cfg, args.mano)
        r = model_cost(model, size=args.size)
        out = {"model": cfg.name, "gmacs_total": round(r.gmacs_total, 4), "gmacs_image": round(r.gmacs_image, 4),
               "gmacs_pose": round(r.gmacs_pose, 4), "params_m": round(r.params_m, 3), "input_size": args.size,
               "convention": FLOPS_NOTE}
        if args.latency:
            from hand_nas.cost.latency import model_latency

            lat = model_latency(model, args.size, args.threads, repeats=args.repeats)
            out.update({k: round(v, 2) if isinstance(v, float) else v for k, v in lat.items() if k != "input_size"})
        if args.json:
            print(json.dumps(out))
            return
        print(f"{cfg.name}: {out['gmacs_total']:.4f} GMACs = {out['gmacs_image']:.4f} image + "
              f"{out['gmacs_pose']:.4f} pose; {out['params_m']:.2f} M parameters  "
              f"(input 1x3x{args.size}x{args.size}; {FLOPS_NOTE})")
        if args.latency:
            print(f"latency, batch 1, {out['threads']} thread(s), median of {args.repeats} after warm-up: "
                  f"torch eager {out['latency_ms_torch']:.2f} ms, onnxruntime fp32 {out['latency_ms_ort']:.2f} ms")
