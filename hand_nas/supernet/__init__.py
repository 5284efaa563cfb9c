"""Weight-sharing supernets: train every architecture of a search space once, score any subnet in seconds.

``Supernet`` (the shared tensors and ``extract``), ``train_supernet`` (the sandwich rule, resumable, DDP),
``SubnetScorer`` (BatchNorm recalibration and held-out MPJPE of an extracted subnet).
"""
from __future__ import annotations

from hand_nas.supernet.evaluation import SubnetScorer, recalibrate_bn
from hand_nas.supernet.supernet import Supernet, load_supernet
from hand_nas.supernet.training import RECIPES, train_supernet

__all__ = ["Supernet", "load_supernet", "SubnetScorer", "recalibrate_bn", "RECIPES", "train_supernet"]
