"""Why short proxy trainings ended worse than a constant, measured one change at a time (issue 11, item 2).

Trains ``lwa_hand`` under ``search_spaces/lwa.yaml``'s proxy (or a shorter budget) with each variant and
seed, and prints held-out MPJPE beside the split's mean-shape baseline. Every run is stored on its own
(``experiments/results/learning_diagnosis/<variant>_<steps>_seed<k>.json``) so runs can go in parallel
processes and a killed sweep resumes; ``--table`` gathers them into ``experiments/results/learning_diagnosis.json``.

Variants (each is the previous fix plus one change, except ``main``):

* ``main``: the head as on main before this issue: default ``nn.Linear`` init of the coordinate and
  relative-root heads around the hand model's rest template (the right hand's, for both hands).
* ``mean_init``: the fix: zero-initialised heads around the training split's mean hands.
* ``mean_init_noaug``: plus no augmentation (IntagHand's +-90 deg rotations and flips off).
* ``mean_init_aux10``: plus the 2D / mask / heatmap loss weights divided by 10.
* ``mean_init_noaug_aux10``: both of the above.
* ``mean_template_default_head``: no augmentation, the mean template, but the coordinate head at
  ``nn.Linear``'s default init (the decoder body gets full 3D gradients from step 0, the start is off the mean).
* ``mean_init_noaug_3d_only``: no augmentation, only the 3D terms (joints, verts, coarse, relative root).
* ``mean_init_lr1e-3``, ``mean_init_lr4e-3``: peak learning rate instead of the proxy's.

Usage:
    OMP_NUM_THREADS=1 python experiments/learning_diagnosis.py --variants main mean_init --seeds 0 1 --steps 100
    python experiments/learning_diagnosis.py --grad              # loss terms and their gradient norms at init
    python experiments/learning_diagnosis.py --decompose         # the constant's error with the true orientation
    python experiments/learning_diagnosis.py --table             # the table of every stored run
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
RUNS = ROOT / "results" / "learning_diagnosis"
SUMMARY = ROOT / "results" / "learning_diagnosis.json"
SPACE = ROOT.parent / "search_spaces" / "lwa.yaml"

VARIANTS = {
    "main": {"head": "main"},
    "mean_init": {},
    "mean_init_noaug": {"train": {"augment": False}},
    "mean_init_aux10": {"loss": {"verts2d": 5.0, "mask": 50.0, "heatmap": 10.0}},
    "mean_init_noaug_aux10": {"train": {"augment": False}, "loss": {"verts2d": 5.0, "mask": 50.0, "heatmap": 10.0}},
    "mean_template_default_head": {"head": "mean_template", "train": {"augment": False}},
    "mean_init_noaug_3d_only": {"train": {"augment": False},
                                "loss": {"verts2d": 0.0, "mask": 0.0, "heatmap": 0.0, "normal": 0.0, "edge": 0.0}},
    "mean_init_lr1e-3": {"train": {"lr": 1e-3}},
    "mean_init_lr4e-3": {"train": {"lr": 4e-3}},
}


def old_head(model: torch.nn.Module) -> None:
    """Put back main's head: default Linear init, the rest template (right hand) for both hands."""
    from hand_nas.hand.hierarchy import load_hierarchy
    from hand_nas.hand.mano import hand_topology

    dec = model.pose
    dec.coord.reset_parameters()
    dec.rel_root.reset_parameters()
    topo = hand_topology()
    tmpl = load_hierarchy(topo.faces).pool_matrix(252) @ topo.template
    tmpl = tmpl - (topo.joint_regressor @ topo.template)[9]
    with torch.no_grad():
        dec.template.copy_(torch.tensor(np.stack([tmpl, tmpl]), dtype=torch.float32))


