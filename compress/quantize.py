"""Quantization-aware training with brevitas: int8 (or lower-bit) weights per channel, int8 activations per tensor.

Every Conv2d / ConvTranspose2d / Linear becomes its brevitas counterpart (``layerwise_quantize``, no
graph tracing): the layer's input is fake-quantized per tensor (``act_bits``), its weight per output
channel (``weight_bits``); biases stay float. Kept float: the graph decoder's vertex-averaging layer
(used as a matmul, not called) and the frozen 252 -> 778 upsampling (the mesh hierarchy's fixed
weights; QAT must not train it). Calibration sets the activation ranges from a few batches before
fine-tuning; the fake-quantized model is then a normal ``nn.Module`` for ``hand_nas.train``.
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
from torch import nn

FLOAT_LAYERS = ("pose.avg", "pose.upsample")


@dataclass(frozen=True)
class QuantCfg:
    """Attributes:
        weight_bits: weight bit width (8 = int8; 4..7 for lower-bit weights).
        act_bits: activation bit width.
        qat_steps: fine-tuning steps with fake quantization (0: calibration only).
    """

    weight_bits: int = 8
    act_bits: int = 8
    qat_steps: int = 50


def _brevitas():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brevitas.fx deprecation and the missing fast_hadamard_transform notice
        import brevitas.nn as qnn
        from brevitas.graph.quantize import layerwise_quantize
        from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat
    return qnn, layerwise_quantize, Int8ActPerTensorFloat, Int8WeightPerChannelFloat


def quantize_model(model: nn.Module, cfg: QuantCfg = QuantCfg()) -> nn.Module:
    """A fake-quantized deep copy of ``model`` (brevitas layers, float everywhere else)."""
    if not 2 <= cfg.weight_bits <= 8 or not 2 <= cfg.act_bits <= 8:
        raise ValueError(f"bits: weights {cfg.weight_bits}, activations {cfg.act_bits}; expected 2..8")
    qnn, layerwise_quantize, act_q, weight_q = _brevitas()
    common = {"input_quant": act_q, "input_bit_width": cfg.act_bits, "weight_quant": weight_q,
              "weight_bit_width": cfg.weight_bits, "bias_quant": None, "return_quant_tensor": False}
    layer_map = {nn.Conv2d: (qnn.QuantConv2d, common), nn.ConvTranspose2d: (qnn.QuantConvTranspose2d, common),
                 nn.Linear: (qnn.QuantLinear, common)}
    net = copy.deepcopy(model).eval()
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    qnet = layerwise_quantize(net, compute_layer_map=layer_map, name_blacklist=list(FLOAT_LAYERS))
    for n, p in qnet.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    return qnet


def calibrate(qmodel: nn.Module, batches) -> None:
    """Set activation ranges from ``batches`` (an iterable of image tensors (B, 3, H, W))."""
    from brevitas.graph.calibrate import calibration_mode

    qmodel.eval()
    with torch.no_grad(), calibration_mode(qmodel):
        for images in batches:
            qmodel(images)


def quantized_layers(qmodel: nn.Module) -> int:
    qnn = _brevitas()[0]
    return sum(isinstance(m, (qnn.QuantConv2d, qnn.QuantConvTranspose2d, qnn.QuantLinear)) for m in qmodel.modules())
