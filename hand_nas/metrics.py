"""Accuracy metrics for two-hand reconstruction (pure functions, millimetres out).

Inputs are metres, hands stacked left first, joints in hand-nas' 21-joint order.

* IntagHand protocol (``protocol='intaghand'``): per hand, root-align on joint 9 (middle MCP),
  scale the prediction so its |J9 - J0| equals the ground truth's, then MPJPE over 21 joints and
  MPVPE over 778 vertices; the result is the mean of the left and right hands.
* Root-translation protocol (``protocol='root'``): per hand, align the wrist (joint 0) only, no
  scale; the InterNet / InterWild-style numbers.
* MRRPE: error of the right root relative to the left root (wrists by default), no alignment.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from hand_nas.hand.topology import ROOT_JOINT, WRIST_JOINT

PROTOCOLS = ("intaghand", "root")


def align(pred_j: torch.Tensor, gt_j: torch.Tensor, pred_v: torch.Tensor | None = None,
          gt_v: torch.Tensor | None = None, protocol: str = "intaghand"):
    """Align predictions to ground truth per hand.

    Args:
        pred_j, gt_j: (..., 21, 3) joints of one hand or (B, 2, 21, 3) of both.
        pred_v, gt_v: matching (..., 778, 3) vertices, optional.
        protocol: 'intaghand' (root J9 + bone-length scale) or 'root' (wrist translation only).

    Returns:
        (pred_j, gt_j, pred_v, gt_v) after alignment (vertices None if not given).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: expected one of {PROTOCOLS}")
    root = ROOT_JOINT if protocol == "intaghand" else WRIST_JOINT
    pr, gr = pred_j[..., root:root + 1, :], gt_j[..., root:root + 1, :]
    scale = torch.ones_like(pr[..., :1])
    if protocol == "intaghand":
        # IntagHand's evaluation scales by the ratio of |J9 - J0| (middle MCP to wrist).
        gl = (gt_j[..., ROOT_JOINT, :] - gt_j[..., WRIST_JOINT, :]).norm(dim=-1)
        pl = (pred_j[..., ROOT_JOINT, :] - pred_j[..., WRIST_JOINT, :]).norm(dim=-1)
        scale = (gl / pl.clamp_min(1e-9))[..., None, None]
    out_j = ((pred_j - pr) * scale, gt_j - gr)
    if pred_v is None:
        return out_j[0], out_j[1], None, None
    return out_j[0], out_j[1], (pred_v - pr) * scale, gt_v - gr


def mpjpe(pred_j: torch.Tensor, gt_j: torch.Tensor, protocol: str = "intaghand") -> torch.Tensor:
    """Mean per-joint position error in mm, (B, 2, 21, 3) -> (B,) averaged over both hands."""
    a, b, _, _ = align(pred_j, gt_j, protocol=protocol)
    return (a - b).norm(dim=-1).mean(dim=(-1, -2)) * 1000.0


def mpvpe(pred_v: torch.Tensor, gt_v: torch.Tensor, pred_j: torch.Tensor, gt_j: torch.Tensor,
          protocol: str = "intaghand") -> torch.Tensor:
    """Mean per-vertex position error in mm, aligned with the joints' root and scale; (B,)."""
    _, _, a, b = align(pred_j, gt_j, pred_v, gt_v, protocol=protocol)
    return (a - b).norm(dim=-1).mean(dim=(-1, -2)) * 1000.0


def rotate_onto(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``pred`` (..., N, 3) rotated about the origin onto ``gt`` (orthogonal Procrustes, a proper rotation):
    after ``align`` this leaves only articulation in the error (PA-MPJPE without the Procrustes scale)."""
    u, _, vt = torch.linalg.svd(pred.transpose(-1, -2) @ gt)
    d = torch.sign(torch.linalg.det(u @ vt))  # a rotation, not a reflection
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return pred @ (u @ fix @ vt)


def mrrpe(pred_j: torch.Tensor, gt_j: torch.Tensor, root: int = WRIST_JOINT) -> torch.Tensor:
    """Mean relative-root position error in mm: |(R - L)_pred - (R - L)_gt|, (B, 2, 21, 3) -> (B,)."""
    rel_p = pred_j[:, 1, root] - pred_j[:, 0, root]
    rel_g = gt_j[:, 1, root] - gt_j[:, 0, root]
    return (rel_p - rel_g).norm(dim=-1) * 1000.0


@dataclass(frozen=True)
class Metrics:
    """Averages over a data set, millimetres."""

    mpjpe_mm: float
    mpvpe_mm: float
    mpjpe_root_mm: float
    mpvpe_root_mm: float
    mrrpe_mm: float
    count: int

    def to_dict(self) -> dict:
        return asdict(self)


class MetricAccumulator:
    """Sums per-sample errors over batches; ``result()`` gives the ``Metrics``."""

    def __init__(self) -> None:
        self.sums = {k: 0.0 for k in ("mpjpe_mm", "mpvpe_mm", "mpjpe_root_mm", "mpvpe_root_mm", "mrrpe_mm")}
        self.count = 0

    def update(self, pred_v: torch.Tensor, pred_j: torch.Tensor, gt_v: torch.Tensor, gt_j: torch.Tensor) -> None:
        """Add a batch: vertices (B, 2, 778, 3) and joints (B, 2, 21, 3), metres, one frame per sample."""
        pred_v, pred_j, gt_v, gt_j = (t.detach().double() for t in (pred_v, pred_j, gt_v, gt_j))
        self.sums["mpjpe_mm"] += mpjpe(pred_j, gt_j).sum().item()
        self.sums["mpvpe_mm"] += mpvpe(pred_v, gt_v, pred_j, gt_j).sum().item()
        self.sums["mpjpe_root_mm"] += mpjpe(pred_j, gt_j, "root").sum().item()
        self.sums["mpvpe_root_mm"] += mpvpe(pred_v, gt_v, pred_j, gt_j, "root").sum().item()
        self.sums["mrrpe_mm"] += mrrpe(pred_j, gt_j).sum().item()
        self.count += pred_j.shape[0]

    def result(self) -> Metrics:
        n = max(self.count, 1)
        return Metrics(**{k: v / n for k, v in self.sums.items()}, count=self.count)