def proxy_cfg(steps: int | None, variant: dict):
    from hand_nas.search.space import load_space

    cfg = load_space(SPACE).proxy
    if steps:
        cfg = dataclasses.replace(cfg, steps=steps, eval_every=max(steps // 4, 1))
    return dataclasses.replace(cfg, **variant.get("train", {}))


def run_one(name: str, steps: int | None, seed: int, data: Path) -> dict:
    from hand_nas.losses import LossWeights
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model
    from hand_nas.train import train

    variant = VARIANTS[name]
    cfg = dataclasses.replace(proxy_cfg(steps, variant), seed=seed)
    weights = dataclasses.replace(LossWeights(), **variant.get("loss", {}))
    model_cfg = resolve_model("lwa_hand")
    model = None
    if variant.get("head") == "main":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(model_cfg)
            old_head(model)
    elif variant.get("head") == "mean_template":
        from hand_nas.baseline import mean_shape
        from hand_nas.data.dataset import split_indices
        from hand_nas.data.samples import open_samples

        s = open_samples(data)
        mean = mean_shape(s["verts"], s["joints"], s["valid"], split_indices(len(s), cfg.val_fraction, seed=0)[0])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(model_cfg)
            model.pose.set_mean_shape(torch.as_tensor(mean.verts), torch.as_tensor(mean.rel_root))
            model.pose.coord.reset_parameters()
    t0 = time.perf_counter()
    r = train(model_cfg, cfg, data, weights=weights, model=model)
    return {"variant": name, "steps": cfg.steps, "seed": seed, "batch": cfg.batch, "resolution": cfg.resolution,
            "lr": cfg.lr, "augment": cfg.augment, "loss_weights": dataclasses.asdict(weights),
            "mpjpe_mm": r.metrics.mpjpe_mm, "mpvpe_mm": r.metrics.mpvpe_mm, "init_mpjpe_mm": r.init_metrics.mpjpe_mm,
            "baseline_mpjpe_mm": r.baseline.mpjpe_mm, "baseline_mpvpe_mm": r.baseline.mpvpe_mm,
            "history": [{k: h[k] for k in ("step", "mpjpe_mm", "mpvpe_mm")} for h in r.history],
            "seconds": time.perf_counter() - t0}


def grad_table(data: Path) -> list[dict]:
    """Each loss term's value and gradient norm (image part, pose part) on one training batch at init."""
    from hand_nas.baseline import mean_shape
    from hand_nas.data.dataset import TwoHandDataset, split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.data.transforms import AugmentCfg
    from hand_nas.hand.hierarchy import load_hierarchy
    from hand_nas.hand.mano import hand_topology
    from hand_nas.losses import LossWeights, two_hand_loss
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model

    cfg = proxy_cfg(None, {})
    s = open_samples(data)
    tr, _ = split_indices(len(s), cfg.val_fraction, seed=0)
    ds = TwoHandDataset(data, cfg.resolution, tr, AugmentCfg(), heatmaps=True, seed=0)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=cfg.batch, shuffle=True,
                                                  generator=torch.Generator().manual_seed(0))))
    topo = hand_topology()
    faces, pool = torch.as_tensor(topo.faces), torch.as_tensor(load_hierarchy(topo.faces).pool_matrix(252))
    mean = mean_shape(s["verts"], s["joints"], s["valid"], tr)
    rows = []
    for head in ("main", "mean_init"):
        torch.manual_seed(0)
        model = build_model(resolve_model("lwa_hand"))
        if head == "main":
            old_head(model)
        else:
            model.pose.set_mean_shape(torch.as_tensor(mean.verts), torch.as_tensor(mean.rel_root))
        model.train()
        base = LossWeights()
        _, terms = two_hand_loss(model(batch["image"]), batch, faces, pool, base, progress=1.0)
        for term in terms:
            only = {f.name: (getattr(base, f.name) if f.name in (term, "edge_from") else 0.0)
                    for f in dataclasses.fields(base)}
            model.zero_grad()
            loss, _ = two_hand_loss(model(batch["image"]), batch, faces, pool, LossWeights(**only), progress=1.0)
            loss.backward()
            norm = {part: float(sum(p.grad.pow(2).sum() for n, p in model.named_parameters()
                                    if p.grad is not None and n.startswith(part)) ** 0.5) for part in ("image", "pose")}
            rows.append({"head": head, "term": term, "value": terms[term], "grad_image": norm["image"],
                         "grad_pose": norm["pose"]})
    return rows


