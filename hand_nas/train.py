"""Proxy training: one readable loop, a pure learning-rate function, evaluation on a held-out split.

``train`` builds the model from its config, splits the sample directory deterministically, trains
with Adam at ``TrainCfg.resolution`` (FLOPs are still reported at 256) and returns the held-out
metrics at initialisation and after training, beside the split's mean-shape baseline (what a
constant prediction scores; ``hand_nas.baseline``). A fresh graph-decoder model starts from that mean
hand (``GraphDecoder.set_mean_shape``). ``on_eval`` (optional) sees every evaluation and may stop
the run early by returning True (the search uses it for pruning).

The run draws from its own random streams (seeded by ``TrainCfg.seed``): the caller's global torch
and numpy states are left as they were, and so is a passed model's train/eval mode.

Long runs are resumable: with ``resume_dir`` and ``save_every`` the loop writes a snapshot every
``save_every`` steps (weights, optimizer, GradScaler, the torch RNG states, the data position: epoch,
batches done in it and the shuffling generator's state at the epoch's start), atomically, as
``resume_dir/step_NNNNNNNN/``; a later call with the same arguments continues from the newest one
and ends with the same weights as a run that was never interrupted (bit for bit on a CPU). Snapshots
are safetensors + JSON, nothing pickled.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hand_nas.config import ModelCfg, TrainCfg
from hand_nas.errors import HandNasError
from hand_nas.losses import LossWeights, two_hand_loss
from hand_nas.metrics import MetricAccumulator, Metrics


def lr_at(step: int, cfg: TrainCfg) -> float:
    """Linear warm-up to ``cfg.lr``, then cosine decay to 5% of it at ``cfg.steps``.

    With ``cfg.decay_step`` > 0 the cosine gives way to IntagHand's step schedule: ``cfg.lr`` until
    that step, 0.1 x ``cfg.lr`` from it on.
    """
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.decay_step:
        return cfg.lr * (0.1 if step >= cfg.decay_step else 1.0)
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def step_inputs(opt, step: int, cfg: TrainCfg, batch: dict, dev) -> dict:
    """Set the optimizer's learning rate for ``step`` (``lr_at``) and return ``batch`` on ``dev``."""
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg)
    if dev.type != "cpu":
        batch = {k: v.to(dev, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
    return batch


@dataclass
class TrainResult:
    """Outcome of a proxy run (metrics in mm)."""

    metrics: Metrics
    init_metrics: Metrics | None  # None: train(init_eval=False)
    history: list = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0
    stopped_early: bool = False
    checkpoint: str | None = None
    baseline: Metrics | None = None  # the split's mean-shape constant, same protocol


def evaluate(model: torch.nn.Module, loader) -> Metrics:
    """Held-out metrics; predictions are root-relative, so the relative root comes from ``rel_root``."""
    device = next(model.parameters()).device  # evaluate where the model lives; metrics on the CPU

    def predict(images):
        out = model(images.to(device, non_blocking=True))
        return tuple(t.cpu() if t is not None else None for t in (out.verts, out.joints, out.rel_root))

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            metrics = evaluate_outputs(predict, loader)
    finally:
        model.train(was_training)
    return metrics


def evaluate_outputs(predict, loader) -> Metrics:
    """Metrics of any predictor (torch, onnxruntime): ``predict(images) -> (verts|None, joints, rel_root|None)``.

    Shapes: images (B, 3, S, S); verts (B, 2, 778, 3), joints (B, 2, 21, 3), rel_root (B, 3), metres.
    """
    acc = MetricAccumulator()
    for batch in loader:
        verts, joints, rel_root = (torch.as_tensor(t) if t is not None else None for t in predict(batch["image"]))
        gt_j = batch["joints"] - batch["joints"][:, :1, 9:10]  # left root at the origin
        gt_v = batch["verts"] - batch["joints"][:, :1, 9:10]
        pj = joints.clone()
        pj[:, 1] += rel_root.unsqueeze(1) if rel_root is not None else 0
        pv = verts.clone() if verts is not None else gt_v * float("nan")
        if verts is not None and rel_root is not None:
            pv[:, 1] += rel_root.unsqueeze(1)
        acc.update(pv, pj, gt_v, gt_j)
    return acc.result()


class ShuffleSampler(torch.utils.data.Sampler):
    """A fresh permutation per pass, drawn from ``generator``; can restart a pass part-way through.

    It draws exactly what ``RandomSampler(generator=g)`` draws (the second, empty ``randperm`` is
    RandomSampler's remainder call), so runs keep the data order they had before resuming existed.
    ``epoch_state`` is the generator's state at the start of the current pass: with the number of
    batches done, the whole data position.
    """

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n, self.generator = n, generator
        self.epoch_state: torch.Tensor | None = None
        self._resume: tuple[torch.Tensor, int] | None = None

    def resume(self, epoch_state: torch.Tensor, skip: int) -> None:
        """Make the next pass repeat the one that started at ``epoch_state``, minus its first ``skip`` samples."""
        self._resume = (epoch_state, skip)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        skip = 0
        if self._resume is not None:
            state, skip = self._resume
            self.generator.set_state(state)
            self._resume = None
        self.epoch_state = self.generator.get_state()
        perm = torch.randperm(self.n, generator=self.generator).tolist()
        torch.randperm(self.n, generator=self.generator)  # RandomSampler's remainder draw (see the docstring)
        yield from perm[skip:]


def make_loader(ds, batch: int, shuffle: bool, seed: int, workers: int, pin: bool = False):
    """A DataLoader over ``ds``: shuffled by ``ShuffleSampler`` (epochs reproducible from ``seed``) or in order."""
    g = torch.Generator().manual_seed(seed)
    sampler = ShuffleSampler(len(ds), g) if shuffle else None
    # Workers are started afresh for every pass: persistent ones keep the copy of the dataset they were
    # forked with, so ``set_epoch`` would never reach them and every epoch would repeat epoch 0's augmentations.
    return torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, generator=g, num_workers=workers,
                                       drop_last=shuffle, pin_memory=pin)


def held_out_loader(data: str | Path, cfg: TrainCfg, batch: int = 16):
    """The deterministic held-out split of ``data`` at ``cfg.resolution`` (what ``train`` evaluates on)."""
    from hand_nas.data.dataset import TwoHandDataset, split_indices
    from hand_nas.data.samples import open_samples

    _, va_idx = split_indices(len(open_samples(data)), cfg.val_fraction, seed=0)
    return make_loader(TwoHandDataset(data, cfg.resolution, va_idx), batch, False, cfg.seed, 0)


SNAPSHOT_TENSORS, SNAPSHOT_STATE = "tensors.safetensors", "state.json"


def _run_key(model_cfg: ModelCfg, cfg: TrainCfg, data, precision: str) -> dict:
    """What a snapshot must have been written by to be resumed: the same model, training, data and precision."""
    return json.loads(json.dumps({"model": model_cfg.to_dict(), "train": cfg.to_dict(), "data": str(data),
                                  "precision": precision}))


def _averaged(model, decay: float):
    """The moving average of ``model``'s weights and buffers that ``TrainCfg.ema`` asks for (None when 0)."""
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def save_snapshot(folder: Path, step: int, state: dict, model, opt, scaler, sampler, dev, averaged=None) -> Path:
    """Write ``folder/step_NNNNNNNN`` atomically (a kill mid-write leaves the previous one), then drop older ones."""
    from safetensors.torch import save_file

    from hand_nas.atomic import atomic_dir

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if averaged is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in averaged.state_dict().items()})
    opt_sd = opt.state_dict()
    opt_plain = {}
    for pid, entries in opt_sd["state"].items():
        opt_plain[str(pid)] = {k: v for k, v in entries.items() if not torch.is_tensor(v)}
        tensors.update({f"opt.{pid}.{k}": v.detach().cpu().contiguous() for k, v in entries.items() if torch.is_tensor(v)})
    tensors["rng.torch"] = torch.get_rng_state()
    if dev.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(dev)
    tensors["rng.sampler"] = sampler.epoch_state
    state = {**state, "optimizer": {"param_groups": opt_sd["param_groups"], "state": opt_plain},
             "scaler": scaler.state_dict()}
    target = folder / f"step_{step:08d}"
    with atomic_dir(target, overwrite=True) as tmp:
        save_file(tensors, str(tmp / SNAPSHOT_TENSORS))
        (tmp / SNAPSHOT_STATE).write_text(json.dumps(state))
        for name in (SNAPSHOT_TENSORS, SNAPSHOT_STATE):  # on disk before the rename makes it the one to resume
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
    for old in folder.glob("step_*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def _snapshots(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("step_*") if (p / SNAPSHOT_STATE).is_file() and (p / SNAPSHOT_TENSORS).is_file())


def load_snapshot(folder: Path, key: dict) -> tuple[Path, dict, dict] | None:
    """(path, state, tensors) of the newest complete snapshot in ``folder``, or None; another run's is an error."""
    from hand_nas.atomic import clean_stale
    from hand_nas.files import read_json

    for p in list(folder.iterdir()) if folder.is_dir() else []:  # half-written snapshots of a killed run
        if p.name.startswith(".step_"):
            clean_stale(folder / p.name[1:].split(".")[0])
    snaps = _snapshots(folder)
    if not snaps:
        return None
    path = snaps[-1]
    state = read_json(path / SNAPSHOT_STATE, "training snapshot")
    if state.get("key") != key:
        old = state.get("key") or {}
        diff = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
        raise HandNasError(f"{path}: a snapshot of another run ({', '.join(diff) or 'key'} differ); "
                           "resume with the same arguments or remove the folder")
    return path, state, _snapshot_tensors(path)


def _snapshot_tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path / SNAPSHOT_TENSORS))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise HandNasError(f"{path / SNAPSHOT_TENSORS}: unreadable snapshot ({exc})") from None


