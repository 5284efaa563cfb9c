"""Data: the sample format, the synthetic set, the InterHand2.6M reader and the training Dataset.

``TwoHandDataset`` is imported on first use, so the readers and writers load without torch.
"""
from __future__ import annotations

__all__ = ["TwoHandDataset"]


def __getattr__(name: str):
    if name == "TwoHandDataset":
        from hand_nas.data.dataset import TwoHandDataset

        return TwoHandDataset
    raise AttributeError(f"module 'hand_nas.data' has no attribute {name!r}")
