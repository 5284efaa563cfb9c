"""Closed-form MAC counts of the model family, in fvcore's convention, for the search's budget gate.

fvcore needs a model instance and a JIT trace (0.3-2 s); the gate has to screen dozens of sampled
configurations per second. Every term here mirrors one layer of ``hand_nas/layers`` or
``hand_nas/models`` (named in the comment beside it) under the convention of
``hand_nas/cost/flops.py``: conv and linear MACs without bias, matmuls, BatchNorm 2/element,
LayerNorm 5/element, bilinear upsampling 4/output element, adaptive pooling 1/input element;
activations, softmax, residual adds and data movement are zero. ``tests/test_analytic.py`` checks
the totals equal to fvcore's on every graph-head preset and on sampled configurations of every
shipped search space. Input 1x3xSxS, S a size the model accepts (a multiple of 32; of 64 with
MobileViT blocks at stride 32); the gate uses S = 256.

Notation: ``n``/``v`` tokens or graph nodes, ``d`` a token width, ``hw`` pixels of a feature map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hand_nas.config import EncoderCfg, ModelCfg
from hand_nas.layers.cross_hand import ElementwiseCrossHand, NoCrossHand, SeparableCrossHand, SoftmaxCrossHand
from hand_nas.models.bridges import LightCrossBridge, NoBridge, PifaBridge, map_side
from hand_nas.models.image_part import DECODER_OUT
from hand_nas.registry import BRIDGES, CROSS_HAND, ENCODERS


@dataclass(frozen=True)
class MacCount:
    """MACs (fvcore convention) split like the papers' tables: ``TwoHandNet.image`` / ``.pose``."""

    image_macs: int
    pose_macs: int

    @property
    def total_macs(self) -> int:
        return self.image_macs + self.pose_macs