def snapshot_model(path: str | Path, mano_dir=None):
    """(model, state) of one snapshot folder (``step_NNNNNNNN``), with the weights the run evaluates at that
    step: the moving average when the run keeps one, else the raw weights; ``state["step"]`` is its step.
    ``mano_dir``: the MANO folder the run trained with (default: the procedural hand)."""
    from hand_nas.files import read_json
    from hand_nas.models import build_model

    path = Path(path)
    state, tensors = read_json(path / SNAPSHOT_STATE, "training snapshot"), _snapshot_tensors(path)
    model = build_model(ModelCfg.from_dict(state["key"]["model"]), mano_dir)
    prefix = "ema.module." if any(k.startswith("ema.module.") for k in tensors) else "model."
    model.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
    return model.eval(), state


def restore_snapshot(state: dict, tensors: dict, model, opt, scaler, sampler, dev, batch: int, averaged=None) -> None:
    """Put a snapshot back: weights, their moving average, optimizer, GradScaler, RNG streams, the data position."""
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    if averaged is not None:
        averaged.load_state_dict({k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}, strict=True)
    opt_state = {int(pid): dict(plain) for pid, plain in state["optimizer"]["state"].items()}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"param_groups": state["optimizer"]["param_groups"], "state": opt_state})
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(tensors["rng.torch"])
    if dev.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], dev)
    sampler.resume(tensors["rng.sampler"], state["batches_done"] * batch)