def decompose(data: Path) -> dict:
    """How much of the constant's error is orientation: the mean hands rotated per held-out hand (Kabsch).

    Returns MPJPE (IntagHand protocol, mm) of the mean constant, of the mean articulation under each
    hand's best rotation about its root, and under its best in-plane (camera z) rotation only.
    """
    from hand_nas.baseline import mean_shape
    from hand_nas.data.dataset import split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.metrics import mpjpe

    s = open_samples(data)
    tr, va = split_indices(len(s), 0.1, seed=0)
    mean = mean_shape(s["verts"], s["joints"], s["valid"], tr)
    gt = np.asarray(s["joints"], np.float64)[va]
    gt = gt - gt[:, :, 9:10]

    def best_rotation(a, b):  # rotation R minimising |a R - b| (rows are points)
        u, _, vt = np.linalg.svd(a.T @ b)
        d = np.ones(len(u))
        d[-1] = np.sign(np.linalg.det(u @ vt))
        return u @ np.diag(d) @ vt

    full, planar = np.empty_like(gt), np.empty_like(gt)
    for i in range(len(gt)):
        for h in range(2):
            a = mean.joints[h]
            full[i, h] = a @ best_rotation(a, gt[i, h])
            planar[i, h] = np.concatenate([a[:, :2] @ best_rotation(a[:, :2], gt[i, h, :, :2]), a[:, 2:]], 1)
    score = lambda p: float(mpjpe(torch.as_tensor(p), torch.as_tensor(gt)).mean())  # noqa: E731
    out = {"mean_constant_mm": score(np.broadcast_to(mean.joints, gt.shape).copy()),
           "mean_articulation_true_rotation_mm": score(full), "mean_articulation_true_inplane_rotation_mm": score(planar)}
    out.update(generator_orientation(s, tr, va, gt, score))
    return out


def generator_orientation(s, tr, va, gt, score) -> dict:
    """The generator's own orientation parts (the samples' global rotations, ``pose[:, :, :3]``): the mean
    articulation in a frame that undoes the in-plane roll (fingers' image direction), the palm/back side
    (which way the hand's dorsal axis faces), both, or the whole rotation; the mean taken over the training
    split in that frame, then put back with each held-out hand's own part."""
    from scipy.spatial.transform import Rotation

    joints = np.asarray(s["joints"], np.float64)
    rel = joints - joints[:, :, 9:10]
    rot = Rotation.from_rotvec(np.asarray(s["pose"])[:, :, :3].reshape(-1, 3)).as_matrix().reshape(len(rel), 2, 3, 3)
    fingers = rot[..., :, 1]  # MANO +y (towards the fingers) in the camera frame
    roll = np.arctan2(fingers[..., 0], fingers[..., 1])
    back = rot[..., 2, 2] > 0  # the dorsal +z axis points away from the camera
    c, sn, z = np.cos(-roll), np.sin(-roll), np.zeros_like(roll)
    undo_roll = np.stack([np.stack([c, -sn, z], -1), np.stack([sn, c, z], -1), np.stack([z, z, z + 1], -1)], -2)
    flip = np.diag([-1.0, 1.0, -1.0])
    eye = np.broadcast_to(np.eye(3), rot.shape)
    frames = {"roll": undo_roll, "side": np.where(back[..., None, None], eye @ flip, eye),
              "roll_and_side": np.where(back[..., None, None], undo_roll @ flip, undo_roll), "rotation": rot}
    out = {}
    for name, f in frames.items():  # f maps canonical -> camera; its transpose takes the joints back
        canonical = np.einsum("nhji,nhvj->nhvi", f, rel)
        mean = canonical[tr].mean(0)
        out[f"mean_articulation_true_{name}_generator_mm"] = score(np.einsum("nhij,hvj->nhvi", f[va], mean))
    return out