def conv_bn_macs(cin, cout, k, h, w, stride=1, groups=1) -> tuple[int, int, int]:
    """(MACs, out h, out w) of a conv (padding k//2, no bias counted) + BatchNorm2d.

    Mirrors ``layers.conv.conv_bn`` and ResNet's conv/bn pairs.
    """
    oh, ow = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
    conv = oh * ow * cout * (cin // groups) * k * k
    return conv + 2 * cout * oh * ow, oh, ow  # + BatchNorm2d, 2 per output element


def _add(parts: dict | None, **kw) -> None:
    if parts is not None:
        for k, v in kw.items():
            parts[k] = parts.get(k, 0) + v


def inverted_residual_macs(cin, cout, stride, expansion, h, w, parts: dict | None = None) -> tuple[int, int, int]:
    """(MACs, out h, out w) of ``layers.conv.InvertedResidual`` (the skip add is free).

    ``parts``: a dict to add the block's MACs to by kind of work: ``pointwise`` (the 1x1 GEMMs), ``depthwise``
    and ``expanded`` (the elements of the expanded activations the depthwise conv reads and writes).
    """
    hidden = int(round(cin * expansion))
    macs = 0
    if hidden != cin:
        macs += conv_bn_macs(cin, hidden, 1, h, w)[0]  # 1x1 expand (absent when hidden == cin)
        _add(parts, expanded=hidden * h * w)
    m, oh, ow = conv_bn_macs(hidden, hidden, 3, h, w, stride, groups=hidden)  # 3x3 depthwise, strides
    project = conv_bn_macs(hidden, cout, 1, oh, ow)[0]  # 1x1 project
    _add(parts, pointwise=macs + project, depthwise=m, expanded=hidden * oh * ow, blocks=1)
    return macs + m + project, oh, ow


def self_attention_macs(n, d) -> int:
    """MACs of ``layers.attention.SelfAttention`` over n tokens of width d (heads do not change MACs)."""
    return (6 * n * d * d  # MultiHeadAttention q, k, v, fc (4nd^2) + MLP fc1, fc2 d -> d -> d (2nd^2)
            + 2 * n * n * d  # attend: QK^T and AV
            + 10 * n * d)  # LayerNorms: SelfAttention.norm + MLP.norm


def mobile_to_former_macs(c, d, m, pixels) -> int:
    """MACs of ``layers.mobile_former.MobileToFormer``: m tokens of width d read ``pixels`` pixels of c channels."""
    return (m * d * c  # q: Linear(d -> c) on the tokens (no pixel-side projections)
            + 2 * m * pixels * c  # attend: QK^T and AV with keys = values = raw pixels
            + m * c * d  # out: Linear(c -> d)
            + 5 * m * d)  # norm: LayerNorm(d) on the tokens


def former_macs(d, m) -> int:
    """MACs of ``layers.mobile_former.Former`` on m tokens of width d."""
    return (2 * m * d * d  # q and out: Linear(d -> d) (k = v = tokens)
            + 2 * m * m * d  # attend: QK^T and AV
            + 10 * m * d  # norm1 + norm2
            + 4 * m * d * d)  # ffn: Linear(d -> 2d), Linear(2d -> d)


def mobilevit_block_macs(c, d, layers, attention, h, w) -> int:
    """MACs of ``layers.mobilevit_block.MobileViTBlock`` on a (c, h, w) map, transformer width d."""
    hw = h * w
    macs = conv_bn_macs(c, c, 3, h, w, groups=c)[0] + hw * c * d  # local: 3x3 depthwise + BN, 1x1 c -> d
    n = hw // 4  # tokens per pixel position of the 2x2 patch (P = 4 sequences)
    for _ in range(layers):  # _Layer
        macs += 10 * hw * d + 4 * hw * d * d  # norm1 + norm2; ffn Linear(d -> 2d), Linear(2d -> d)
        if attention == "separable":  # SeparableAttention: score d -> 1, k and v d -> d; then proj d -> d
            macs += hw * d * (1 + 2 * d) + hw * d * d
        else:  # SoftmaxTokens: qkv d -> 3d; attend QK^T + AV per position (4 x 2n^2 d); proj d -> d
            macs += hw * 3 * d * d + 4 * 2 * n * n * d + hw * d * d
    macs += 5 * hw * d  # MobileViTBlock.norm (LayerNorm after the layers)
    macs += conv_bn_macs(d, c, 1, h, w)[0] + conv_bn_macs(d + c, c, 1, h, w)[0]  # proj d -> c; fuse d + c -> c
    return macs


def resnet50_macs(size: int) -> tuple[int, tuple[int, ...]]:
    """(MACs, channels at strides 4/8/16/32) of ``models.resnet.ResNet50``."""
    m, h, w = conv_bn_macs(3, 64, 7, size, size, 2)  # conv1 7x7/2 + bn1
    h, w = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1  # maxpool 3x3/2 (zero cost)
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):  # layer1..layer4
        for i in range(blocks):  # Bottleneck
            s = stride if i == 0 else 1
            m += conv_bn_macs(cin, width, 1, h, w)[0]  # conv1 1x1 + bn1
            mm, oh, ow = conv_bn_macs(width, width, 3, h, w, s)  # conv2 3x3 (strides) + bn2
            m += mm + conv_bn_macs(width, width * 4, 1, oh, ow)[0]  # conv3 1x1 + bn3
            if s != 1 or cin != width * 4:
                m += conv_bn_macs(cin, width * 4, 1, h, w, s)[0]  # downsample 1x1 + BN
            cin, h, w = width * 4, oh, ow
    return m + cin * h * w, (256, 512, 1024, 2048)  # + pool: AdaptiveAvgPool2d(1), 1 per input element


