"""Retraining a stored trial: its architecture, from scratch, under a named long recipe, resumable after a kill.

A search scores architectures with a short proxy; the one it picks is then trained properly.
``RECIPES`` are those longer trainings, by name (the ``--recipe`` of ``hand-nas retrain``):

* ``smoke``: a few steps at 64 px, for tests.
* ``demo``: 800 steps at 128 px, batch 16, on 4000 synthetic images: the demo's brief retraining of its winner.
* ``standard``: the ``lwa.yaml`` proxy ten times longer, i.e. the proxy check's long training: 3000
  steps at 128 px, batch 16, lr 2e-3, cosine, no augmentation, on 8000 synthetic images; about 45
  minutes of one core for an LWA-HAND-sized model.
* ``full``: IntagHand's InterHand2.6M schedule, for a GPU: Adam, lr 1e-4, batch 64, 256 px, 200
  epochs of the training split, 3 warm-up epochs, lr x0.1 from epoch 150. Two honest differences:
  the warm-up is linear from lr/warmup (IntagHand's starts at 1e-7), and every network starts from
  scratch (IntagHand's ResNet-50 is ImageNet-pretrained). Its held-out figures are on the
  ``val_fraction`` split of ``--data``; ``hand-nas evaluate --data TEST`` scores the test split.

The run lives in ``.<out>.partial/`` beside ``--out`` until it ends (``hand_nas.data.resumable``: the
arguments it was started with, a lock, ``snapshots/`` from ``train``'s ``resume_dir``); the same
command after a kill continues from the newest snapshot. At the end the checkpoint (the usual
``model.safetensors`` + ``config.json``) appears at ``--out`` in one rename and the retrain is
recorded in the study (``storage.record_retrain``), where ``hand-nas compress --study`` finds it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from hand_nas.config import DEFAULT_STORAGE, ModelCfg, TrainCfg, replace
from hand_nas.errors import HandNasError


@dataclass(frozen=True)
class Recipe:
    """A named long training.

    Attributes:
        train: the training run (its ``seed`` is the default of ``--seed``).
        save_every: steps between snapshots (what a kill can lose).
        synthetic_n: size of the synthetic set ``--data synthetic`` means for this recipe.
        about: one line for ``--help`` and the README.
        epochs: > 0: ``train.steps`` is this many passes over the training split (``n_train // batch``
            steps each), and ``warmup_epochs``, ``decay_epoch`` and ``eval_epochs`` set ``warmup``,
            ``decay_step`` and ``eval_every`` the same way, once the data set is known.
    """

    train: TrainCfg
    save_every: int
    synthetic_n: int
    about: str
    epochs: float = 0
    warmup_epochs: float = 0
    decay_epoch: float = 0
    eval_epochs: float = 0

    def train_cfg(self, n_train: int, seed: int | None = None) -> TrainCfg:
        """The concrete ``TrainCfg`` for a training split of ``n_train`` samples."""
        cfg = self.train if seed is None else replace(self.train, seed=seed)
        if not self.epochs:
            return cfg
        per_epoch = n_train // cfg.batch
        if per_epoch < 1:
            raise HandNasError(f"the training split holds {n_train} samples, fewer than one batch of {cfg.batch}")
        return replace(cfg, steps=round(self.epochs * per_epoch), warmup=round(self.warmup_epochs * per_epoch),
                       decay_step=round(self.decay_epoch * per_epoch), eval_every=round(self.eval_epochs * per_epoch))


RECIPES = {
    "smoke": Recipe(TrainCfg(resolution=64, steps=6, batch=4, lr=1e-3, warmup=1, eval_every=3, augment=True),
                    save_every=2, synthetic_n=24, about="tests: 6 steps at 64 px, a snapshot every 2"),
    # what fits the demo's 15 minutes on 2 cores: after 300 steps the overlay shows the mean hand seen edge-on,
    # after ~800 the hands are placed and oriented (experiments/README.md, "The demo's overlay")
    "demo": Recipe(TrainCfg(resolution=128, steps=800, batch=16, lr=2e-3, warmup=50, eval_every=400, augment=False),
                   save_every=100, synthetic_n=4000,
                   about="the demo's brief retraining: 800 steps at 128 px, batch 16, on 4000 synthetic images"),
    # The lwa.yaml proxy x10 (= proxy check's long run): no augmentation, which undoes the synthetic set's
    # fingers-up prior (experiments/proxy_variants.py), on 8000 images so 3000 x 16 draws repeat each ~6 times.
    "standard": Recipe(TrainCfg(resolution=128, steps=3000, batch=16, lr=2e-3, warmup=200, eval_every=600,
                                augment=False),
                       save_every=100, synthetic_n=8000,
                       about="the lwa.yaml proxy x10: 3000 steps at 128 px, batch 16, lr 2e-3, cosine, no augmentation; "
                             "about 45 min of one core"),
    "full": Recipe(TrainCfg(resolution=256, steps=1, batch=64, lr=1e-4, warmup=1, eval_every=1, workers=8),
                   save_every=1000, synthetic_n=20000, epochs=200, warmup_epochs=3, decay_epoch=150, eval_epochs=10,
                   about="IntagHand's InterHand2.6M schedule (GPU): 200 epochs, batch 64, 256 px, Adam 1e-4, "
                         "x0.1 at epoch 150"),
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise HandNasError(f"--recipe {name!r}: unknown recipe (known: {', '.join(RECIPES)})")
    return RECIPES[name]


@dataclass
class RetrainPlan:
    """Everything a retrain needs, checked before any work starts."""

    study: str
    storage: str
    trial: int
    recipe: str
    model: ModelCfg
    train: TrainCfg
    save_every: int
    data: Path
    out: Path
    precision: str
    proxy_metrics: dict | None

    def params(self) -> dict:
        """What a resumed run must match (the device and ``save_every`` may change: not what is trained)."""
        return {"study": self.study, "trial": self.trial, "recipe": self.recipe, "model": self.model.to_dict(),
                "train": self.train.to_dict(), "data": str(self.data), "precision": self.precision}


def plan_retrain(study: str, trial: str | int, recipe: str, out: str | Path, storage: str = DEFAULT_STORAGE,
                 data: str | None = None, seed: int | None = None, save_every: int | None = None,
                 device: str = "auto", precision: str = "fp32", overwrite: bool = False) -> RetrainPlan:
    """Check every input (one-line ``HandNasError``s) and resolve the run; writes nothing but a synthetic set.

    Args:
        trial: 'best' (lowest proxy MPJPE among trained trials) or a trial number.
        data: a sample folder, 'synthetic' (the recipe's cached synthetic set) or None (the trial's own data).
        seed, save_every: override the recipe's.
    """
    from hand_nas.atomic import check_output
    from hand_nas.data.dataset import split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.device import resolve_device, resolve_precision
    from hand_nas.models.validate import check
    from hand_nas.search.runner import data_dir
    from hand_nas.search.records import select_trial
    from hand_nas.search.storage import read_records

    rec_ = get_recipe(recipe)
    check("command line", numbers={k: v for k, v in {"--seed": (seed, 0, 2 ** 32 - 1),
                                                     "--save-every": (save_every, 1, 10 ** 9)}.items()
                                   if v[0] is not None})
    resolve_precision(precision, resolve_device(device))
    rec = select_trial(read_records(study, storage), trial, study)
    if rec.config is None:
        raise HandNasError(f"study {study!r} trial {rec.number}: no model config stored (the trial failed before its "
                           "configuration was built); nothing to retrain")
    model = ModelCfg.from_dict(rec.config)
    check(f"study {study!r} trial {rec.number}", model)
    out = Path(out)
    # a foreign or existing --out, or one inside (or around) the data it reads, is refused before anything is made
    check_output(out, inputs=[data] if data not in (None, "synthetic") else [], overwrite=overwrite)
    if data is None:
        if not rec.data or not Path(rec.data).is_dir():
            raise HandNasError(f"study {study!r} trial {rec.number}: its data folder {rec.data!r} is not here; pass --data")
        data = rec.data
    folder = data_dir(data, rec_.synthetic_n, progress=True)
    tr_idx, _ = split_indices(len(open_samples(folder)), rec_.train.val_fraction, seed=0)
    cfg = rec_.train_cfg(len(tr_idx), seed)
    check(f"recipe {recipe!r}", model, train=cfg)
    return RetrainPlan(study, storage, rec.number, recipe, model, cfg, save_every or rec_.save_every, folder, out,
                       precision, rec.metrics)


def retrain(plan: RetrainPlan, device: str = "auto", mano_dir=None, overwrite: bool = False, resume: bool = True,
            progress: bool = True, log=print):
    """Train ``plan`` (resuming a killed run of the same plan), write its checkpoint, record it in the study.

    Returns:
        (``TrainResult``, the ``RetrainRecord`` stored in the study).
    """
    import shutil
    import socket

    from hand_nas.data.resumable import ResumableBuild
    from hand_nas.search.storage import RetrainRecord, record_retrain
    from hand_nas.train import train

    empty = plan.out.is_dir() and not plan.out.is_symlink() and not any(plan.out.iterdir())
    with ResumableBuild(plan.out, plan.params(), overwrite=overwrite or empty, resume=resume) as build:
        about = {"study": plan.study, "storage": plan.storage, "trial": plan.trial, "recipe": plan.recipe,
                 "seed": plan.train.seed}
        r = train(plan.model, plan.train, plan.data, checkpoint_dir=plan.out, mano_dir=mano_dir, progress=progress,
                  device=device, precision=plan.precision, resume_dir=build.folder / "snapshots",
                  save_every=plan.save_every, checkpoint_info={"retrain": about}, log=log)
        record = RetrainRecord(plan.study, plan.trial, plan.recipe, plan.train.seed, str(plan.out.resolve()),
                               r.metrics.to_dict(), r.steps, baseline_metrics=r.baseline.to_dict(),
                               proxy_metrics=plan.proxy_metrics, train=plan.train.to_dict(), data=str(plan.data),
                               precision=plan.precision, seconds=round(r.seconds, 1), node=socket.gethostname(),
                               finished_at=time.time())
        record_retrain(plan.study, plan.storage, record)
        shutil.rmtree(build.folder, ignore_errors=True)  # done: the lock file goes with it
    return r, record

