"""The graph decoder: coarse-to-fine vertex features over the mesh hierarchy, for both hands.

Per hand, the global image feature becomes 63 vertex features (Linear + LN, plus a 3-d positional
code: the template pooled to the coarsest level). Each pyramid level (63, 126, 252 nodes) then runs,
as IntagHand's DualGraphLayer does: add a learned per-node embedding, graph residual blocks per hand,
the image -> graph bridge per hand, cross-hand attention; nearest x2 upsampling along the node axis
between levels. Levels not run are bridged by upsampling to 252 nodes. Heads: per-node coordinates
(offsets from the template pooled to the 252 slots, a zero-MAC prior hand-nas adds for short proxies),
a weak-perspective camera from a vertex-averaging layer, a 252 -> 778 linear map initialised from
the mesh hierarchy (frozen, as IntagHand's), and the right-minus-left root offset.

The coordinate head is initialised near zero around the ``template`` buffer, and the relative-root
head zero around a bias: an untrained decoder predicts that mean hand (to ~0.1 mm) (as HMR regresses from the mean
parameters). ``hand_nas.train`` sets both from the training split's mean root-relative hands
(``set_mean_shape``), so a proxy of minutes starts at the mean-shape baseline instead of at a
random crumpled hand in the rest orientation of the hand model (about 90 mm on the synthetic set,
against the mean's 50). The template is a persistent buffer: it is part of the trained model.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hand_nas.config import ModelCfg
from hand_nas.hand.hierarchy import MeshHierarchy
from hand_nas.hand.mano import HandTopology
from hand_nas.layers.graph_conv import GraphLayer, rescaled_laplacian
from hand_nas.models.bridges import TokenUpdate, map_side
from hand_nas.models.output import HandOutput
from hand_nas.registry import BRIDGES, CROSS_HAND

COORD_SCALE = 0.1  # network units are decimetres: targets of +-10 cm are +-1


class GraphDecoder(nn.Module):
    def __init__(self, cfg: ModelCfg, global_dim: int, fmap_channels: tuple[int, ...], token_info: tuple[int, int],
                 hierarchy: MeshHierarchy, topology: HandTopology) -> None:
        super().__init__()
        b, g = cfg.bridge, cfg.graph
        if not 1 <= b.levels <= 3:
            raise ValueError(f"bridge.levels: {b.levels}, expected 1..3")
        if len(g.dims) < b.levels + 1:
            raise ValueError(f"graph.dims: {len(g.dims)} values, need levels + 1 = {b.levels + 1}")
        dims = g.dims[:b.levels + 1]  # longer lists (search spaces) are cut to the levels used
        self.levels = b.levels
        d0 = dims[0]
        self.init = nn.ModuleList([nn.Sequential(nn.Linear(global_dim, d0 - 3), nn.LayerNorm(d0 - 3)) for _ in range(2)])
        pos = hierarchy.pool_matrix(63) @ topology.template
        pos = (pos - pos.mean(0)) / (np.abs(pos - pos.mean(0)).max() + 1e-9)
        self.register_buffer("pos_code", torch.tensor(pos, dtype=torch.float32), persistent=False)
        self.node_emb = nn.ParameterList()
        self.graph = nn.ModuleList()
        self.bridge = nn.ModuleList()
        self.cross = nn.ModuleList()
        self.tokens = nn.ModuleList()
        token_dim, n_tokens = token_info
        bridge_cls = BRIDGES.get(b.attention)
        if bridge_cls.reads_tokens and token_dim == 0:
            token_dim, n_tokens = 64, 6
            self.own_tokens = nn.Parameter(torch.randn(n_tokens, token_dim) * 0.02)
        else:
            self.own_tokens = None
        cross_cls = CROSS_HAND.get(g.cross_hand)
        for lvl in range(b.levels):
            n = 63 * 2 ** lvl
            h = hierarchy.level_of_size(n)
            lap = rescaled_laplacian(hierarchy.laplacian[h], hierarchy.lmax[h])
            cin, cout = dims[lvl], dims[lvl + 1]
            self.node_emb.append(nn.Parameter(torch.randn(n, cin)))  # nn.Embedding's N(0, 1), as IntagHand
            self.graph.append(nn.ModuleList([GraphLayer(cin, cout, lap, b.blocks, g.cheb_order, g.dropout) for _ in range(2)]))
            fsize = map_side(lvl)  # at the 256 deployment input
            grid_dim = b.grid_dims[lvl] if lvl < len(b.grid_dims) else cout
            self.bridge.append(nn.ModuleList([
                bridge_cls(fmap_channels[lvl], fsize, cout, grid_dim, b.image_tokens, g.heads, g.dropout)
                for _ in range(2)]))
            if bridge_cls.reads_tokens:
                self.tokens.append(TokenUpdate(fmap_channels[lvl], token_dim, cout, b.image_tokens))
            self.cross.append(cross_cls(cout, g.heads, g.dropout))
        dl = dims[-1]
        self.coord = nn.Linear(dl, 3)
        # Near zero, not zero: offsets of ~0.1 mm keep the start at the template while the output
        # still depends on the image (the body gets 3D gradients from step 0, and an untrained model
        # stays distinguishable from a quantized or pruned copy of itself).
        nn.init.normal_(self.coord.weight, std=1e-4)
        nn.init.zeros_(self.coord.bias)
        self.avg = nn.Linear(252, 1)
        self.cam = nn.Linear(dl, 3)
        self.upsample = nn.Linear(252, 778, bias=False)
        with torch.no_grad():
            self.upsample.weight.copy_(torch.tensor(hierarchy.upsample))
        self.upsample.weight.requires_grad_(False)
        self.direct = None
        if g.direct:
            self.direct = nn.ModuleList([nn.Linear(global_dim, 252 * 3) for _ in range(2)])
            for lin in self.direct:
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)
        self.rel_root = nn.Linear(global_dim, 3)
        nn.init.zeros_(self.rel_root.weight)
        nn.init.zeros_(self.rel_root.bias)
        # Coarse coordinates are offsets from a per-hand template at the 252-slot level (zero MACs).
        # Until set_mean_shape: the hand model's template, mirrored in x for the left hand.
        tmpl = hierarchy.pool_matrix(252) @ topology.template
        tmpl = tmpl - (topology.joint_regressor @ topology.template)[9]
        tmpl = np.stack([tmpl * np.array([-1.0, 1.0, 1.0]), tmpl])
        self.register_buffer("template", torch.tensor(tmpl, dtype=torch.float32))  # (2, 252, 3), metres
        self.register_buffer("regressor_t", torch.tensor(topology.joint_regressor.T.copy()), persistent=False)

    @torch.no_grad()
    def set_mean_shape(self, verts: torch.Tensor, rel_root: torch.Tensor) -> None:
        """Make the untrained heads predict this mean hand pair.

        Args:
            verts: (2, 778, 3) mean vertices, each hand relative to its joint 9, metres.
            rel_root: (3,) mean right root minus left root, metres.
        """
        up = self.upsample.weight.double()  # (778, 252)
        # The 252 slots whose upsampled mesh is closest to the mean (least squares per hand; the map
        # has rank < 252, so the minimum-norm solution of the pseudo-inverse).
        tmpl = torch.linalg.pinv(up) @ verts.double()  # (2, 252, 3)
        self.template.copy_(tmpl.to(self.template))
        self.rel_root.bias.copy_(rel_root.to(self.rel_root.bias) / COORD_SCALE)

    def forward(self, feats) -> HandOutput:
        gfeat = feats.global_feat
        bsz = gfeat.shape[0]
        pos = self.pos_code.unsqueeze(0).expand(bsz, -1, -1)
        x = [torch.cat([self.init[h](gfeat).unsqueeze(1).expand(-1, 63, -1), pos], -1) for h in range(2)]
        z = feats.tokens if self.own_tokens is None else self.own_tokens.unsqueeze(0).expand(bsz, -1, -1)
        for lvl in range(self.levels):
            x = [x[h] + self.node_emb[lvl] for h in range(2)]
            x = [self.graph[lvl][h](x[h]) for h in range(2)]
            fmap = feats.fmaps[lvl] if feats.fmaps else None
            tokens = None
            if len(self.tokens):
                z, tokens = self.tokens[lvl](fmap, z)
            x = [self.bridge[lvl][h](x[h], fmap, tokens) for h in range(2)]
            x = list(self.cross[lvl](x[0], x[1]))
            if lvl < self.levels - 1:
                x = [t.repeat_interleave(2, dim=1) for t in x]
        if self.levels < 3:
            x = [t.repeat_interleave(2 ** (3 - self.levels), dim=1) for t in x]
        offsets = torch.stack([self.coord(t) for t in x], 1)  # (B, 2, 252, 3), decimetres
        if self.direct is not None:
            offsets = offsets + torch.stack([lin(gfeat).view(bsz, 252, 3) for lin in self.direct], 1)
        coarse = offsets * COORD_SCALE + self.template  # (B, 2, 252, 3)
        # The vertex average is a matmul with the layer's weight, not a call of the layer: structured
        # pruning then never mistakes the vertex axis for channels (same MACs as the Linear).
        cam = torch.stack([self.cam(torch.matmul(t.transpose(1, 2), self.avg.weight.t()).squeeze(-1) + self.avg.bias)
                           for t in x], 1)  # (B, 2, 3)
        return mesh_output(self, coarse, cam, gfeat)


def mesh_output(dec, coarse: torch.Tensor, cam: torch.Tensor, gfeat: torch.Tensor) -> HandOutput:
    """The heads shared by the decoder and its deployment form: the 252 coarse slots (B, 2, 252, 3, metres)
    upsampled to 778 vertices, the joints regressed, all made root-relative; 2D by the weak camera (B, 2, 3)."""
    verts = dec.upsample(coarse.transpose(2, 3)).transpose(2, 3)  # (B, 2, 778, 3)
    # (B, 2, 3, 778) @ (778, 21): batched operand first, so fvcore counts every MAC
    joints = torch.matmul(verts.transpose(-1, -2), dec.regressor_t).transpose(-1, -2)
    root = joints[:, :, 9:10]
    verts, joints, coarse = verts - root, joints - root, coarse - root
    b, h = cam.shape[:2]  # reshapes, not unsqueeze(2): a non-trailing unsqueeze stops mobile delegates
    scale = 1.0 + cam[..., :1].reshape(b, h, 1, 1)
    verts2d = scale * verts[..., :2] / COORD_SCALE * 0.5 + cam[..., 1:].reshape(b, h, 1, 2)
    return HandOutput(verts=verts, joints=joints, camera=cam, rel_root=dec.rel_root(gfeat) * COORD_SCALE,
                      verts2d=verts2d, coarse=coarse)