def encoder_macs(cfg: EncoderCfg, size: int, tokens_read: bool = True,
                 parts: dict | None = None) -> tuple[int, tuple[int, ...], int]:
    """(MACs, channels at strides 4/8/16/32, global width) of an encoder (``models.mobile_encoders``, ResNet-50).

    Mobile-Former's token path counts only if something reads the tokens: Former->Mobile or a
    ``light_cross`` bridge. Otherwise it is dead code, which fvcore's trace (like ONNX export) drops.
    ``parts``: a dict to add the MACs to by kind of work, each running at its own speed in onnxruntime
    (the latency predictor's features): ``stem``, ``pointwise``, ``depthwise``, ``expanded`` (elements),
    ``tokens`` (the Mobile-Former token path, many tiny matmuls) and the counts ``blocks``, ``token_blocks``.
    What it does not split (Former->Mobile, MobileViT blocks, head, ResNet-50) is the total less these.
    """
    if cfg.type == "resnet50":
        m, chans = resnet50_macs(size)
        return m, chans, 2048
    m, h, w = conv_bn_macs(3, cfg.stem, 3, size, size, 2)  # _StageEncoder.stem 3x3/2
    _add(parts, stem=m)
    cin, stride, chans = cfg.stem, 2, {}
    tokens = cfg.type == "mobile_former" and (cfg.former_to_mobile or tokens_read)  # MobileFormerEncoder.token_path
    for s in cfg.stages:
        for i in range(s.depth):  # InvertedResidual, or _DnaBlock for mobile_former
            st = s.stride if i == 0 else 1
            if tokens:  # _DnaBlock.m2f reads the block input, then _DnaBlock.former
                t = mobile_to_former_macs(cin, cfg.token_dim, cfg.tokens, h * w) + former_macs(cfg.token_dim, cfg.tokens)
                m += t
                _add(parts, tokens=t, token_blocks=1)
            mm, h, w = inverted_residual_macs(cin, s.width, st, s.expansion, h, w, parts)  # _DnaBlock.mobile
            m += mm
            cin = s.width
            if tokens and cfg.former_to_mobile:  # FormerToMobile: k, v Linear(d -> c) on tokens; attend QK^T + AV
                m += 2 * cfg.tokens * cfg.token_dim * cin + 2 * h * w * cfg.tokens * cin
        stride *= s.stride
        if s.attn_dim:  # a MobileViTBlock ends the stage
            m += mobilevit_block_macs(cin, s.attn_dim, s.attn_layers, cfg.attention, h, w)
        chans[stride] = cin
    if cfg.head_channels:
        m += conv_bn_macs(cin, cfg.head_channels, 1, h, w)[0]  # _StageEncoder.head 1x1
        chans[32] = cin = cfg.head_channels
    return m + cin * h * w, tuple(chans[s] for s in (4, 8, 16, 32)), cin  # + pool, 1 per input element


def decoder_macs(cin: int, ch: int, separable: bool, kind: str, size: int) -> int:
    """MACs of ``models.image_part.SimpleDecoder`` from the stride-32 map (cin channels) to stride 4."""
    s = size // 32
    m = conv_bn_macs(cin, ch, 1, s, s)[0]  # stages[0]: 1x1 cin -> ch
    for _ in range(3):  # stages[1..3]
        s *= 2
        m += 4 * ch * s * s  # nn.Upsample bilinear x2, 4 per output element
        if separable:  # 3x3 depthwise + 1x1, each with BN
            m += conv_bn_macs(ch, ch, 3, s, s, groups=ch)[0] + conv_bn_macs(ch, ch, 1, s, s)[0]
        else:
            m += conv_bn_macs(ch, ch, 3, s, s)[0]
    return m + s * s * ch * DECODER_OUT[kind]  # final: Conv2d 1x1 ch -> DECODER_OUT[kind] (bias not counted)


