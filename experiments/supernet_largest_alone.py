"""Why does the supernet's largest subnet learn slower than one network trained alone? (issue 30)

After the `lwa` recipe's 1000 sandwich steps the largest subnet scored 45.08 mm, lwa_hand trained alone for the
same 1000 steps 42.98 +- 0.74 (3 seeds); after 2000 the gap was 3.0 mm. Three arms separate what the supernet's
code path costs from what sharing the weights with the other subnets costs. Each trains the sandwich's largest
configuration for ``--steps`` steps of the `lwa` recipe's schedule (128 px, batch 16, Adam lr 2e-3, warm-up 60,
cosine, every IntagHand loss, 8000 synthetic images, gradient norm clipped at 5), one torch thread:

* ``shared``: ``hand-nas supernet train``'s code path with the largest subnet alone (recipe ``lwa-largest``):
  the shared tensors, the functional call on sliced views, the supernet's initialisation.
* ``same-init``: the largest subnet extracted from a fresh supernet built as the ``shared`` arm builds it (the
  same initial weights), trained by ``hand_nas.train.train`` as every stand-alone run is.
* ``fresh``: ``build_model(largest)`` with its own initialisation, trained by ``hand_nas.train.train``.

``shared`` vs ``same-init``: the training code path (equal up to data order if the path is right); ``same-init``
vs ``fresh``: the supernet's initialisation (a shared tensor takes the largest cover sample's init, tiled where no
sample reaches the layout's size). Every arm's checkpoints are scored alike: BatchNorm recalibrated on the
supernet scorer's 8 training batches, all 800 held-out images (``SubnetScorer``); train()'s own running-statistics
figure is kept beside. GMACs: fvcore convention (one fused multiply-add = one flop), batch 1, 3x256x256.

Usage (one arm per process and core; resumable from ``--work`` after a kill):
    OMP_NUM_THREADS=1 python experiments/supernet_largest_alone.py --arm shared --seed 0
    OMP_NUM_THREADS=1 python experiments/supernet_largest_alone.py --arm same-init --seed 0
    python experiments/supernet_largest_alone.py --table
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "supernet_largest_alone"
RECIPE = "lwa-largest"
ARMS = ("shared", "same-init", "fresh")


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


def _setup(steps: int, seed: int):
    from hand_nas.search.runner import data_dir
    from hand_nas.search.space import load_space
    from hand_nas.supernet.sandwich import extremes
    from hand_nas.supernet.training import get_recipe

    rec = get_recipe(RECIPE)
    cfg = dataclasses.replace(rec.train, steps=steps, seed=seed)
    space = load_space("lwa")
    largest = space.build(extremes(space)[0])
    return rec, cfg, space, largest, data_dir("synthetic", rec.synthetic_n)


def _scorer(rec, cfg, data):
    from hand_nas.supernet.evaluation import SubnetScorer

    return SubnetScorer.on(data, cfg, rec.calib_batches, rec.eval_images)


def run_shared(args) -> dict:
    from hand_nas.supernet.training import train_supernet

    rec, cfg, space, largest, data = _setup(args.steps, args.seed)
    run = train_supernet("lwa", RECIPE, Path(args.work) / f"shared_seed{args.seed}", steps=args.steps,
                         seed=args.seed, overwrite=False, resume=True)
    curve = [{"step": h["step"], "mpjpe_mm": h["largest"]["mpjpe_mm"]} for h in run.history]
    return {"mpjpe_mm": curve[-1]["mpjpe_mm"], "curve": curve, "seconds": round(run.seconds, 1),
            "baseline_mpjpe_mm": run.baseline["mpjpe_mm"], "train": cfg.to_dict(), "config": largest.to_dict()}


def run_alone(args) -> dict:
    import torch

    from hand_nas.baseline import mean_shape
    from hand_nas.data.dataset import split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.models import build_model
    from hand_nas.supernet.evaluation import recalibrate_bn
    from hand_nas.supernet.supernet import Supernet
    from hand_nas.train import evaluate, train

    rec, cfg, space, largest, data = _setup(args.steps, args.seed)
    samples = open_samples(data)  # the training split's mean hand, as train() and train_supernet set it
    tr_idx, _ = split_indices(len(samples), cfg.val_fraction, seed=0)
    mean = mean_shape(samples["verts"], samples["joints"], samples["valid"], tr_idx)
    verts, rel_root = torch.as_tensor(mean.verts), torch.as_tensor(mean.rel_root)
    if args.arm == "same-init":  # train_supernet's construction, step by step: seed, supernet, the data's mean hand
        torch.manual_seed(cfg.seed)
        net = Supernet(space, None, cover_samples=rec.cover_samples, seed=cfg.seed)
        base_model = build_model(space.base_cfg())
        base_model.pose.set_mean_shape(verts, rel_root)
        for name in ("pose.template", "pose.rel_root.bias"):
            net.set_shared(name, base_model.state_dict()[name])
        model = net.extract(largest).train()
    else:  # fresh: built here as train() would build it, so on_eval can score it
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            model = build_model(largest)
        model.pose.set_mean_shape(verts, rel_root)
    scorer = _scorer(rec, cfg, data)
    curve = []

    def on_eval(step, metrics) -> bool:  # train() evaluates with running statistics; score it as the supernet does
        state, was = {k: v.clone() for k, v in model.state_dict().items()}, model.training
        score = evaluate(recalibrate_bn(model, scorer.calib), scorer.val).mpjpe_mm
        model.load_state_dict(state)
        model.train(was)
        curve.append({"step": step, "mpjpe_mm": score, "running_stats_mpjpe_mm": metrics.mpjpe_mm})
        return False

    r = train(largest, cfg, data, model=model, on_eval=on_eval, resume_dir=Path(args.work) / f"{args.arm}_seed{args.seed}",
              save_every=100, progress=True, log=print)
    return {"mpjpe_mm": curve[-1]["mpjpe_mm"] if curve else None, "running_stats_mpjpe_mm": r.metrics.mpjpe_mm,
            "curve": curve, "seconds": round(r.seconds, 1), "baseline_mpjpe_mm": r.baseline.mpjpe_mm,
            "train": cfg.to_dict(), "config": largest.to_dict()}


def table() -> str:
    from hand_nas.cost.gate import estimate_gmacs
    from hand_nas.search.space import load_space
    from hand_nas.supernet.sandwich import extremes

    space = load_space("lwa")
    gmacs = estimate_gmacs(space.build(extremes(space)[0]))
    sandwich = json.loads((ROOT / "results" / "supernet_vs_hand" / "supernet.json").read_text())
    lines = [f"The sandwich's largest lwa.yaml configuration ({gmacs:.4f} GMACs; fvcore convention, batch 1, "
             "3x256x256), held-out MPJPE in mm (BatchNorm recalibrated, 800 images) by step; one thread each", "",
             "| arm | seed | " + " | ".join(f"step {h['step']}" for h in sandwich["history"]) + " | seconds |",
             "|---|---:|" + "---:|" * (len(sandwich["history"]) + 1)]
    for arm in ARMS:
        for path in sorted(RESULTS.glob(f"{arm}_seed*.json")):
            r = json.loads(path.read_text())
            at = {c["step"]: c["mpjpe_mm"] for c in r["curve"]}
            lines.append(f"| {arm} | {r['train']['seed']} | "
                         + " | ".join(f"{at[h['step']]:.2f}" if h["step"] in at else "-" for h in sandwich["history"])
                         + f" | {r['seconds']:.0f} |")
    lines.append(f"| sandwich (`lwa` recipe, layout 2) | {sandwich['train']['seed']} | "
                 + " | ".join(f"{h['largest']['mpjpe_mm']:.2f}" for h in sandwich["history"]) + " | - |")
    lines.append(f"\nmean-shape baseline {sandwich['baseline']['mpjpe_mm']:.2f} mm")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arm", choices=ARMS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--work", default="runs/supernet_largest_alone", help="snapshots (resume after a kill)")
    ap.add_argument("--table", action="store_true", help="print the arms beside the sandwich's largest")
    args = ap.parse_args()
    if args.table:
        text = table()
        (RESULTS / "table.md").write_text(text + "\n")
        print(text)
        return
    if args.arm is None:
        ap.error("give --arm or --table")
    out = RESULTS / f"{args.arm}_seed{args.seed}.json"
    if out.is_file():
        print(f"{out}: stored")
        return
    from hand_nas.threads import torch_threads

    with torch_threads(1):
        result = run_shared(args) if args.arm == "shared" else run_alone(args)
    _write(out, {"arm": args.arm, **result})
    print(f"{out}: {result['mpjpe_mm']:.2f} mm after {args.steps} steps")


if __name__ == "__main__":
    main()
