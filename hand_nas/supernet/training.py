"""Training a supernet once (BigNAS's sandwich rule), resumable, on one process or with torch DDP.

Per step: the largest subnet on the labels (the recipe's loss set), the smallest and ``n_random``
random ones on the labels plus ``kd`` x the L1 distance to the largest's detached 3D outputs (in-place
distillation, OFA's label + distillation form); the losses are summed and one backward pass and one
Adam step follow. Every ``eval_every`` steps the largest and smallest subnets are extracted, their
BatchNorm statistics recalibrated, and scored on the held-out split beside the mean-shape baseline.

The run lives in ``.<out>.partial/`` (``hand_nas.data.resumable``) with snapshots of the shared tensors,
Adam's state, the RNG streams, the subnet sampler's state and the data position; the same command after
a kill -9 continues from the newest. At the end ``out`` holds the supernet (``Supernet.save``) with its
history, the images each subnet position saw and the compute spent.

Data parallel: under ``torchrun --nproc-per-node N`` (gloo on CPU, nccl on CUDA) every rank draws the same
subnets, takes its 1/N of each global batch, and DDP averages the gradients: the same global batch as one
process, and the same loss up to BatchNorm, which normalises over each rank's share (no SyncBatchNorm; the
statistics are recalibrated per subnet before scoring anyway). Rank 0 writes every file.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from hand_nas.config import TrainCfg
from hand_nas.errors import HandNasError


@dataclass(frozen=True)
class SupernetRecipe:
    """A named supernet training.

    Attributes:
        train: steps, batch (global), resolution, lr schedule, loss set, evaluation interval, seed.
        n_random: random subnets per step beside the largest and the smallest.
        kd: weight of the distillation term for the non-largest subnets.
        save_every: steps between snapshots (what a kill can lose).
        synthetic_n: the synthetic set ``--data synthetic`` means.
        calib_batches: BatchNorm recalibration batches per scored subnet.
        eval_images: held-out images scored during training (None: the whole split).
        cover_samples: random configurations in the shape cover (``Supernet``).
        needs_init: the recipe continues a trained supernet (``init``): its schedule restarts from there.
        sandwich: False trains the largest subnet alone (no smallest, no random ones): the supernet trained as
            one network, which ``experiments/supernet_largest_alone.py`` sets beside the same network trained
            stand-alone to measure what the supernet's code path costs apart from weight sharing.
        about: one line for ``--help`` and the README.
    """

    train: TrainCfg
    n_random: int = 2
    kd: float = 1.0
    save_every: int = 50
    synthetic_n: int = 8000
    calib_batches: int = 8
    eval_images: int | None = None
    cover_samples: int = 256
    needs_init: bool = False
    sandwich: bool = True
    about: str = ""


RECIPES = {
    "smoke": SupernetRecipe(TrainCfg(resolution=64, steps=6, batch=4, lr=1e-3, warmup=1, eval_every=3, augment=False,
                                     losses="3d"),
                            n_random=1, save_every=2, synthetic_n=24, calib_batches=1, eval_images=8, cover_samples=16,
                            about="tests: 6 steps at 64 px, a snapshot every 2"),
    # lwa.yaml's reference training (retrain's `standard`: 128 px, batch 16, lr 2e-3, every IntagHand loss,
    # no augmentation, 8000 synthetic images) with the sandwich's four subnets a step: ~3.5 s a step on one
    # core (Xeon, 1 thread), so 1000 steps are about an hour; a third of `standard`'s 3000 steps per subnet.
    "lwa": SupernetRecipe(TrainCfg(resolution=128, steps=1000, batch=16, lr=2e-3, warmup=60, eval_every=250,
                                   augment=False, losses="intaghand"),
                          n_random=2, kd=1.0, save_every=25, synthetic_n=8000, calib_batches=8,
                          about="lwa.yaml in about an hour of one core: 1000 sandwich steps (4 subnets) at 128 px, "
                                "batch 16, 8000 synthetic images"),
    # The second lwa.yaml supernet stage: from a finished `lwa` run (--init), 1000 more steps with three random
    # subnets a step (the middle of the space trained 1.5x as often), warm restart at half the peak learning rate,
    # another seed (new data order and subnet draws). ~4.1 s a step on one core: about 70 minutes.
    "lwa-continue": SupernetRecipe(TrainCfg(resolution=128, steps=1000, batch=16, lr=1e-3, warmup=30, eval_every=250,
                                            augment=False, losses="intaghand", seed=1),
                                   n_random=3, kd=1.0, save_every=25, synthetic_n=8000, calib_batches=8, needs_init=True,
                                   about="1000 more sandwich steps (3 random) from a trained lwa supernet (--init), "
                                         "lr 1e-3 warm restart"),
    # experiments/supernet_ddp.py: one process against torchrun's two at the same global batch, in minutes
    "short": SupernetRecipe(TrainCfg(resolution=64, steps=40, batch=16, lr=2e-3, warmup=5, eval_every=40,
                                     augment=False, losses="3d"),
                            n_random=2, save_every=20, synthetic_n=600, calib_batches=2, eval_images=32,
                            cover_samples=32, about="DDP check: 40 sandwich steps at 64 px, batch 16"),
}
# lwa-continue at the peak learning rate of retrain's `standard` (2e-3), nothing else changed (same seed: the same
# data order and subnet draws): after lwa-continue the largest subnet was 3.0 mm behind lwa_hand trained alone on
# as many images (42.49 vs 39.51 mm), and lwa-continue's peak is half of what the stand-alone runs use
RECIPES["lwa-continue-lr2e-3"] = replace(RECIPES["lwa-continue"], train=replace(RECIPES["lwa-continue"].train, lr=2e-3),
                                         about="lwa-continue at lr 2e-3, the stand-alone runs' peak")
# the `lwa` recipe with its largest subnet alone: the diagnosis of why the sandwich's teacher learns slower than
# one network trained alone (experiments/supernet_largest_alone.py), and Once-for-All's first phase
RECIPES["lwa-largest"] = replace(RECIPES["lwa"], sandwich=False, n_random=0,
                                 about="the lwa recipe training only the largest subnet: the teacher first "
                                       "(continue with lwa-shrink)")
# Once-for-All's order: the largest network trained first (an `lwa-largest` run, --init), then the sandwich with the
# trained teacher distilling into every subnet from the first step (lwa-continue's settings, 500 steps)
RECIPES["lwa-shrink"] = replace(RECIPES["lwa-continue"], train=replace(RECIPES["lwa-continue"].train, steps=500),
                                about="500 sandwich steps (3 random) from an lwa-largest run (--init): the teacher "
                                      "trained first, as Once-for-All does")


def get_recipe(name: str) -> SupernetRecipe:
    if name not in RECIPES:
        raise HandNasError(f"supernet recipe {name!r}: known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


@dataclass
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Dist:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


class RankSampler(torch.utils.data.Sampler):
    """This rank's share of every global batch of ``base`` (rank r takes items [r*b, (r+1)*b) of each)."""

    def __init__(self, base, batch: int, dist: Dist) -> None:
        self.base, self.batch, self.dist = base, batch, dist
        self.per_rank = batch // dist.world

    def __len__(self) -> int:
        return len(self.base) // self.batch * self.per_rank

    def __iter__(self):
        chunk = []
        for i in self.base:
            chunk.append(i)
            if len(chunk) == self.batch:
                yield from chunk[self.dist.rank * self.per_rank:(self.dist.rank + 1) * self.per_rank]
                chunk = []


