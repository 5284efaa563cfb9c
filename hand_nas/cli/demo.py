"""``hand-nas demo``: the main job end to end on the embedded synthetic data; its options are ``DemoCfg``'s."""
from __future__ import annotations

import dataclasses

from hand_nas.cli._base import Command
from hand_nas.cli._common import add_mano, config_option

# the DemoCfg fields that are options (all but mano, which is --mano), in --help's order, with their help
OPTIONS = {"out": {}, "space": {"help": "a search space YAML or a shipped space's name"}, "study": {},
           "trials": {"help": "subnets the search scores"}, "workers": {},
           "prune_ratio": {"help": "share of every layer's channels the winner loses (one pruning pass)"},
           "supernet": {"help": "'shipped' (the trained lwa.yaml supernet) or a folder"},
           "eval_images": {"help": "held-out images scored per subnet"},
           "finetune_steps": {}, "qat_steps": {}, "seed": {}}


class Demo(Command):
    name, help = "demo", "the main job end to end on the embedded synthetic data (minutes on 2 cores)"

    def add_arguments(self, p) -> None:
        from hand_nas.app.demo import DemoCfg

        for field, kw in OPTIONS.items():
            config_option(p, DemoCfg, field, **kw)
        add_mano(p)  # DemoCfg.mano's None and --mano's 'procedural' are the same hand

    def run(self, args) -> None:
        from hand_nas.app.demo import DemoCfg, run_demo

        r = run_demo(DemoCfg(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoCfg)}),
                     log=lambda text: print(text, flush=True))
        print(f"artifacts ({r.seconds:.0f} s in all):")
        print(f"  data            {r.data}")
        print(f"  study           {r.storage} (study {args.study!r}); live view: hand-nas dashboard --study "
              f"{args.study} --storage {r.storage}")
        print(f"  trial weights   {r.trials}")
        for label, paths in (("report", r.report), ("bundle", r.bundle), ("prediction", r.prediction)):
            for p in paths:
                print(f"  {label:<15} {p}")
