"""The papers' networks as ``ModelCfg`` values (names are the strings used on the command line).

FLOPs are GMACs counted the fvcore way (one multiply-add = one flop; BatchNorm 2 per element in
eval mode, LayerNorm 5, bilinear upsampling 4 per output element), batch 1, 3x256x256.
"""
from __future__ import annotations

from hand_nas.config import (BridgeCfg, DecoderCfg, EncoderCfg, FusionCfg, GraphCfg, ModelCfg, PoseNetCfg,
                             StageCfg)
from hand_nas.registry import PRESETS


@PRESETS.register("intaghand")
def intaghand() -> ModelCfg:
    """IntagHand (Li et al., CVPR 2022) as its released code builds it.

    ResNet-50 trunk; two simple decoders (2D joint heatmaps 42 ch; masks + dense correspondence 8 ch),
    128 channels, from layer4; mid fusion to 256 channels at 8/16/32 px (with layer3 and layer2 past
    the first level; the unused 64 px map is not computed); a 3-level graph decoder over 63/126/252
    nodes with dims 512 -> 256 -> 128 -> 64, 4 Chebyshev (K=2) residual blocks per level and hand,
    PIFA (64 grid tokens of width 256/128/64) and softmax cross-hand attention, 4 heads, dropout
    0.05. Choices the code leaves implicit: the positional code is the template pooled to 63 nodes
    (IntagHand pools its dense-correspondence colours; same width, no FLOPs), the Chebyshev Laplacian
    is the standard 2L/lmax - I (IntagHand's L/(2 lmax) - I quirk changes values, not cost), and a
    3-value right-minus-left root head is added (6 kMACs) so MRRPE can be scored.

    fvcore eval: 8.3695 = 7.3111 (image) + 1.0585 (pose) GMACs. The paper's 8.42 = 7.36 + 1.06
    counts BatchNorm at 5 flops per element (fvcore's training-mode rate): 8.4184 = 7.3598 + 1.0586.
    """
    return ModelCfg(
        name="intaghand", head="graph", encoder=EncoderCfg(type="resnet50"),
        decoders=(DecoderCfg("heatmap2d", 128), DecoderCfg("segmentation", 128)),
        fusion=FusionCfg(channels=(256, 256, 256), with_encoder=True),
        bridge=BridgeCfg(levels=3, blocks=4, attention="mhsa", image_tokens=64, grid_dims=(256, 128, 64)),
        graph=GraphCfg(dims=(512, 256, 128, 64), cheb_order=2, cross_hand="softmax", heads=4, dropout=0.05))


@PRESETS.register("internet")
def internet() -> ModelCfg:
    """InterNet (Moon et al., ECCV 2020): ResNet-50 + PoseNet with 21x64x64x64 3D heatmaps per hand.

    fvcore eval: 11.9507 = 5.3675 (image: ResNet-50) + 6.5833 (pose) GMACs. LWA-HAND's Table 1 lists
    the pose part as 14.12: that figure is not a MAC count of this network; it matches a
    deconvolution-counting bug of older profilers (DeepSpeed <= 0.7 sizes ConvTranspose2d as
    Cin*Cin*k^2*Hin*Win: 14.095), so hand-nas reports 6.58.
    """
    return ModelCfg(name="internet", head="posenet", encoder=EncoderCfg(type="resnet50"), decoders=(),
                    posenet=PoseNetCfg(channels=256, deconvs=3, depth_bins=64))


@PRESETS.register("lwa_hand")
def lwa_hand() -> ModelCfg:
    """LWA-HAND (Di and Yu, ECCVW 2022), calibrated to its 0.47 = 0.25 (image) + 0.22 (pose) GFLOPs.

    The paper gives the modules, not their widths. Choices (each documented here, all open in the paper):

    * Encoder: Mobile-Former-style with the paper's one-way local -> global bridge (Mobile->Former
      with only W^Q, Former on the tokens, no Former->Mobile); M = 6 global tokens of width 128;
      stem 16, stages 16 (x1, stride 1, expansion 2), 16 (x2), 32 (x2), 64 (x2), 88 (x2, stride 1,
      expansion 6), 128 (x2, expansion 6): Mobile-Former-151M's widths at 0.8x. Mobile blocks are
      inverted residuals with ReLU6 (no DyReLU).
    * Image decoders: the paper's 2.5D heatmap and 2D segmentation decoders, IntagHand's simple
      decoder with depthwise-separable 3x3 convolutions at 40 channels.
    * Fusion: 64 channels per level; the global feature is projected to 128.
    * Pose: three pyramid levels (63/126/252 nodes), 3 Chebyshev (K=2) blocks per level and hand,
      vertex widths 256 -> 128 -> 96 -> 64; light_cross bridges (Mobile->Former from the level's
      map pooled to 4x4 pixels into the 6 tokens, tokens mapped to the vertex width and fused into
      the vertices); separable (linear) cross-hand attention.

    fvcore eval: 0.4697 = 0.2438 + 0.2259 GMACs.
    """
    enc = EncoderCfg(type="mobile_former", stem=16, tokens=6, token_dim=128, former_to_mobile=False, bridge_heads=2,
                     stages=(StageCfg(16, 1, 1, 2.0), StageCfg(16, 2, 2, 4.0), StageCfg(32, 2, 2, 4.0),
                             StageCfg(64, 2, 2, 4.0), StageCfg(88, 2, 1, 6.0), StageCfg(128, 2, 2, 6.0)))
    return ModelCfg(
        name="lwa_hand", head="graph", encoder=enc,
        decoders=(DecoderCfg("heatmap25d", 40, separable=True), DecoderCfg("segmentation", 40, separable=True)),
        fusion=FusionCfg(channels=(64, 64, 64), with_encoder=True, global_dim=128),
        bridge=BridgeCfg(levels=3, blocks=3, attention="light_cross", image_tokens=16),
        graph=GraphCfg(dims=(256, 128, 96, 64), cheb_order=2, cross_hand="separable", heads=4, dropout=0.05))


