"""IntagHand's training losses (pure functions on tensors; weights as in its defaults).

Targets are root-relative (joint 9) metres per hand; 2D terms use [-1, 1] image coordinates;
auxiliary maps are at 1/4 of the input resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hand_nas.config import LOSS_SETS, LossWeights  # noqa: F401  (the loss terms' weights are config)
from hand_nas.models.output import HandOutput


def face_losses(pred: torch.Tensor, gt: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normal consistency and edge-length L1 between meshes (..., V, 3) with faces (F, 3)."""
    def edges(v):
        a, b, c = v[..., faces[:, 0], :], v[..., faces[:, 1], :], v[..., faces[:, 2], :]
        return b - a, c - a, c - b

    pe, ge = edges(pred), edges(gt)
    n_gt = F.normalize(torch.cross(ge[0], ge[1], dim=-1), dim=-1)
    normal = sum((F.normalize(e, dim=-1) * n_gt).sum(-1).abs().mean() for e in pe) / 3
    edge = sum((p.norm(dim=-1) - g.norm(dim=-1)).abs().mean() for p, g in zip(pe, ge)) / 3
    return normal, edge


def two_hand_loss(out: HandOutput, batch: dict, faces: torch.Tensor, pool252: torch.Tensor,
                  w: LossWeights = LossWeights(), progress: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Total loss and its terms for one batch (see ``TwoHandDataset`` for the batch fields).

    Args:
        out: model output.
        batch: dataset batch (metres, camera frame, pixel 2D).
        faces: (F, 3) mesh faces (right hand; the left hand's winding does not change these terms).
        pool252: (252, 778) ground truth -> 252-slot level map.
        w: weights.
        progress: fraction of training done (gates the edge term).
    """
    valid = batch["valid"].float()  # (B, 2)
    gt_j = batch["joints"]
    root = gt_j[:, :, 9:10]
    terms = {}

    def masked(err):  # err (B, 2, ...) -> mean over valid hands
        err = err.flatten(2).mean(-1)
        return (err * valid).sum() / valid.sum().clamp_min(1)

    terms["joints"] = w.joints * masked((out.joints - (gt_j - root)).abs())
    if out.verts is not None:
        gt_v = batch["verts"] - root
        terms["verts"] = w.verts * masked((out.verts - gt_v).abs())
        size = batch["image"].shape[-1]
        gt_2d = (batch["verts2d"] + 0.5) / size * 2 - 1
        terms["verts2d"] = w.verts2d * masked((out.verts2d - gt_2d) ** 2)
        normal, edge = face_losses(out.verts, gt_v, faces)
        terms["normal"] = w.normal * normal
        if progress >= w.edge_from:
            terms["edge"] = w.edge * edge
        if out.coarse is not None:
            gt_c = torch.einsum("sv,bhvc->bhsc", pool252, gt_v)
            terms["coarse"] = w.coarse * masked((out.coarse - gt_c).abs())
    if out.rel_root is not None and out.verts is not None:
        both = valid.prod(-1)
        err = (out.rel_root - (gt_j[:, 1, 9] - gt_j[:, 0, 9])).abs().mean(-1)
        terms["rel_root"] = w.rel_root * (err * both).sum() / both.sum().clamp_min(1)
    if out.masks is not None:
        gt_m = F.interpolate(batch["mask"], size=out.masks.shape[-2:], mode="area")
        terms["mask"] = w.mask * F.smooth_l1_loss(torch.sigmoid(out.masks), gt_m, beta=0.05)
    if out.heatmaps is not None and "heatmaps" in batch:
        hm = batch["heatmaps"].flatten(1, 2)  # (B, 42, h, w) left first
        if hm.shape[-1] != out.heatmaps.shape[-1]:
            hm = F.interpolate(hm, size=out.heatmaps.shape[-2:], mode="bilinear", align_corners=False)
        terms["heatmap"] = w.heatmap * F.mse_loss(out.heatmaps, hm)
    return sum(terms.values()), {k: float(v.detach()) for k, v in terms.items()}
