"""``hand-nas train`` (proxy-train a model) and ``hand-nas retrain`` (a stored trial from scratch, resumable)."""
from __future__ import annotations

import argparse

from hand_nas.cli._base import Command
from hand_nas.cli._common import FLOPS_NOTE, TABLE_HEAD, add_device, add_mano, add_storage, config_option, interrupted

# TrainCfg fields `hand-nas train` sets, in the order its --help lists them (type and default: the field's)
TRAIN_FIELDS = {"steps": {}, "resolution": {}, "batch": {}, "lr": {}, "eval_every": {}, "seed": {}, "workers": {},
                "losses": {"help": "loss terms: intaghand (all), 3d or joints"},
                "ema": {"help": "evaluate and save a moving average of the weights with this decay per step (0: off)"}}


class Train(Command):
    name, help = "train", "proxy-train a model and report held-out MPJPE/MPVPE"

    def add_arguments(self, p) -> None:
        from hand_nas.config import TrainCfg

        p.add_argument("model", help="a preset name or a YAML/JSON model config")
        p.add_argument("--data", default="synthetic", help="'synthetic' (the cached embedded set) or a sample directory")
        p.add_argument("--synthetic-n", type=int, default=2000)
        for field, kw in TRAIN_FIELDS.items():
            config_option(p, TrainCfg, field, **kw)
        p.add_argument("--out", help="checkpoint directory")
        add_device(p)
        p.add_argument("--quiet", action="store_true")
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.atomic import check_output
        from hand_nas.config import TrainCfg
        from hand_nas.cost.flops import model_cost
        from hand_nas.device import resolve_device, resolve_precision
        from hand_nas.models import build_model
        from hand_nas.models.presets import resolve_model
        from hand_nas.models.validate import check
        from hand_nas.search.runner import data_dir
        from hand_nas.train import train

        cfg = resolve_model(args.model)
        tcfg = TrainCfg(**{field: getattr(args, field) for field in TRAIN_FIELDS})
        check(args.model, cfg, train=tcfg, flags=True, numbers={"--synthetic-n": (args.synthetic_n, 8, 1_000_000)})
        # a wrong --device or --precision is an error before any data is made
        resolve_precision(args.precision, resolve_device(args.device))
        if args.out:  # a foreign folder, or one inside the data, is refused now, not after training
            check_output(args.out, inputs=[args.data] if args.data != "synthetic" else [], overwrite=True)
        data = data_dir(args.data, args.synthetic_n, progress=not args.quiet)
        cost = model_cost(build_model(cfg, args.mano))
        r = train(cfg, tcfg, data, checkpoint_dir=args.out, mano_dir=args.mano, progress=not args.quiet,
                  device=args.device, precision=args.precision)
        print(f"{cfg.name}: {cost.gmacs_total:.4f} GMACs at 256x256 ({FLOPS_NOTE})")
        print(f"proxy: {r.steps} steps, batch {tcfg.batch}, {tcfg.resolution}x{tcfg.resolution}, {r.seconds:.0f} s wall")
        print(TABLE_HEAD)
        for h in r.history:
            print(f"{h['step']:>5}  {h['mpjpe_mm']:6.2f}  {h['mpvpe_mm']:6.2f}")
        b = r.baseline
        print(f"trained {r.metrics.mpjpe_mm:.2f} mm MPJPE; baseline (mean shape) {b.mpjpe_mm:.2f} mm "
              f"(MPVPE {b.mpvpe_mm:.2f}): the training split's mean hands predicted for every held-out image")
        if r.checkpoint:
            print(f"checkpoint: {r.checkpoint}")


class Retrain(Command):
    name = "retrain"
    help = "train a stored trial's architecture from scratch under a named recipe (resumable after a kill)"

    def add_arguments(self, p) -> None:
        from hand_nas.retrain import RECIPES

        p.add_argument("--study", required=True)
        add_storage(p)
        p.add_argument("--trial", default="best", help="'best' (lowest proxy MPJPE, feasible) or a trial number")
        p.add_argument("--recipe", required=True, help="; ".join(f"{k}: {v.about}" for k, v in RECIPES.items()))
        p.add_argument("--out", required=True, help="checkpoint folder (written at the end; the run lives beside it "
                                                    "in .OUT.partial until then)")
        p.add_argument("--data", help="sample folder, or 'synthetic' (the recipe's synthetic set); default: the trial's")
        p.add_argument("--seed", type=int, help="training seed (default: the recipe's)")
        p.add_argument("--save-every", type=int, help="steps between snapshots (default: the recipe's)")
        p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
        p.add_argument("--precision", default="fp32",
                       help="fp32, bf16 (autocast on CPU or CUDA) or fp16 (CUDA, GradScaler)")
        p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="continue the interrupted run in .OUT.partial (default: yes)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing --out that hand-nas wrote")
        p.add_argument("--quiet", action="store_true")
        add_mano(p)

    def run(self, args) -> None:
        from hand_nas.data.resumable import partial_dir
        from hand_nas.retrain import plan_retrain, retrain
        from hand_nas.cost.gate import cost_of

        plan = plan_retrain(args.study, args.trial, args.recipe, args.out, storage=args.storage, data=args.data,
                            seed=args.seed, save_every=args.save_every, device=args.device,
                            precision=args.precision, overwrite=args.overwrite)
        t = plan.train
        image, pose = cost_of(plan.model)
        print(f"retraining trial {plan.trial} of study {args.study!r} ({plan.model.name}, {image + pose:.4f} GMACs at "
              f"256x256) from scratch under recipe {plan.recipe!r}: {t.steps} steps, batch {t.batch}, "
              f"{t.resolution}x{t.resolution}, lr {t.lr:g}, seed {t.seed}, {plan.precision}; data {plan.data}",
              flush=True)
        print(f"snapshot every {plan.save_every} steps in {partial_dir(plan.out)} (after a kill, the same command "
              "resumes)", flush=True)
        try:
            r, record = retrain(plan, device=args.device, mano_dir=args.mano, overwrite=args.overwrite,
                                resume=args.resume, progress=not args.quiet, log=lambda text: print(text, flush=True))
        except KeyboardInterrupt:
            raise interrupted(f"the last snapshot is kept in {partial_dir(plan.out)}") from None
        print(TABLE_HEAD)
        for h in r.history:
            print(f"{h['step']:>6}  {h['mpjpe_mm']:6.2f}  {h['mpvpe_mm']:6.2f}")
        b, m, proxy = r.baseline, r.metrics, plan.proxy_metrics or {}
        print(f"retrained {m.mpjpe_mm:.2f} mm MPJPE (MPVPE {m.mpvpe_mm:.2f}); baseline (mean shape) {b.mpjpe_mm:.2f} mm "
              f"(MPVPE {b.mpvpe_mm:.2f}); the trial's proxy scored "
              + (f"{proxy['mpjpe_mm']:.2f} mm" if proxy.get("mpjpe_mm") is not None else "nothing")
              + f"; {r.seconds:.0f} s")
        print(f"checkpoint: {plan.out}")
        print(f"recorded in study {args.study!r}: `hand-nas compress --study {args.study} --trial {plan.trial}` takes it")