def model_macs(cfg: ModelCfg, size: int = 256) -> MacCount:
    """MACs of a graph-head ``TwoHandNet`` on a 1x3x``size``x``size`` input, split image / pose.

    Raises:
        ValueError: ``cfg.head`` is not ``graph`` (InterNet's PoseNet head is not covered).
    """
    if cfg.head != "graph":
        raise ValueError("analytic cost covers graph-head models only")
    _check_bounds(cfg)
    # ImagePart: encoder, decoders, fusion, global projection.
    bridge_cls = BRIDGES.get(cfg.bridge.attention)
    image, chans, gdim = encoder_macs(cfg.encoder, size, tokens_read=bridge_cls.reads_tokens)
    for d in cfg.decoders:  # every decoder reads the encoder's stride-32 map
        image += decoder_macs(chans[3], d.channels, d.separable, d.kind, size)
    b = cfg.bridge
    fmap_ch = [0] * b.levels
    for lvl in range(b.levels if bridge_cls.reads_maps else 0):  # ImagePart.fusion: only bridges read the maps
        r = map_side(lvl, size)
        cin = sum(d.channels for d in cfg.decoders)  # the decoders' stage-lvl features
        if cfg.fusion.with_encoder and lvl > 0 or not cfg.decoders:
            cin += chans[3 - lvl]  # + the encoder map at that stride
        image += conv_bn_macs(cin, cfg.fusion.channels[lvl], 1, r, r)[0]  # 1x1 cin -> fusion.channels[lvl]
        fmap_ch[lvl] = cfg.fusion.channels[lvl]
    if cfg.fusion.global_dim:
        image += gdim * cfg.fusion.global_dim  # ImagePart.global_proj: Linear(gdim -> global_dim)
        gdim = cfg.fusion.global_dim
    return MacCount(image_macs=image, pose_macs=_pose_macs(cfg, gdim, fmap_ch, size))


def _check_bounds(cfg: ModelCfg) -> None:
    """The loops below run over blocks, stages and layers: refuse counts no network has (1e8 blocks)."""
    from hand_nas.errors import HandNasError
    from hand_nas.models.validate import problems

    issues = problems(cfg)
    if issues:
        raise HandNasError(f"model {cfg.name[:64]!r}: {issues[0]}")


def _pose_macs(cfg: ModelCfg, gdim: int, fmap_ch: list[int], size: int) -> int:
    """MACs of ``models.graph_decoder.GraphDecoder`` (both hands; the two hands' modules are separate)."""
    b, g = cfg.bridge, cfg.graph
    dims = g.dims[:b.levels + 1]
    d0 = dims[0]
    pose = 2 * (gdim * (d0 - 3) + 5 * (d0 - 3))  # init[h]: Linear(gdim -> d0 - 3) + LayerNorm, on one vector
    # GraphDecoder's token_info: the encoder's tokens, else its own 6 x 64 (own_tokens)
    has_tokens = getattr(ENCODERS.get(cfg.encoder.type), "has_tokens", False)
    token_dim, tokens = (cfg.encoder.token_dim, cfg.encoder.tokens) if has_tokens else (64, 6)
    k = g.cheb_order
    for lvl in range(b.levels):
        v = 63 * 2 ** lvl  # nodes at this level
        cin, cout = dims[lvl], dims[lvl + 1]
        layer = 0  # one hand's GraphLayer
        for i in range(b.blocks):  # GraphResBlock(a -> cout)
            a = cin if i == 0 else cout
            # conv1 ChebConv: (K-1) matmuls lap (v, v) @ x (v, a), fc Linear(K a -> cout); norm1
            layer += (k - 1) * v * v * a + v * k * a * cout + 5 * v * cout
            # conv2 ChebConv (cout -> cout); shortcut Linear(a -> cout); norm2
            layer += (k - 1) * v * v * cout + v * k * cout * cout + v * a * cout + 5 * v * cout
        pose += 2 * layer  # graph[lvl][h], one per hand
        pose += BRIDGE_MACS[BRIDGES.get(b.attention)](cfg, lvl, v, cout, fmap_ch[lvl], map_side(lvl, size),
                                                        token_dim, tokens)
        pose += CROSS_MACS[CROSS_HAND.get(g.cross_hand)](v, cout)
    dl = dims[-1]
    pose += 2 * (252 * dl * 3  # per hand: coord Linear(dl -> 3) on 252 nodes
                 + dl * 252  # vertex average: matmul with avg.weight (252 -> 1)
                 + dl * 3  # cam: Linear(dl -> 3)
                 + 3 * 252 * 778  # upsample: Linear(252 -> 778) on x, y, z
                 + 21 * 778 * 3)  # joints: matmul with the joint regressor (778 -> 21)
    pose += gdim * 3  # rel_root: Linear(gdim -> 3), once
    if g.direct:
        pose += 2 * gdim * 252 * 3  # direct: Linear(gdim -> 756) per hand
    return pose