def probe(steps: int, seed: int, data: Path, lr: float | None = None) -> list[dict]:
    """``mean_init_noaug`` with extra figures at every evaluation: does the model fit its training images,
    does BatchNorm's eval mode lose it, and how much do its predictions vary from image to image?"""
    import copy

    from hand_nas.baseline import mean_shape
    from hand_nas.data.dataset import TwoHandDataset, split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model
    from hand_nas.train import evaluate, evaluate_outputs, held_out_loader, make_loader, train

    cfg = dataclasses.replace(proxy_cfg(steps, {"train": {"augment": False}}), seed=seed, eval_every=max(steps // 3, 1))
    if lr:
        cfg = dataclasses.replace(cfg, lr=lr)
    s = open_samples(data)
    tr, _ = split_indices(len(s), cfg.val_fraction, seed=0)
    mean = mean_shape(s["verts"], s["joints"], s["valid"], tr)
    model_cfg = resolve_model("lwa_hand")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(model_cfg)
    model.pose.set_mean_shape(torch.as_tensor(mean.verts), torch.as_tensor(mean.rel_root))
    val = held_out_loader(data, cfg)
    train_sub = make_loader(TwoHandDataset(data, cfg.resolution, tr[:200]), 16, False, 0, 0)
    rows = []

    def spread(m):  # std over held-out images of the predicted root-relative joints, mm
        with torch.no_grad():
            m.eval()
            js = torch.cat([m(b["image"]).joints for b in val])
        return float(js.std(0).mean() * 1000)

    def on_eval(step, metrics):
        train_mode = copy.deepcopy(model).train()  # BatchNorm on batch statistics; the copy's stats are thrown away
        with torch.no_grad():
            tm = evaluate_outputs(lambda x: (lambda o: (o.verts, o.joints, o.rel_root))(train_mode(x)), val)
        rows.append({"step": step, "held_out_mm": metrics.mpjpe_mm, "held_out_bn_batch_stats_mm": tm.mpjpe_mm,
                     "train_images_mm": evaluate(model, train_sub).mpjpe_mm, "pred_spread_mm": spread(copy.deepcopy(model))})
        print(rows[-1], flush=True)
        return False

    gt = np.asarray(s["joints"], np.float64)[split_indices(len(s), cfg.val_fraction, seed=0)[1]]
    print({"gt_spread_mm": float((gt - gt[:, :, 9:10]).std(0).mean() * 1000)})
    train(model_cfg, cfg, data, model=model, on_eval=on_eval)
    return rows


def table() -> dict:
    runs = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]
    groups: dict[tuple, list] = {}
    for r in runs:
        groups.setdefault((r["variant"], r["steps"]), []).append(r)
    rows = []
    for (name, steps), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], list(VARIANTS).index(kv[0][0]))):
        rs.sort(key=lambda r: r["seed"])
        vals = [r["mpjpe_mm"] for r in rs]
        base = rs[0]["baseline_mpjpe_mm"]
        rows.append({"variant": name, "steps": steps, "batch": rs[0]["batch"], "resolution": rs[0]["resolution"],
                     "seeds": [r["seed"] for r in rs], "mpjpe_mm": vals, "mean_mm": statistics.fmean(vals),
                     "spread_mm": max(vals) - min(vals), "init_mpjpe_mm": [r["init_mpjpe_mm"] for r in rs],
                     "baseline_mpjpe_mm": base, "ratio_to_baseline": statistics.fmean(vals) / base,
                     "seconds_mean": statistics.fmean(r["seconds"] for r in rs)})
    extra = {}
    for key, name in (("grad_at_init", "grads"), ("orientation_decomposition", "decompose")):
        path = RUNS.parent / f"learning_diagnosis_{name}.json"
        extra[key] = json.loads(path.read_text()) if path.exists() else None
    extra["probes"] = {p.stem.removeprefix("learning_diagnosis_probe_"): json.loads(p.read_text())
                       for p in sorted(RUNS.parent.glob("learning_diagnosis_probe_*.json"))}
    summary = {"model": "lwa_hand", "space": "search_spaces/lwa.yaml", "data": "synthetic n=2000 (held-out 200)",
               "protocol": "IntagHand (root J9 + bone-length scale), mm", "rows": rows, **extra}
    print(f"{'variant':20s} {'steps':>5} {'seeds':>6}  {'MPJPE per seed (mm)':24s} {'mean':>6} {'spread':>6}"
          f" {'init':>6} {'baseline':>8} {'ratio':>5}")
    for r in rows:
        per = " / ".join(f"{v:.2f}" for v in r["mpjpe_mm"])
        print(f"{r['variant']:20s} {r['steps']:>5} {','.join(map(str, r['seeds'])):>6}  {per:24s} {r['mean_mm']:6.2f}"
              f" {r['spread_mm']:6.2f} {statistics.fmean(r['init_mpjpe_mm']):6.2f} {r['baseline_mpjpe_mm']:8.2f}"
              f" {r['ratio_to_baseline']:5.2f}")
    SUMMARY.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main() -> None:
    from hand_nas.data.synthetic import SYNTH_VERSION, cached_synthetic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="*", default=[], choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=0, help="training steps (0: the proxy's)")
    ap.add_argument("--grad", action="store_true", help="loss terms and gradient norms at init")
    ap.add_argument("--decompose", action="store_true", help="the constant's error with the true orientation")
    ap.add_argument("--n", type=int, default=2000, help="synthetic samples (8000: the set lwa.yaml trains on)")
    ap.add_argument("--probe", action="store_true", help="fit of the training images, BatchNorm, prediction spread")
    ap.add_argument("--lr", type=float, default=0.0, help="peak learning rate for --probe (0: the proxy's)")
    ap.add_argument("--table", action="store_true", help="print and store the table of every stored run")
    args = ap.parse_args()
    torch.set_num_threads(1)  # one core per run (the machine is shared); runs go in parallel processes
    data = cached_synthetic(args.n, progress=False)
    RUNS.mkdir(parents=True, exist_ok=True)
    if args.grad:
        rows = grad_table(data)
        (RUNS.parent / "learning_diagnosis_grads.json").write_text(json.dumps(rows, indent=1) + "\n")
        print(f"{'head':10s} {'term':9s} {'value':>9s} {'|grad| image':>12s} {'|grad| pose':>12s}")
        for r in rows:
            print(f"{r['head']:10s} {r['term']:9s} {r['value']:9.3f} {r['grad_image']:12.3f} {r['grad_pose']:12.3f}")
    if args.decompose:
        d = decompose(data)
        name = "learning_diagnosis_decompose" + ("" if args.n == 2000 else f"_n{args.n}_v{SYNTH_VERSION}")
        (RUNS.parent / f"{name}.json").write_text(json.dumps(d, indent=1) + "\n")
        print(json.dumps(d, indent=1))
        for k, v in d.items():
            print(f"{k:45s} {v:6.2f} mm")
    if args.probe:
        for seed in args.seeds:
            rows = probe(args.steps or 150, seed, data, args.lr or None)
            tag = f"{args.steps or 150}_seed{seed}" + (f"_lr{args.lr:g}" if args.lr else "")
            (RUNS.parent / f"learning_diagnosis_probe_{tag}.json").write_text(json.dumps(rows, indent=1) + "\n")
    for name in args.variants:
        for seed in args.seeds:
            steps = args.steps or proxy_cfg(None, VARIANTS[name]).steps
            path = RUNS / f"{name}_{steps}_seed{seed}.json"
            if path.exists():
                print(f"{path.name}: stored", file=sys.stderr)
                continue
            r = run_one(name, args.steps or None, seed, data)
            path.write_text(json.dumps(r, indent=1) + "\n")
            print(f"{name} steps {r['steps']} seed {seed}: MPJPE {r['mpjpe_mm']:.2f} mm (init {r['init_mpjpe_mm']:.2f},"
                  f" baseline {r['baseline_mpjpe_mm']:.2f}) in {r['seconds']:.0f} s", flush=True)
    if args.table:
        table()


if __name__ == "__main__":
    main()
