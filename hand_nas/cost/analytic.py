"""Closed-form MAC counts of the model family, in fvcore's convention, for the search's budget gate.

fvcore needs a model instance and a JIT trace (0.3-2 s); the gate has to screen dozens of sampled
configurations per second. Every layer's count here mirrors ``hand_nas/layers`` and
``hand_nas/models`` one to one (conv and linear MACs without bias, matmuls, BatchNorm 2/element,
LayerNorm 5/element, bilinear upsampling 4/output element, adaptive pooling 1/input element);
tests check the totals against fvcore on every preset and on sampled configurations. Input
1x3xSxS with S a multiple of 32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hand_nas.config import EncoderCfg, ModelCfg
from hand_nas.models.image_part import DECODER_OUT


@dataclass(frozen=True)
class Cost:
    """MACs split like the papers' tables."""

    image: int
    pose: int

    @property
    def total(self) -> int:
        return self.image + self.pose


def conv_bn(cin, cout, k, h, w, stride=1, groups=1) -> tuple[int, int, int]:
    """(MACs incl. BN, out h, out w) of conv (padding k//2) + BatchNorm."""
    oh, ow = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
    return oh * ow * cout * (cin // groups) * k * k + 2 * cout * oh * ow, oh, ow


def inverted_residual(cin, cout, stride, expansion, h, w):
    hidden = int(round(cin * expansion))
    macs = 0
    if hidden != cin:
        macs += conv_bn(cin, hidden, 1, h, w)[0]
    m, oh, ow = conv_bn(hidden, hidden, 3, h, w, stride, groups=hidden)
    macs += m + conv_bn(hidden, cout, 1, oh, ow)[0]
    return macs, oh, ow


def self_attention(n, d) -> int:
    """``SelfAttention`` block over n tokens of width d: 6nd^2 + 2n^2 d + 10nd."""
    return 6 * n * d * d + 2 * n * n * d + 10 * n * d


def mobile_to_former(c, d, m, pixels) -> int:
    return m * d * c + 2 * m * pixels * c + m * c * d + 5 * m * d


def former(d, m) -> int:
    return 2 * m * d * d + 2 * m * m * d + 10 * m * d + 4 * m * d * d


def mobilevit_block(c, d, layers, attention, h, w) -> int:
    hw = h * w
    macs = conv_bn(c, c, 3, h, w, groups=c)[0] + hw * c * d
    n = hw // 4
    for _ in range(layers):
        macs += 10 * hw * d + 4 * hw * d * d  # two LNs, FFN d -> 2d -> d
        if attention == "separable":
            macs += hw * d * (1 + 2 * d) + hw * d * d
        else:
            macs += hw * 3 * d * d + 4 * 2 * n * n * d + hw * d * d
    macs += 5 * hw * d
    macs += conv_bn(d, c, 1, h, w)[0] + conv_bn(d + c, c, 1, h, w)[0]
    return macs


def resnet50(size: int) -> tuple[int, tuple[int, ...]]:
    m, h, w = conv_bn(3, 64, 7, size, size, 2)
    h, w = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1  # max pool (zero cost)
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            s = stride if i == 0 else 1
            m += conv_bn(cin, width, 1, h, w)[0]
            mm, oh, ow = conv_bn(width, width, 3, h, w, s)
            m += mm + conv_bn(width, width * 4, 1, oh, ow)[0]
            if s != 1 or cin != width * 4:
                m += conv_bn(cin, width * 4, 1, h, w, s)[0]
            cin, h, w = width * 4, oh, ow
    return m + cin * h * w, (256, 512, 1024, 2048)  # + global average pool


def encoder(cfg: EncoderCfg, size: int, tokens_read: bool = True) -> tuple[int, tuple[int, ...], int]:
    """(MACs, channels at strides 4/8/16/32, global width).

    Mobile-Former's token path counts only if something reads the tokens: Former->Mobile or a
    ``light_cross`` bridge. Otherwise it is dead code, which fvcore's trace (like ONNX export) drops.
    """
    if cfg.type == "resnet50":
        m, chans = resnet50(size)
        return m, chans, 2048
    m, h, w = conv_bn(3, cfg.stem, 3, size, size, 2)
    cin, stride, chans = cfg.stem, 2, {}
    tokens = cfg.type == "mobile_former" and (cfg.former_to_mobile or tokens_read)
    for s in cfg.stages:
        for i in range(s.depth):
            st = s.stride if i == 0 else 1
            if tokens:
                m += mobile_to_former(cin, cfg.token_dim, cfg.tokens, h * w) + former(cfg.token_dim, cfg.tokens)
            mm, h, w = inverted_residual(cin, s.width, st, s.expansion, h, w)
            m += mm
            cin = s.width
            if tokens and cfg.former_to_mobile:
                m += 2 * cfg.tokens * cfg.token_dim * cin + 2 * h * w * cfg.tokens * cin
        stride *= s.stride
        if s.attn_dim:
            m += mobilevit_block(cin, s.attn_dim, s.attn_layers, cfg.attention, h, w)
        chans[stride] = cin
    if cfg.head_channels:
        m += conv_bn(cin, cfg.head_channels, 1, h, w)[0]
        chans[32] = cin = cfg.head_channels
    return m + cin * h * w, tuple(chans[s] for s in (4, 8, 16, 32)), cin


def decoder(cin: int, ch: int, separable: bool, kind: str, size: int) -> int:
    s = size // 32
    m = conv_bn(cin, ch, 1, s, s)[0]
    for _ in range(3):
        s *= 2
        m += 4 * ch * s * s
        if separable:
            m += conv_bn(ch, ch, 3, s, s, groups=ch)[0] + conv_bn(ch, ch, 1, s, s)[0]
        else:
            m += conv_bn(ch, ch, 3, s, s)[0]
    return m + s * s * ch * DECODER_OUT[kind]


def model_cost(cfg: ModelCfg, size: int = 256) -> Cost:
    """Analytic MACs of a graph-head model (InterNet's PoseNet head is not covered)."""
    if cfg.head != "graph":
        raise ValueError("analytic cost covers graph-head models only")
    _check_bounds(cfg)
    image, chans, gdim = encoder(cfg.encoder, size, tokens_read=cfg.bridge.attention == "light_cross")
    for d in cfg.decoders:
        image += decoder(chans[3], d.channels, d.separable, d.kind, size)
    b = cfg.bridge
    fmap_ch = [0] * b.levels
    for lvl in range(b.levels if b.attention != "none" else 0):  # only bridges read the fused maps
        r = size // 32 * 2 ** lvl
        cin = sum(d.channels for d in cfg.decoders)
        if cfg.fusion.with_encoder and lvl > 0 or not cfg.decoders:
            cin += chans[3 - lvl]
        image += conv_bn(cin, cfg.fusion.channels[lvl], 1, r, r)[0]
        fmap_ch[lvl] = cfg.fusion.channels[lvl]
    if cfg.fusion.global_dim:
        image += gdim * cfg.fusion.global_dim
        gdim = cfg.fusion.global_dim
    return Cost(image, _pose(cfg, gdim, fmap_ch, size))


def _check_bounds(cfg: ModelCfg) -> None:
    """The loops below run over blocks, stages and layers: refuse counts no network has (1e8 blocks)."""
    from hand_nas.errors import HandNasError
    from hand_nas.models.validate import problems

    issues = problems(cfg)
    if issues:
        raise HandNasError(f"model {cfg.name[:64]!r}: {issues[0]}")


def _pose(cfg: ModelCfg, gdim: int, fmap_ch: list[int], size: int) -> int:
    b, g = cfg.bridge, cfg.graph
    dims = g.dims[:b.levels + 1]
    d0 = dims[0]
    pose = 2 * (gdim * (d0 - 3) + 5 * (d0 - 3))
    token_dim, tokens = (cfg.encoder.token_dim, cfg.encoder.tokens) if cfg.encoder.type == "mobile_former" else (64, 6)
    k = g.cheb_order
    for lvl in range(b.levels):
        v = 63 * 2 ** lvl
        cin, cout = dims[lvl], dims[lvl + 1]
        layer = 0
        for i in range(b.blocks):
            a = cin if i == 0 else cout
            layer += (k - 1) * v * v * a + v * k * a * cout + 5 * v * cout
            layer += (k - 1) * v * v * cout + v * k * cout * cout + v * a * cout + 5 * v * cout
        pose += 2 * layer
        fsize = size // 32 * 2 ** lvl
        t = b.image_tokens
        if b.attention == "mhsa":
            gd = b.grid_dims[lvl] if lvl < len(b.grid_dims) else cout
            p = (8 * 2 ** lvl) // math.isqrt(t)  # patch conv kernel = stride, fixed by the 256 layout
            cells = (fsize // p) ** 2
            pifa = cells * fmap_ch[lvl] * gd * p * p + self_attention(cells, gd) + cells * gd * cout
            pifa += self_attention(v + cells, cout)
            pose += 2 * pifa
        elif b.attention == "light_cross":
            pose += fmap_ch[lvl] * fsize * fsize  # adaptive pool
            pose += mobile_to_former(fmap_ch[lvl], token_dim, tokens, t) + tokens * token_dim * cout
            pose += 2 * (2 * v * tokens * cout)
        if g.cross_hand == "softmax":
            pose += 24 * v * cout * cout + 8 * v * v * cout + 40 * v * cout
        elif g.cross_hand == "separable":
            pose += 10 * v * cout + 2 * (v * cout * (1 + cout) + 2 * v * cout * cout) + 2 * (5 * v * cout + 2 * v * cout * cout)
    dl = dims[-1]
    pose += 2 * (252 * dl * 3 + dl * 252 + dl * 3 + 3 * 252 * 778 + 21 * 778 * 3) + gdim * 3
    return pose