def train(model_cfg: ModelCfg, cfg: TrainCfg, data: str | Path, checkpoint_dir: str | Path | None = None, mano_dir=None,
          progress: bool = False, on_eval=None, weights: LossWeights | None = None, model=None,
          device: str = "cpu", precision: str = "fp32", resume_dir: str | Path | None = None, save_every: int = 0,
          checkpoint_info: dict | None = None, log=None, init_eval: bool = True) -> TrainResult:
    """Train ``model_cfg`` on the sample directory ``data``; returns held-out metrics.

    Args:
        checkpoint_dir: where to write the checkpoint at the end (None: no checkpoint).
        on_eval: ``fn(step, metrics) -> bool``; True stops training.
        model: start from this module instead of a fresh ``build_model(model_cfg)`` (fine-tuning).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``; batches are pinned and copied
            without blocking on CUDA. Not part of ``TrainCfg``: it changes speed, not what is trained.
        precision: ``fp32``, ``bf16`` (autocast, CPU or CUDA) or ``fp16`` (CUDA, with a GradScaler);
            weights and the optimizer stay fp32, evaluation runs in fp32. Recorded in the checkpoint.
        resume_dir: folder of this run's snapshots: the newest one there is resumed (one written by a
            run with another model, TrainCfg, data or precision is an error), and with ``save_every``
            > 0 a new one is written every ``save_every`` steps. Removed once the run reaches
            ``cfg.steps`` (and its checkpoint is written).
        checkpoint_info: more fields for the checkpoint's config.json (provenance).
        log: ``fn(text)`` for the one line saying that the run resumes.
        init_eval: False skips the held-out evaluation before the first step (``init_metrics`` is then None):
            for a caller that reads only the final metrics, one pass over the held-out split less.
    """
    from tqdm import tqdm

    from hand_nas.baseline import mean_shape, score_constant
    from hand_nas.data.dataset import TwoHandDataset, split_indices
    from hand_nas.data.transforms import AugmentCfg
    from hand_nas.device import resolve_device, resolve_precision
    from hand_nas.data.samples import open_samples
    from hand_nas.hand.hierarchy import load_hierarchy
    from hand_nas.hand.mano import hand_topology
    from hand_nas.models import build_model

    if cfg.resolution % 32:
        raise ValueError(f"resolution {cfg.resolution}: must be a multiple of 32")
    if weights is None:  # the config's named set; an explicit LossWeights (experiments) overrides it
        from hand_nas.losses import LOSS_SETS

        weights = LOSS_SETS[cfg.losses]
    dev = resolve_device(device)
    amp_dtype, scaled = resolve_precision(precision, dev)
    samples = open_samples(data)
    tr_idx, va_idx = split_indices(len(samples), cfg.val_fraction, seed=0)
    # The constant every trained figure is compared with; a fresh model starts from it.
    mean = mean_shape(samples["verts"], samples["joints"], samples["valid"], tr_idx)
    baseline = score_constant(mean, samples["verts"], samples["joints"], va_idx)
    train_ds = TwoHandDataset(data, cfg.resolution, tr_idx, AugmentCfg() if cfg.augment else None, heatmaps=True, seed=cfg.seed)
    train_dl = make_loader(train_ds, cfg.batch, True, cfg.seed, cfg.workers, pin=dev.type == "cuda")
    val_dl = held_out_loader(data, cfg, max(cfg.batch, 16))
    topo = hand_topology(mano_dir)
    faces = torch.as_tensor(topo.faces).to(dev)
    pool252 = torch.as_tensor(load_hierarchy(topo.faces).pool_matrix(252)).to(dev)
    was_training = model.training if model is not None else True
    # fork_rng: initialisation and dropout draw from a stream seeded here, then the caller's state returns.
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        if model is None:
            model = build_model(model_cfg, mano_dir)
            if hasattr(model.pose, "set_mean_shape"):
                model.pose.set_mean_shape(torch.as_tensor(mean.verts), torch.as_tensor(mean.rel_root))
        model.to(dev)
        averaged = _averaged(model, cfg.ema)
        scored = averaged.module if averaged is not None else model  # what is evaluated and checkpointed
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        scaler = torch.amp.GradScaler(dev.type, enabled=scaled)
        sampler = train_dl.sampler
        key = _run_key(model_cfg, cfg, data, precision)
        resume_dir = Path(resume_dir) if resume_dir is not None else None
        snap = load_snapshot(resume_dir, key) if resume_dir is not None else None

        t0 = time.perf_counter()
        step, epoch, done_in_epoch, stopped, before = 0, 0, 0, False, 0.0
        if snap is None:
            init = evaluate(model, val_dl) if init_eval or cfg.steps == 0 else None
            history = [{"step": 0, **init.to_dict()}] if init is not None else []
        else:  # the RNG streams are restored after the model was built: they continue where the snapshot left them
            path, state, tensors = snap
            restore_snapshot(state, tensors, model, opt, scaler, sampler, dev, cfg.batch, averaged)
            step, epoch, done_in_epoch = state["step"], state["epoch"], state["batches_done"]
            init = Metrics(**state["init_metrics"]) if state["init_metrics"] is not None else None
            history, before = state["history"], state["seconds"]
            if log is not None:
                log(f"resuming at step {step} of {cfg.steps} from {path}")
        bar = tqdm(total=cfg.steps, initial=step, desc=f"train {model_cfg.name}", unit="step", disable=not progress)
        model.train()
        try:
            while step < cfg.steps and not stopped:
                train_ds.set_epoch(epoch)
                for batch in train_dl:
                    batch = step_inputs(opt, step, cfg, batch, dev)
                    with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                        out = model(batch["image"])
                    # the loss in fp32 (mesh geometry, heatmaps): autocast covers the network only
                    out = out.float() if amp_dtype is not None else out
                    loss, terms = two_hand_loss(out, batch, faces, pool252, weights, progress=step / cfg.steps)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"loss is {float(loss)} at step {step} (terms {terms})")
                    opt.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.unscale_(opt)  # clip the true gradients (a no-op without fp16)
                    torch.nn.utils.clip_grad_norm_(params, 5.0)
                    scaler.step(opt)
                    scaler.update()
                    if averaged is not None:
                        averaged.update_parameters(model)
                    step += 1
                    done_in_epoch += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss.detach()):.3f}",
                                    **({"mpjpe": f"{history[-1]['mpjpe_mm']:.1f}"} if history else {}))
                    if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
                        m = evaluate(scored, val_dl)
                        history.append({"step": step, "loss": float(loss.detach()), **m.to_dict()})
                        if on_eval is not None and on_eval(step, m):
                            stopped = True
                            break
                    if resume_dir is not None and save_every and step % save_every == 0 and step < cfg.steps:
                        save_snapshot(resume_dir, step, {
                            "key": key, "step": step, "epoch": epoch, "batches_done": done_in_epoch,
                            "history": history, "init_metrics": init and init.to_dict(),
                            "seconds": before + time.perf_counter() - t0}, model, opt, scaler, sampler, dev, averaged)
                    if step >= cfg.steps:
                        break
                epoch += 1
                done_in_epoch = 0
        finally:
            bar.close()
            model.train(was_training)
    final = Metrics(**{k: v for k, v in history[-1].items() if k in Metrics.__dataclass_fields__})
    result = TrainResult(final, init, history, before + time.perf_counter() - t0, step, stopped, baseline=baseline)
    if checkpoint_dir is not None:
        from hand_nas.checkpoint import save_checkpoint

        scored.cpu()  # checkpoints hold CPU tensors whatever the training device
        save_checkpoint(checkpoint_dir, scored, model_cfg, train=cfg.to_dict(), metrics=final.to_dict(),
                        init_metrics=init and init.to_dict(), baseline_metrics=baseline.to_dict(), data=str(data), steps=step,
                        precision=precision, **(checkpoint_info or {}))
        result.checkpoint = str(checkpoint_dir)
    if resume_dir is not None and step >= cfg.steps:  # finished: a later call starts afresh
        for old in _snapshots(resume_dir):
            shutil.rmtree(old, ignore_errors=True)
    return result