def _mobilevit_v3_xxs(attention: str = "separable") -> EncoderCfg:
    """MobileViTv3-XXS's layout (stem 16; MV2 16; 3x MV2 24; MV2 64 + block d64 L2; MV2 80 + d80 L4;
    MV2 128 + d96 L3; 1x1 to 512; MV2 expansion 2). LAGCHand's "linear attention encoder" uses
    MobileViTv2's separable attention in the blocks (the published XXS uses softmax MHSA)."""
    return EncoderCfg(type="mobilevit_v3", stem=16, attention=attention, head_channels=512, stages=(
        StageCfg(16, 1, 1, 2.0), StageCfg(24, 3, 2, 2.0), StageCfg(64, 1, 2, 2.0, attn_dim=64, attn_layers=2),
        StageCfg(80, 1, 2, 2.0, attn_dim=80, attn_layers=4), StageCfg(128, 1, 2, 2.0, attn_dim=96, attn_layers=3)))


@PRESETS.register("lagc_laencoder")
def lagc_laencoder() -> ModelCfg:
    """LAGCHand ablation row 1, "LAencoder" (2.091 GFLOPs): the linear-attention encoder in IntagHand.

    MobileViTv3-XXS with separable attention replaces ResNet-50; IntagHand's two decoders (at 84
    channels, the width that lands the row on its published cost), mid fusion (256) and graph decoder
    (PIFA + softmax cross-hand attention, 512 -> 256 -> 128 -> 64, 4 blocks) are kept.

    fvcore eval: 2.0966 = 1.0396 + 1.0570 GMACs.
    """
    return ModelCfg(
        name="lagc_laencoder", head="graph", encoder=_mobilevit_v3_xxs(),
        decoders=(DecoderCfg("heatmap2d", 84), DecoderCfg("segmentation", 84)),
        fusion=FusionCfg(channels=(256, 256, 256), with_encoder=True),
        bridge=BridgeCfg(levels=3, blocks=4, attention="mhsa", image_tokens=64, grid_dims=(256, 128, 64)),
        graph=GraphCfg(dims=(512, 256, 128, 64), cheb_order=2, cross_hand="softmax", heads=4, dropout=0.05))


@PRESETS.register("lagc_compact")
def lagc_compact() -> ModelCfg:
    """LAGCHand ablation row 2, "LAencoder + Compact" (1.023 GFLOPs).

    The compact single-hand heatmap module replaces the two decoders: one heatmap decoder with
    depthwise-separable convolutions at 64 channels, fused to compact 128-channel maps, and the graph
    decoder runs on the narrower features it yields (416 -> 208 -> 104 -> 52, grid widths to match).
    The paper gives no widths; these land the row on its published cost.

    fvcore eval: 1.0346 = 0.3115 + 0.7231 GMACs.
    """
    return ModelCfg(
        name="lagc_compact", head="graph", encoder=_mobilevit_v3_xxs(),
        decoders=(DecoderCfg("heatmap2d", 64, separable=True),),
        fusion=FusionCfg(channels=(128, 128, 128), with_encoder=True),
        bridge=BridgeCfg(levels=3, blocks=4, attention="mhsa", image_tokens=64, grid_dims=(208, 104, 52)),
        graph=GraphCfg(dims=(416, 208, 104, 52), cheb_order=2, cross_hand="softmax", heads=4, dropout=0.05))


@PRESETS.register("lagc_hand")
def lagc_hand() -> ModelCfg:
    """LAGCHand (Sun, Guan, Ding 2023), row 3: "LAencoder + Compact + LGraph" (0.81 GFLOPs).

    The linear graph module replaces softmax cross-hand attention with the paper's element-wise
    mixing HF_L = beta H_L + (1 - beta) H_R, HF_R = alpha H_R + (1 - alpha) H_L (learned per-channel
    alpha, beta) and runs 3 graph blocks per level instead of 4 (the paper gives no block count).

    fvcore eval: 0.8008 = 0.3115 + 0.4893 GMACs.
    """
    cfg = lagc_compact()
    return ModelCfg(name="lagc_hand", head="graph", encoder=cfg.encoder, decoders=cfg.decoders, fusion=cfg.fusion,
                    bridge=BridgeCfg(levels=3, blocks=3, attention="mhsa", image_tokens=64, grid_dims=(208, 104, 52)),
                    graph=GraphCfg(dims=(416, 208, 104, 52), cheb_order=2, cross_hand="elementwise", heads=4,
                                   dropout=0.05))


def resolve_model(spec: str) -> ModelCfg:
    """A preset name, or a YAML/JSON file holding a ModelCfg (optionally under a 'model' key)."""
    from pathlib import Path

    from hand_nas.errors import HandNasError

    if spec in PRESETS:
        return PRESETS.get(spec)()
    from hand_nas.files import read_yaml

    path = Path(spec)
    if not path.is_file():
        raise HandNasError(f"{spec}: neither a preset ({', '.join(PRESETS.names())}) nor a config file")
    data = read_yaml(path, "model config")
    if isinstance(data, dict) and "model" in data and isinstance(data["model"], dict):
        data = data["model"]
    try:
        return ModelCfg.from_dict(data)
    except HandNasError as exc:
        raise HandNasError(f"{path}: {exc}") from None
