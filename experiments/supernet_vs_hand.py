"""The headline benchmark of the supernet (issue 30): searched subnets with inherited weights vs the hand design.

Phases, each resumable and stored on its own under ``results/supernet_vs_hand/`` (small JSON only; a rerun
skips what is stored, a killed training resumes from its snapshots while ``--work`` stays):

1. ``train``: the lwa.yaml supernet (``hand-nas supernet train --space lwa --recipe lwa``) into
   ``--supernet``; its record (steps, images, compute, MPJPE over training) is copied to ``supernet.json``.
2. ``search``: per ``--budgets`` value, a TPE search of ``--trials`` subnets scored by the supernet on the
   first ``--eval-images`` held-out images; the winner (lowest MPJPE within the budget) is rescored on the
   held-out images from the 400th on (none of which it was selected on) under ``--calib-sets`` calibration
   sets (mean +- std: the evaluation's own noise), beside the mean-shape baseline on those images.
3. ``finetune``: each winner, from its inherited weights, trained ``--finetune-steps`` more steps under the
   supernet's recipe at a tenth of its learning rate, per ``--seeds`` seed.
4. ``control``: lwa_hand trained stand-alone (retrain's ``standard`` settings) for as many steps of batch 16
   as the supernet's largest subnet saw, per seed: what more training alone buys.
5. ``--table``: every row with GMACs, parameters, seeds, MPJPE mean +- std, the mean-shape baseline and the
   compute of its column, beside the stand-alone 3000-step rows of ``results/search_vs_hand/lwa``.

GMACs: fvcore convention (one fused multiply-add = one flop), batch 1, 3x256x256. MPJPE: held-out, mm,
IntagHand protocol. One torch thread per process.

Usage:
    python experiments/supernet_vs_hand.py --phase train --supernet runs/supernet-lwa
    python experiments/supernet_vs_hand.py --phase search --supernet runs/supernet-lwa
    python experiments/supernet_vs_hand.py --phase finetune --seeds 0
    python experiments/supernet_vs_hand.py --phase control --seeds 0
    python experiments/supernet_vs_hand.py --table
    # a second stage from the first (warm start), its figures in a folder of their own:
    python experiments/supernet_vs_hand.py --phase train --recipe lwa-continue --init runs/supernet-lwa \
        --supernet runs/supernet-lwa-2k --results experiments/results/supernet_vs_hand/continued \
        --work runs/supernet_vs_hand_2k
    # a second stage on both cores (DDP, same global batch of 16) from the shipped 1000-step supernet (the
    # first stage's weights in fp16); the train phase then records the finished folder:
    torchrun --nproc-per-node 2 --no-python hand-nas supernet train --space lwa --recipe lwa-continue-lr2e-3 \
        --init hand_nas/supernet/shipped/lwa --out runs/supernet-lwa-2k-lr2
    python experiments/supernet_vs_hand.py --phase train --supernet runs/supernet-lwa-2k-lr2 \
        --results experiments/results/supernet_vs_hand/continued_lr2 --work runs/svh_lr2
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "supernet_vs_hand"
STANDALONE = ROOT / "results" / "search_vs_hand" / "lwa" / "retrain"
FLOPS = "GMACs: fvcore convention (1 fused multiply-add = 1 flop), batch 1, 3x256x256"


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


def _params(cfg) -> int:
    from hand_nas.models import build_model

    return sum(p.numel() for p in build_model(cfg).parameters())


def phase_train(args) -> None:
    from hand_nas.supernet import load_supernet, train_supernet

    if not (Path(args.supernet) / "supernet.json").is_file():  # a finished supernet is reused; a killed one resumes
        train_supernet("lwa", args.recipe, args.supernet, device="cpu", log=print, init=args.init)
    _, record = load_supernet(args.supernet)
    _write(RESULTS / "supernet.json", {k: record[k] for k in ("recipe", "train", "steps", "seconds", "images_seen",
                                                               "compute", "baseline", "history", "sha256", "n_random",
                                                               "kd", "sandwich", "init", "compute_total",
                                                               "images_seen_total") if k in record})


REPORT_SKIP = 400  # searches pick on held-out images [0, eval_images); reports score [400, end): disjoint


def _scorer(record, images, calib_set=0, skip=0):
    from hand_nas.config import TrainCfg
    from hand_nas.supernet import SubnetScorer

    return SubnetScorer.on(record["data"], TrainCfg.from_dict(record["train"]), record.get("calib_batches", 8),
                           images, calib_set=calib_set, skip=skip)


def rescore(net, record, cfg, sets: int) -> dict:
    """MPJPE of ``cfg`` with inherited weights on the report images (held-out from ``REPORT_SKIP`` on, none of
    which a search selects on) under ``sets`` calibration sets, beside the mean-shape baseline on those images."""
    from hand_nas.baseline import mean_shape, score_constant
    from hand_nas.data.dataset import split_indices
    from hand_nas.data.samples import open_samples

    runs = [_scorer(record, None, k, REPORT_SKIP).score(net, cfg) for k in range(sets)]
    mm = [m.mpjpe_mm for _, m, _ in runs]
    s = open_samples(record["data"])
    tr, va = split_indices(len(s), record["train"]["val_fraction"], seed=0)
    base = score_constant(mean_shape(s["verts"], s["joints"], s["valid"], tr), s["verts"], s["joints"],
                          va[REPORT_SKIP:]).mpjpe_mm
    return {"mpjpe_mm": mm, "mpvpe_mm": [m.mpvpe_mm for _, m, _ in runs], "seconds": [s for _, _, s in runs],
            "images": runs[0][1].count, "baseline_mpjpe_mm": base}


def phase_search(args) -> None:
    from hand_nas.config import StudyCfg
    from hand_nas.cost.gate import cost_of
    from hand_nas.search.runner import run_search
    from hand_nas.search.storage import read_records
    from hand_nas.supernet import load_supernet

    net, record = load_supernet(args.supernet)
    work = Path(args.work)
    for budget in args.budgets:
        out = RESULTS / f"search_{budget}.json"
        if out.is_file():
            print(f"{out}: stored")
            continue
        study, storage = f"supernet-{budget}", f"sqlite:///{(work / 'studies.db').resolve()}"
        t0 = time.perf_counter()
        run_search(StudyCfg(space="lwa", study=study, storage=storage, trials=args.trials, workers=args.workers,
                            budget_gmacs=budget, out=str(work / "trials"), evaluator="supernet",
                            supernet=args.supernet, eval_images=args.eval_images, pruner="none", seed=args.seed,
                            executor="local" if args.workers == 1 else "ray"))
        recs = read_records(study, storage)
        done = [r for r in recs if r.state == "complete" and r.feasible]
        best = min(done, key=lambda r: r.mpjpe_mm)
        from hand_nas.config import ModelCfg

        cfg = ModelCfg.from_dict(best.config)
        image, pose = cost_of(cfg)
        from hand_nas.search.evaluate import subnet_checkpoint

        ckpt = subnet_checkpoint(best, work / "winners" / f"budget_{budget}")
        _write(out, {"budget_gmacs": budget, "trials": len(recs), "complete": len(done),
                     "search_seconds": round(sum(r.seconds or 0 for r in recs), 1),
                     "wall_seconds": round(time.perf_counter() - t0, 1), "eval_images": args.eval_images,
                     "winner": {"trial": best.number, "search_mm": best.mpjpe_mm, "gmacs": round(image + pose, 4),
                                "params": _params(cfg), "config": best.config, "checkpoint": str(ckpt),
                                **rescore(net, record, cfg, args.calib_sets)},
                     "front": [{"trial": r.number, "gmacs": r.gmacs, "mpjpe_mm": r.mpjpe_mm} for r in
                               sorted(done, key=lambda r: r.gmacs)]})
        print(f"{out}: winner trial {best.number}, {best.mpjpe_mm:.2f} mm at {image + pose:.4f} GMACs")
    inherit = RESULTS / "lwa_hand_inherited.json"
    if not inherit.is_file():
        from hand_nas.models.presets import resolve_model

        _write(inherit, rescore(net, record, resolve_model("lwa_hand"), args.calib_sets))


def phase_finetune(args) -> None:
    from hand_nas.checkpoint import load_checkpoint
    from hand_nas.config import ModelCfg, TrainCfg
    from hand_nas.supernet import load_supernet
    from hand_nas.threads import torch_threads
    from hand_nas.train import train

    _, record = load_supernet(args.supernet)
    base = TrainCfg.from_dict(record["train"])
    for budget in args.budgets:
        found = json.loads((RESULTS / f"search_{budget}.json").read_text())["winner"]
        for seed in args.seeds:
            out = RESULTS / f"finetune_{budget}_seed{seed}.json"
            if out.is_file():
                continue
            cfg = dataclasses.replace(base, steps=args.finetune_steps, lr=base.lr / 10, warmup=20,
                                      eval_every=args.finetune_steps, seed=seed)
            model, _ = load_checkpoint(found["checkpoint"])
            with torch_threads(1):
                r = train(ModelCfg.from_dict(found["config"]), cfg, record["data"], model=model.train())
            _write(out, {"budget_gmacs": budget, "seed": seed, "train": cfg.to_dict(), "mpjpe_mm": r.metrics.mpjpe_mm,
                         "mpvpe_mm": r.metrics.mpvpe_mm, "seconds": round(r.seconds, 1),
                         "baseline_mpjpe_mm": r.baseline.mpjpe_mm})
            print(f"{out}: {r.metrics.mpjpe_mm:.2f} mm after {args.finetune_steps} steps")


def phase_control(args) -> None:
    from hand_nas.models.presets import resolve_model
    from hand_nas.retrain import RECIPES
    from hand_nas.search.runner import data_dir
    from hand_nas.threads import torch_threads
    from hand_nas.train import train

    steps = args.control_steps
    data = data_dir("synthetic", RECIPES["standard"].synthetic_n)
    for seed in args.seeds:
        out = RESULTS / f"control_lwa_hand_{steps}_seed{seed}.json"
        if out.is_file():
            continue
        cfg = dataclasses.replace(RECIPES["standard"].train, steps=steps, eval_every=steps // 4, seed=seed)
        snaps = Path(args.work) / f"control_{steps}_seed{seed}"
        with torch_threads(1):
            r = train(resolve_model("lwa_hand"), cfg, data, resume_dir=snaps, save_every=100, log=print,
                      progress=True)
        _write(out, {"seed": seed, "train": cfg.to_dict(), "mpjpe_mm": r.metrics.mpjpe_mm, "mpvpe_mm": r.metrics.mpvpe_mm,
                     "seconds": round(r.seconds, 1), "baseline_mpjpe_mm": r.baseline.mpjpe_mm, "history": r.history})
        print(f"{out}: {r.metrics.mpjpe_mm:.2f} mm")


def _stat(xs) -> str:
    xs = list(xs)
    return f"{np.mean(xs):6.2f} +- {np.std(xs, ddof=1):5.2f}" if len(xs) > 1 else f"{xs[0]:6.2f}         "


def table() -> str:
    sn = json.loads((RESULTS / "supernet.json").read_text())
    core_h = sn.get("compute_total", sn["compute"]).get("core_hours")  # a warm-started one: with its parent's
    lines = [f"{FLOPS}; MPJPE held-out, mm, IntagHand protocol; +- std over seeds (ddof 1) or calibration sets;",
             f"supernet rows on held-out images {REPORT_SKIP}.. (not the ones searches select on), the others on "
             "the whole held-out split: each row beside its own images' mean-shape baseline",
             f"supernet: recipe {sn['recipe']}, {sn['steps']} steps, {sn['images_seen']['largest']} images per "
             f"subnet position, {sn['compute']} "
             + (f"; from {sn['init']['recipe']} ({sn['init']['steps']} steps, sha256 {sn['init']['sha256'][:12]}): "
                f"{sn['images_seen_total']['largest']} images per position and {core_h} core-h in all"
                if sn.get("init") else ""), "",
             f"{'row':<34} {'GMACs':>7} {'params':>9} {'n':>3} {'MPJPE mean +- std':>18} {'baseline':>8}  compute"]
    for path in sorted(RESULTS.glob("search_*.json")):
        s = json.loads(path.read_text())
        w, b = s["winner"], s["budget_gmacs"]
        lines.append(f"{f'supernet winner <= {b} (inherited)':<34} {w['gmacs']:7.4f} {w['params']:9d} "
                     f"{len(w['mpjpe_mm']):3d} {_stat(w['mpjpe_mm']):>18} {w['baseline_mpjpe_mm']:8.2f}  {core_h} core-h supernet + "
                     f"{s['search_seconds'] / 3600:.3f} core-h search ({s['trials']} subnets)")
        ft = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"finetune_{b}_seed*.json"))]
        if ft:
            label = f"  + fine-tune {ft[0]['train']['steps']} steps"
            lines.append(f"{label:<34} {w['gmacs']:7.4f} {w['params']:9d} "
                         f"{len(ft):3d} {_stat(f['mpjpe_mm'] for f in ft):>18} {ft[0]['baseline_mpjpe_mm']:8.2f}  + "
                         f"{sum(f['seconds'] for f in ft) / len(ft) / 3600:.3f} core-h per seed")
    from hand_nas.cost.gate import estimate_gmacs
    from hand_nas.models.presets import resolve_model

    hand = resolve_model("lwa_hand")
    hand_gmacs, hand_params = estimate_gmacs(hand), _params(hand)
    inh = RESULTS / "lwa_hand_inherited.json"
    if inh.is_file():
        i = json.loads(inh.read_text())
        lines.append(f"{'lwa_hand (inherited from supernet)':<34} {hand_gmacs:7.4f} {hand_params:9d} {len(i['mpjpe_mm']):3d} "
                     f"{_stat(i['mpjpe_mm']):>18} {i['baseline_mpjpe_mm']:8.2f}  (the supernet's)")
    for path in sorted(RESULTS.glob("control_lwa_hand_*_seed0.json")):
        steps = path.name.split("_")[3]
        runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"control_lwa_hand_{steps}_seed*.json"))]
        lines.append(f"{f'control: lwa_hand {steps} steps alone':<34} {hand_gmacs:7.4f} {hand_params:9d} {len(runs):3d} "
                     f"{_stat(r['mpjpe_mm'] for r in runs):>18} {runs[0]['baseline_mpjpe_mm']:8.2f}  "
                     f"{sum(r['seconds'] for r in runs) / len(runs) / 3600:.3f} core-h per seed")
    by_label: dict = {}
    for p in sorted(STANDALONE.glob("*.json")):
        r = json.loads(p.read_text())
        by_label.setdefault(r["label"], []).append(r)
    for label, runs in sorted(by_label.items()):
        lines.append(f"{f'{label} (stand-alone, 3000 steps)':<34} {runs[0]['gmacs']:7.4f} {runs[0]['params']:9d} "
                     f"{len(runs):3d} {_stat(r['mpjpe_mm'] for r in runs):>18} {runs[0]['baseline_mpjpe_mm']:8.2f}  "
                     f"{np.mean([r['seconds'] for r in runs]) / 3600:.3f} core-h per seed")
    return "\n".join(lines)


def main() -> None:
    global RESULTS  # every phase reads and writes this supernet's folder (--results)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase", choices=["train", "search", "finetune", "control"])
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--supernet", default="runs/supernet-lwa")
    ap.add_argument("--recipe", default="lwa")
    ap.add_argument("--init", help="train: warm start from this trained supernet (recipe lwa-continue)")
    ap.add_argument("--results", default=str(RESULTS), help="where this supernet's JSON and table go")
    ap.add_argument("--work", default="runs/supernet_vs_hand", help="studies, extracted checkpoints, snapshots")
    ap.add_argument("--budgets", type=float, nargs="+", default=[0.25, 0.35, 0.47])
    ap.add_argument("--trials", type=int, default=120)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--eval-images", type=int, default=200)
    ap.add_argument("--calib-sets", type=int, default=3)
    ap.add_argument("--finetune-steps", type=int, default=300)
    ap.add_argument("--control-steps", type=int, default=1000, help="the supernet's steps (batch 16)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seed", type=int, default=0, help="sampler seed")
    args = ap.parse_args()
    RESULTS = Path(args.results)
    if args.phase:
        {"train": phase_train, "search": phase_search, "finetune": phase_finetune, "control": phase_control}[args.phase](args)
    if args.table:
        text = table()
        print(text)
        (RESULTS / "table.md").write_text(f"```\n{text}\n```\n")


if __name__ == "__main__":
    main()
