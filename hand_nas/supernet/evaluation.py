"""Scoring one subnet of a trained supernet: extract, recalibrate BatchNorm, held-out MPJPE.

The supernet's BatchNorm statistics are a mix of every subnet that ran; each subnet gets its own before
it is scored (OFA's ``set_running_statistics``, SPOS's "BN sanitize"): the statistics are reset and
re-estimated, cumulatively (momentum None), over ``calib_batches`` training batches with every other
layer in eval mode. The result is a plain module: what the search records, compresses and ships.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hand_nas.config import ModelCfg, TrainCfg
from hand_nas.metrics import Metrics


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches) -> nn.Module:
    """Reset every BatchNorm's statistics and re-estimate them on ``batches`` (dicts with 'image')."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model
    device = next(model.parameters()).device
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
        bn.train()
    # Only what feeds a BatchNorm runs: when every one lies in the image part (the two-hand network's, and the
    # search spaces'), the pose part after it cannot change a statistic and is skipped (about half the time).
    part = getattr(model, "image", None)
    inside = {id(m) for m in part.modules()} if isinstance(part, nn.Module) else set()
    run = part if all(id(bn) in inside for bn in bns) else model
    for batch in batches:
        run(batch["image"].to(device))
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


class SubsetLoader:
    """Samples ``skip`` .. ``skip + images`` of a loader's deterministic order, re-iterable (images None: to the end).

    A search picks its winner on one part of the held-out split and reports it on another (``skip``), so the
    reported figure is not the one it was selected for.
    """

    def __init__(self, loader, images: int | None, skip: int = 0) -> None:
        self.loader, self.images, self.skip = loader, images, skip

    def __iter__(self):
        pos, stop = 0, None if self.images is None else self.skip + self.images
        for batch in self.loader:
            n = len(batch["image"])
            lo, hi = max(self.skip - pos, 0), n if stop is None else min(n, stop - pos)
            pos += n
            if hi > lo:
                yield batch if (lo, hi) == (0, n) else {k: v[lo:hi] if torch.is_tensor(v) else v
                                                        for k, v in batch.items()}
            if stop is not None and pos >= stop:
                return


@dataclass
class SubnetScorer:
    """Scores subnets of one supernet on one data set: fixed calibration batches and held-out images.

    Build it with ``SubnetScorer.on(data, train_cfg, ...)``; ``score(supernet, cfg)`` returns
    ``(model, metrics, seconds)``.
    """

    calib: list
    val: object
    device: torch.device

    @classmethod
    def on(cls, data: str | Path, train: TrainCfg, calib_batches: int = 8, images: int | None = None,
           device: str = "cpu", calib_set: int = 0, skip: int = 0) -> SubnetScorer:
        """``images``/``skip``: which held-out samples are scored (``SubsetLoader``); ``calib_set``: which of the
        training split's evenly spaced image sets calibrates (0 = the default; others measure how much a score
        depends on the calibration images)."""
        from hand_nas.data.dataset import TwoHandDataset, split_indices
        from hand_nas.data.samples import open_samples
        from hand_nas.train import held_out_loader

        tr_idx, _ = split_indices(len(open_samples(data)), train.val_fraction, seed=0)
        # the same calibration images for every subnet: scores differ by architecture, not by the draw
        stride = max(1, len(tr_idx) // (calib_batches * train.batch))
        ds = TwoHandDataset(data, train.resolution, tr_idx[calib_set % stride::stride])
        loader = torch.utils.data.DataLoader(ds, batch_size=train.batch, shuffle=False)
        calib = list(itertools.islice(loader, calib_batches))
        val = SubsetLoader(held_out_loader(data, train, 64), images, skip)
        # a few held-out images are read and resized once, not once per subnet (0.2 s of a 4.3 s score for 96);
        # the whole split (images None) is streamed
        return cls(calib, val if images is None else list(val), torch.device(device))

    def score(self, supernet, cfg: ModelCfg) -> tuple[nn.Module, Metrics, float]:
        from hand_nas.train import evaluate

        t0 = time.perf_counter()
        # channels-last convolutions: on a 2-core AVX2 EPYC, 4.3 s instead of 5.2 s for lwa_hand's calibration and
        # 96 held-out images (1 thread), same MPJPE to 1e-3 mm; the model is returned in the default layout
        model = supernet.extract(cfg).to(self.device, memory_format=torch.channels_last)
        model = recalibrate_bn(model, self.calib)
        metrics = evaluate(model, self.val)
        return model.to("cpu", memory_format=torch.contiguous_format), metrics, time.perf_counter() - t0