# -- the registered op choices' MACs, keyed by their class (a new bridge or cross-hand type adds its row) --------
def _pifa_macs(cfg: ModelCfg, lvl: int, v: int, cout: int, fmap_ch: int, fsize: int, token_dim: int,
               tokens: int) -> int:
    """``PifaBridge`` (mhsa), one per hand: grid tokens from a patch conv, their self-attention, then one
    self-attention over vertices + grid tokens."""
    b = cfg.bridge
    t = b.image_tokens
    gd = b.grid_dims[lvl] if lvl < len(b.grid_dims) else cout
    p = map_side(lvl) // math.isqrt(t)  # patch conv kernel = stride, fixed by the 256 layout
    cells = (fsize // p) ** 2
    pifa = cells * fmap_ch * gd * p * p  # to_grid: Conv2d(fmap_ch -> gd, p, stride p)
    if cells != t:  # grid_pos resized to the grid: bilinear interpolate, 4 per output element
        pifa += 4 * gd * cells
    pifa += self_attention_macs(cells, gd) + cells * gd * cout  # grid_attn; grid_proj Linear(gd -> cout)
    pifa += self_attention_macs(v + cells, cout)  # joint_attn over vertices + grid tokens
    return 2 * pifa


def _light_cross_macs(cfg: ModelCfg, lvl: int, v: int, cout: int, fmap_ch: int, fsize: int, token_dim: int,
                      tokens: int) -> int:
    """``TokenUpdate`` (shared by the hands), then ``LightCrossBridge`` per hand."""
    t = cfg.bridge.image_tokens
    side = math.isqrt(t)
    macs = 0
    if fsize < side and side % fsize == 0:  # TokenUpdate's `small` map: used as it is, not pooled
        pixels = fsize * fsize
    else:
        macs += fmap_ch * fsize * fsize  # pool: AdaptiveAvgPool2d(side), 1 per input element
        pixels = t
    macs += mobile_to_former_macs(fmap_ch, token_dim, tokens, pixels)  # m2f
    macs += tokens * token_dim * cout  # to_vertex: Linear(token_dim -> cout)
    return macs + 2 * (2 * v * tokens * cout)  # LightCrossBridge: attend(verts, tokens, tokens): QK^T + AV


def _softmax_cross_macs(v: int, d: int) -> int:
    """``SoftmaxCrossHand``: d^2: self_l/self_r 2 x 6, cross 2 x 4 (q, k, v, fc), mlp_l/mlp_r 2 x 2 = 24;
    v^2 d: self 2 x 2, cross 2 x 2 = 8; LayerNorms v d: self 2 x 10, norm_l/norm_r 10, mlps 10 = 40."""
    return 24 * v * d * d + 8 * v * v * d + 40 * v * d


def _separable_cross_macs(v: int, d: int) -> int:
    """``SeparableCrossHand``."""
    return (10 * v * d  # norm_l + norm_r
            + 2 * (v * d * (1 + d) + 2 * v * d * d)  # attn x2: score, k (context); v, proj
            + 2 * (5 * v * d + 2 * v * d * d))  # mlp_l, mlp_r: LN + fc1, fc2


BRIDGE_MACS = {PifaBridge: _pifa_macs, LightCrossBridge: _light_cross_macs, NoBridge: lambda *args: 0}
# elementwise: element-wise products only (not MACs, as fvcore counts); none: identity
CROSS_MACS = {SoftmaxCrossHand: _softmax_cross_macs, SeparableCrossHand: _separable_cross_macs,
              ElementwiseCrossHand: lambda v, d: 0, NoCrossHand: lambda v, d: 0}
