"""Small configurations of every encoder / bridge / cross-hand type, for fast tests."""
from __future__ import annotations

from hand_nas.config import BridgeCfg, DecoderCfg, EncoderCfg, FusionCfg, GraphCfg, ModelCfg, StageCfg

SMALL_STAGES = (StageCfg(8, 1, 1, 2.0), StageCfg(16, 1, 2, 2.0), StageCfg(24, 1, 2, 2.0), StageCfg(32, 1, 2, 2.0),
                StageCfg(48, 1, 2, 2.0))


def small_encoder(kind: str, attention: str = "separable") -> EncoderCfg:
    if kind == "resnet50":
        return EncoderCfg(type="resnet50")
    stages = SMALL_STAGES
    if kind == "mobilevit_v3":
        stages = SMALL_STAGES[:3] + (StageCfg(32, 1, 2, 2.0, attn_dim=16, attn_layers=1),
                                     StageCfg(48, 1, 2, 2.0, attn_dim=16, attn_layers=1))
    return EncoderCfg(type=kind, stem=8, stages=stages, tokens=2, token_dim=16, attention=attention, head_channels=0)


def small_model(encoder: str = "mobilenet_v2", bridge: str = "mhsa", cross: str = "softmax", levels: int = 3,
                attention: str = "separable", decoders=("heatmap2d", "segmentation"), cheb_order: int = 2) -> ModelCfg:
    return ModelCfg(
        name=f"small-{encoder}-{bridge}-{cross}", encoder=small_encoder(encoder, attention),
        decoders=tuple(DecoderCfg(k, 16, separable=k != "heatmap2d") for k in decoders),
        fusion=FusionCfg(channels=(16, 16, 16), with_encoder=True, global_dim=32),
        bridge=BridgeCfg(levels=levels, blocks=1, attention=bridge, image_tokens=16, grid_dims=(16, 16, 16)),
        graph=GraphCfg(dims=(32, 16, 16, 16)[:levels + 1], cheb_order=cheb_order, cross_hand=cross, heads=2,
                       dropout=0.0))


def fvcore_macs_of(cfg_dict: dict, size: int = 256) -> tuple[int, int]:
    """fvcore's (image, pose) MACs of a config dict as integers; a top-level function so worker processes can run it."""
    import torch

    from hand_nas.cost.flops import model_cost
    from hand_nas.models import build_model

    torch.set_num_threads(1)  # a worker process of its own: one core each
    r = model_cost(build_model(ModelCfg.from_dict(cfg_dict)), size)
    return round(r.gmacs_image * 1e9), round(r.gmacs_pose * 1e9)
