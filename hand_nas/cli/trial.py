"""``hand-nas trial show``: a stored trial's record, its retrains, and its model rebuilt from the storage alone."""
from __future__ import annotations

import json

from hand_nas.cli._base import Command, Group
from hand_nas.cli._common import FLOPS_NOTE, add_storage

SHOWN = ("number", "state", "backend", "mpjpe_mm", "mpvpe_mm", "gmacs", "gmacs_image", "gmacs_pose", "feasible",
         "checkpoint", "node", "error")


class Show(Command):
    name, help = "show", "a trial's record; rebuilds its model from the storage alone"

    def add_arguments(self, p) -> None:
        p.add_argument("study")
        p.add_argument("number", type=int)
        add_storage(p)
        p.add_argument("--build", action="store_true", help="also build the model and count it with fvcore")
        p.add_argument("--config-out", help="write the trial's model config as YAML")

    def run(self, args) -> None:
        from hand_nas.config import ModelCfg
        from hand_nas.cost.gate import cost_of
        from hand_nas.search.records import select_trial
        from hand_nas.search.storage import read_records, read_retrains

        rec = select_trial(read_records(args.study, args.storage), args.number, args.study)
        row = rec.row()
        print(json.dumps({k: row[k] for k in SHOWN}, indent=2))
        print("params:", json.dumps(rec.params))
        print("proxy:", json.dumps(rec.proxy), "seed:", rec.seed, "data:", rec.data)
        for r in read_retrains(args.study, args.storage, rec.number):
            print(f"retrained under recipe {r.recipe!r} (seed {r.seed}, {r.steps} steps): held-out MPJPE "
                  f"{r.metrics['mpjpe_mm']:.2f} mm; checkpoint {r.checkpoint}")
        if rec.config is None:
            print("no model config stored (the trial failed before its configuration was built)")
            return
        cfg = ModelCfg.from_dict(rec.config)
        image, pose = cost_of(cfg)
        print(f"rebuilt from storage: {cfg.name}; {image + pose:.4f} GMACs = {image:.4f} image + {pose:.4f} pose "
              f"(stored {rec.gmacs}; {FLOPS_NOTE})")
        if args.build:
            from hand_nas.cost.flops import model_cost
            from hand_nas.models import build_model

            r = model_cost(build_model(cfg))
            print(f"built and counted with fvcore: {r.gmacs_total:.4f} GMACs, {r.params_m:.3f} M parameters")
        if args.config_out:
            import yaml

            from hand_nas.atomic import atomic_file

            with atomic_file(args.config_out, "w") as fh:
                yaml.safe_dump({"model": cfg.to_dict()}, fh, sort_keys=False)
            print(f"wrote {args.config_out}")


GROUP = Group("trial", "inspect stored trials", "trial_command", (Show,))
