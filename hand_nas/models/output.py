"""The one dataclass a forward pass returns."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class HandOutput:
    """Both hands, left first.

    Attributes:
        verts: (B, 2, 778, 3) metres, each hand relative to its root joint 9 (middle MCP); None for
            joint-only models (InterNet).
        joints: (B, 2, 21, 3) metres, root-relative like ``verts`` (InterNet: 2.5D, see its docstring).
        camera: (B, 2, 3) weak perspective (s, tx, ty): uv = s * xy + t in [-1, 1] image coordinates.
        rel_root: (B, 3) right root minus left root, metres.
        verts2d: (B, 2, 778, 2) projections in [-1, 1] image coordinates, or None.
        coarse: (B, 2, 252, 3) root-relative positions of the 252-slot level, or None.
        heatmaps: (B, 42, h, w) 2D joint heatmap logits (left first), or None.
        masks: (B, 2, h, w) hand mask logits, or None.
        dense: (B, 6, h, w) dense-correspondence colours, or None.
    """

    verts: torch.Tensor | None
    joints: torch.Tensor
    camera: torch.Tensor | None = None
    rel_root: torch.Tensor | None = None
    verts2d: torch.Tensor | None = None
    coarse: torch.Tensor | None = None
    heatmaps: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    dense: torch.Tensor | None = None

    def float(self) -> HandOutput:
        """The same outputs in fp32 (after an autocast forward pass, for an fp32 loss)."""
        from dataclasses import fields, replace

        return replace(self, **{f.name: getattr(self, f.name).float() for f in fields(self)
                                if getattr(self, f.name) is not None})