class SandwichStep(nn.Module):
    """One step's forward: every subnet of the step on the batch, the summed loss (what DDP wraps)."""

    def __init__(self, supernet, weights, faces, pool252, kd: float) -> None:
        super().__init__()
        self.supernet, self.weights, self.kd = supernet, weights, kd
        self.register_buffer("faces", faces, persistent=False)
        self.register_buffer("pool252", pool252, persistent=False)

    def forward(self, batch: dict, cfgs: list, progress: float, amp_dtype=None):
        from hand_nas.losses import two_hand_loss
        from hand_nas.supernet.sandwich import distill_loss

        total, losses, teacher = 0.0, [], None
        for i, cfg in enumerate(cfgs):
            with torch.autocast(batch["image"].device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out = self.supernet(batch["image"], cfg)
            out = out.float() if amp_dtype is not None else out
            loss, _ = two_hand_loss(out, batch, self.faces, self.pool252, self.weights, progress=progress)
            if teacher is None:
                teacher = out
            else:
                loss = loss + self.kd * distill_loss(out, teacher, self.weights)
            total = total + loss
            losses.append(float(loss.detach()))
        return total, losses


@dataclass
class SupernetRun:
    """What ``train_supernet`` returns (and writes into supernet.json)."""

    steps: int
    seconds: float
    history: list = field(default_factory=list)
    losses: list = field(default_factory=list)  # the summed loss of every step (averaged over DDP ranks)
    baseline: dict | None = None
    compute: dict | None = None
    out: str | None = None
    loop_seconds: float | None = None  # this invocation's training loop, without rank 0's evaluations


def _compute(seconds: float, dev: torch.device, dist: Dist) -> dict:
    if dev.type == "cuda":
        return {"gpu_hours": round(seconds * dist.world / 3600, 4), "device": torch.cuda.get_device_name(dev)}
    threads = torch.get_num_threads()
    return {"core_hours": round(seconds * dist.world * threads / 3600, 4), "processes": dist.world,
            "threads_per_process": threads, "cpu": _cpu_name()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _parent(init, space, mano_dir) -> tuple:
    """(the supernet ``init`` names, its record for the lineage), checked to be trained on ``space``'s file."""
    from hand_nas.supernet.manifest import SPACE
    from hand_nas.supernet.supernet import load_supernet

    net, record = load_supernet(init, mano_dir)
    if (Path(record["folder"]) / SPACE).read_text() != Path(space.source).read_text():
        raise HandNasError(f"{init}: --init supernet was trained on another space ({record.get('space')}), "
                           f"expected the text of {space.source}")
    return net, {"sha256": record["sha256"], "folder": record["folder"], "recipe": record.get("recipe"),
                 "steps": record.get("steps"), "images_seen": record.get("images_seen"),
                 "compute": record.get("compute"), "init": record.get("init"),
                 "compute_total": record.get("compute_total", record.get("compute")),
                 "images_seen_total": record.get("images_seen_total", record.get("images_seen"))}


def _lineage(parent: dict, compute: dict, images: int, n_random: int) -> dict:
    """supernet.json's record of a warm-started run: the parent, and its compute and images added to this run's."""
    total, before = dict(compute), parent["compute_total"] or {}
    for k in ("core_hours", "gpu_hours"):
        if k in total or k in before:
            total[k] = round(total.get(k, 0.0) + before.get(k, 0.0), 4)
    seen = parent["images_seen_total"] or {}
    images_total = {"largest": images + seen.get("largest", 0), "smallest": images + seen.get("smallest", 0),
                    "subnet_passes": images * (2 + n_random) + seen.get("subnet_passes", 0)}
    return {"init": {k: parent[k] for k in ("sha256", "folder", "recipe", "steps", "images_seen", "compute", "init")},
            "compute_total": total, "images_seen_total": images_total}


def train_supernet(space_name: str, recipe: str, out: str | Path, data: str = "synthetic", device: str = "cpu",
                   precision: str = "fp32", mano_dir=None, overwrite: bool = False, resume: bool = True,
                   progress: bool = True, log=print, steps: int | None = None, seed: int | None = None,
                   init: str | Path | None = None) -> SupernetRun:
    """Train the supernet of ``space_name`` under ``recipe`` into ``out`` (see the module docstring).

    Args:
        steps: override the recipe's step count (a shorter run of the same schedule is another run).
        seed: override the recipe's seed (initialisation, subnet draws, data order).
        init: a finished supernet of the same space and layout to start from (its shared tensors; a fresh
            optimizer and the recipe's schedule from step 0). Its sha256, steps, images and compute are recorded,
            and ``compute_total`` / ``images_seen_total`` add them to this run's.
    """
    from tqdm import tqdm

    from hand_nas.baseline import mean_shape, score_constant
    from hand_nas.data.dataset import TwoHandDataset, split_indices
    from hand_nas.data.resumable import ResumableBuild, partial_dir
    from hand_nas.data.samples import open_samples
    from hand_nas.device import resolve_device, resolve_precision
    from hand_nas.hand.hierarchy import load_hierarchy
    from hand_nas.hand.mano import hand_topology
    from hand_nas.losses import LOSS_SETS
    from hand_nas.models import build_model
    from hand_nas.search.runner import data_dir
    from hand_nas.search.space import load_space
    from hand_nas.supernet.evaluation import SubnetScorer
    from hand_nas.supernet.sandwich import SubnetSampler
    from hand_nas.supernet.supernet import Supernet
    from hand_nas.train import ShuffleSampler, load_snapshot, restore_snapshot, save_snapshot, step_inputs

    rec = get_recipe(recipe)
    if rec.needs_init and init is None:
        raise HandNasError(f"recipe {recipe!r} continues a trained supernet: give --init FOLDER")
    cfg = rec.train if steps is None else replace(rec.train, steps=steps)
    cfg = cfg if seed is None else replace(cfg, seed=seed)
    dist = Dist.from_env()
    if cfg.batch % dist.world:
        raise HandNasError(f"recipe {recipe!r}: batch {cfg.batch} does not split over {dist.world} processes")
    dev = resolve_device(device)
    if dev.type == "cuda" and dist.world > 1:
        dev = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(dev)
    amp_dtype, scaled = resolve_precision(precision, dev)
    if scaled:
        raise HandNasError("supernet training: --precision fp16 needs a loss scaler per subnet; use bf16 or fp32")
    if dist.world > 1 and not torch.distributed.is_initialized():
        import datetime

        # rank 0 scores subnets on the CPU while the others wait in the next step: allow hours, not gloo's 30 min
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                             timeout=datetime.timedelta(hours=3))
    space = load_space(space_name)
    out = Path(out)
    from hand_nas.atomic import check_output

    check_output(out, inputs=[data] if data != "synthetic" else [], overwrite=True)  # ours or new, never in the data
    if not dist.main:
        dist.barrier()  # rank 0 generates the synthetic set first
    folder = data_dir(data, rec.synthetic_n, progress=dist.main)
    if dist.main:
        dist.barrier()
    parent_net, parent = _parent(init, space, mano_dir) if init is not None else (None, None)
    params = {"space": space.source, "space_text": Path(space.source).read_text(), "recipe": recipe,
              "train": cfg.to_dict(), "n_random": rec.n_random, "kd": rec.kd, "data": str(folder),
              "precision": precision, **({"init": parent["sha256"]} if parent else {})}
    samples = open_samples(folder)
    tr_idx, va_idx = split_indices(len(samples), cfg.val_fraction, seed=0)
    mean = mean_shape(samples["verts"], samples["joints"], samples["valid"], tr_idx)
    baseline = score_constant(mean, samples["verts"], samples["joints"], va_idx).to_dict()

    build = ResumableBuild(out, params, overwrite=overwrite, resume=resume) if dist.main else None
    if build is not None:
        build.__enter__()
    try:
        dist.barrier()
        snap_dir = partial_dir(out) / "snapshots"
        torch.manual_seed(cfg.seed)
        # warm start: the parent itself (its layout and tensors); the same data's mean hand is set again below
        net = parent_net if parent_net is not None else \
            Supernet(space, mano_dir, cover_samples=rec.cover_samples, seed=cfg.seed)
        base_model = build_model(space.base_cfg(), mano_dir)  # the training split's mean hand, in every subnet
        base_model.pose.set_mean_shape(torch.as_tensor(mean.verts), torch.as_tensor(mean.rel_root))
        for name in ("pose.template", "pose.rel_root.bias"):
            net.set_shared(name, base_model.state_dict()[name])
        net.to(dev).reset_cache()
        topo = hand_topology(mano_dir)
        step_fn = SandwichStep(net, LOSS_SETS[cfg.losses], torch.as_tensor(topo.faces),
                               torch.as_tensor(load_hierarchy(topo.faces).pool_matrix(252)).float(), rec.kd).to(dev)
        model = step_fn
        if dist.world > 1:
            # every rank builds faces/pool252 itself: nothing to broadcast each step (torch 2.13's name for
            # broadcast_buffers=False; the one sync at init copies rank 0's buffers, which every rank already has)
            model = nn.parallel.DistributedDataParallel(step_fn, find_unused_parameters=True, forward_sync_buffers=False)
        trainable = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.Adam(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scaler = torch.amp.GradScaler(dev.type, enabled=False)
        sampler = SubnetSampler(space, rec.n_random, seed=cfg.seed, largest_only=not rec.sandwich)
        g = torch.Generator().manual_seed(cfg.seed)
        base_sampler = ShuffleSampler(len(tr_idx), g)
        ds = TwoHandDataset(folder, cfg.resolution, tr_idx, None, heatmaps=True, seed=cfg.seed)
        loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch // dist.world,
                                             sampler=RankSampler(base_sampler, cfg.batch, dist), drop_last=True,
                                             num_workers=cfg.workers, pin_memory=dev.type == "cuda")
        scorer = SubnetScorer.on(folder, cfg, rec.calib_batches, rec.eval_images, device=str(dev)) \
            if dist.main else None
        key = json.loads(json.dumps(params))
        snap = load_snapshot(snap_dir, key)
        step, epoch, done_in_epoch, before, history, curve = 0, 0, 0, 0.0, [], []
        if snap is not None:
            path, state, tensors = snap
            restore_snapshot(state, tensors, net, opt, scaler, base_sampler, dev, cfg.batch)
            sampler.set_state(state["subnet_sampler"])
            step, epoch, done_in_epoch = state["step"], state["epoch"], state["batches_done"]
            history, before, curve = state["history"], state["seconds"], state.get("losses", [])
            if dist.main:
                log(f"resuming at step {step} of {cfg.steps} from {path}")
        t0, eval_seconds = time.perf_counter(), 0.0

        def scored(at: int, loss: float | None) -> dict:
            row = {"step": at, "loss": loss}
            for name, sub in (("largest", sampler.largest), ("smallest", sampler.smallest)):
                _, m, sec = scorer.score(net, sub)
                row[name] = {**m.to_dict(), "seconds": round(sec, 2)}
            net.train()
            return row

        if step == 0 and dist.main and not history:
            history.append(scored(0, None))
        bar = tqdm(total=cfg.steps, initial=step, desc=f"supernet {space.name}", unit="step",
                   disable=not (progress and dist.main))
        net.train()
        while step < cfg.steps:
            ds.set_epoch(epoch)
            for batch in loader:
                batch = step_inputs(opt, step, cfg, batch, dev)
                total, losses = model(batch, sampler.step(), step / cfg.steps, amp_dtype)
                if not torch.isfinite(total):
                    raise FloatingPointError(f"supernet loss is {float(total)} at step {step} (subnets {losses})")
                seen = total.detach().clone()
                if dist.world > 1:  # the global batch's loss: the mean of the ranks' equal shares
                    torch.distributed.all_reduce(seen)
                    seen /= dist.world
                curve.append(round(float(seen), 5))
                opt.zero_grad(set_to_none=True)
                total.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 5.0)
                opt.step()
                step += 1
                done_in_epoch += 1
                bar.update(1)
                bar.set_postfix(loss=f"{float(total.detach()):.2f}", largest=f"{history[-1]['largest']['mpjpe_mm']:.1f}"
                                if history else "-")
                if dist.main and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps):
                    t_eval = time.perf_counter()
                    history.append(scored(step, float(total.detach())))
                    eval_seconds += time.perf_counter() - t_eval
                if rec.save_every and step % rec.save_every == 0 and step < cfg.steps:
                    if dist.main:
                        save_snapshot(snap_dir, step, {
                            "key": key, "step": step, "epoch": epoch, "batches_done": done_in_epoch,
                            "history": history, "seconds": before + time.perf_counter() - t0,
                            "subnet_sampler": sampler.state(), "losses": curve}, net, opt, scaler, base_sampler, dev)
                    dist.barrier()
                if step >= cfg.steps:
                    break
            else:
                epoch, done_in_epoch = epoch + 1, 0
        bar.close()
        seconds = before + time.perf_counter() - t0
        run = SupernetRun(step, seconds, history, curve, baseline, _compute(seconds, dev, dist), str(out),
                          loop_seconds=time.perf_counter() - t0 - eval_seconds)
        if dist.main:
            from hand_nas.atomic import MARKER, MARKER_TEXT

            images = step * cfg.batch
            lineage = _lineage(parent, run.compute, images, rec.n_random) if parent else {}
            net.cpu()
            net.save(build.folder, recipe=recipe, train=cfg.to_dict(), n_random=rec.n_random, kd=rec.kd,
                     calib_batches=rec.calib_batches, mano=str(mano_dir or "procedural"),
                     data=str(folder), precision=precision, steps=step, seconds=round(seconds, 1),
                     images_seen={"largest": images, "smallest": images if rec.sandwich else 0,
                                  "random_each_step": rec.n_random,
                                  "subnet_passes": images * (2 + rec.n_random if rec.sandwich else 1)},
                     compute=run.compute, baseline=baseline, history=history, losses=curve, node=socket.gethostname(),
                     loop_seconds=round(run.loop_seconds, 2),
                     finished_at=time.time(), sandwich={"largest": sampler.largest.to_dict(),
                                                        "smallest": sampler.smallest.to_dict()}, **lineage)
            (build.folder / MARKER).write_text(MARKER_TEXT)
            import shutil

            shutil.rmtree(snap_dir, ignore_errors=True)
            build.finish()
        dist.barrier()
        return run
    finally:
        if build is not None:
            build.__exit__(None, None, None)

