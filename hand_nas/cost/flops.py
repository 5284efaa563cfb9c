"""GMACs the fvcore way: the only module that imports fvcore.

Convention (the papers' tables follow it): one fused multiply-add = one flop; convolutions and
linear/matmul/einsum layers count MACs without bias; BatchNorm counts 2 per output element in eval
mode, LayerNorm 5, bilinear upsampling 4 per output element, adaptive average pooling 1 per input
element; element-wise operations, activations, softmax and data movement count zero. The model is
counted in eval mode, batch 1, 3x256x256 unless told otherwise.

fvcore cannot see two attention kernels, so hand-nas adds handles for them:
``aten::scaled_dot_product_attention`` (QK^T and AV) and ``aten::_native_multi_head_attention``
(nn.MultiheadAttention's fast path in eval under no_grad: projections, QK^T, AV). Any other operator
fvcore does not count must be on ``ZERO_COST_OPS`` (zero by the convention above); anything else is
an error, never a silent zero.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass

import torch
from torch import nn

from hand_nas.errors import HandNasError
from hand_nas.models.traceable import ALL_OUTPUTS, TupleOutputs

FLOPS_NOTE = "GMACs counted the fvcore way: one fused multiply-add = one flop"  # said wherever a number is shown

# Operators fvcore leaves uncounted that are zero by the convention (element-wise, reductions that
# the papers' counters ignore, comparisons, data movement, random numbers).
ZERO_COST_OPS = frozenset({
    "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::rsub", "aten::mul", "aten::mul_", "aten::div",
    "aten::div_", "aten::neg", "aten::exp", "aten::log", "aten::sqrt", "aten::rsqrt", "aten::pow", "aten::abs",
    "aten::softmax", "aten::log_softmax", "aten::sigmoid", "aten::sigmoid_", "aten::tanh", "aten::silu",
    "aten::silu_", "aten::gelu", "aten::hardtanh", "aten::hardtanh_", "aten::hardswish", "aten::hardsigmoid",
    "aten::clamp", "aten::clamp_min", "aten::clamp_max", "aten::max_pool2d", "aten::mean", "aten::sum",
    "aten::repeat_interleave", "aten::linspace", "aten::zeros_like", "aten::ones_like", "aten::full_like",
    "aten::where", "aten::lt", "aten::gt", "aten::le", "aten::ge", "aten::eq", "aten::max", "aten::min",
    "aten::dropout", "aten::feature_dropout", "aten::scatter", "aten::index", "aten::fill_", "aten::copy_",
    "aten::square", "aten::reciprocal", "aten::leaky_relu", "aten::elu", "aten::relu6", "aten::cumsum",
    "aten::sort", "aten::argmax", "aten::topk", "aten::norm", "aten::linalg_vector_norm", "aten::var",
    "aten::std", "aten::exp_", "aten::masked_fill", "aten::masked_fill_", "aten::expand_as", "aten::baddbmm_",
    "aten::flip",  # the other hand of a hand-batched decoder (hand_nas.models.hand_batched)
    "aten::numpy_T",  # tensor.T: data movement (PifaBridge's position embedding below 256 px)
})


def _shape(v) -> list[int]:
    from fvcore.nn.jit_handles import get_shape

    return get_shape(v)


def sdpa_flop(inputs, outputs) -> int:
    """MACs of scaled_dot_product_attention: Q (..., L, E), K (..., S, E), V (..., S, Ev)."""
    q, k, v = (_shape(x) for x in inputs[:3])
    batch = math.prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def native_mha_flop(inputs, outputs) -> int:
    """MACs of nn.MultiheadAttention's fast path: q/k/v projections, QK^T, AV and the output projection."""
    q, k = _shape(inputs[0]), _shape(inputs[1])
    e = q[-1]
    batch = math.prod(q[:-2])
    lq, lk = q[-2], k[-2]
    return batch * (lq * e * e + 2 * lk * e * e + 2 * lq * lk * e + lq * e * e)


@dataclass(frozen=True)
class CostReport:
    """Cost of a model at one input size (GMACs, fvcore convention; parameters in millions)."""

    gmacs_total: float
    gmacs_image: float
    gmacs_pose: float
    params_m: float
    input_size: int
    by_operator: dict

    def to_dict(self) -> dict:
        return asdict(self)


def flop_analysis(model: nn.Module, inputs):
    """An fvcore FlopCountAnalysis with hand-nas' handles, warnings silenced (we check ourselves)."""
    from fvcore.nn import FlopCountAnalysis

    fca = FlopCountAnalysis(model, inputs)
    fca.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop)
    fca.set_op_handle("aten::_native_multi_head_attention", native_mha_flop)
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    return fca


def check_supported(fca) -> None:
    """Raise if the traced graph holds an operator that fvcore skipped and the convention does not zero."""
    unknown = sorted(set(fca.unsupported_ops()) - ZERO_COST_OPS)
    if unknown:
        raise HandNasError(f"FLOP count: operator(s) {', '.join(unknown)} cannot be counted; add a handle in "
                           f"hand_nas/cost/flops.py or list them in ZERO_COST_OPS if they are element-wise")


def count_module(module: nn.Module, *inputs) -> int:
    """MACs of any module on the given inputs (eval mode, strict), as an integer."""
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            fca = flop_analysis(module, inputs if len(inputs) > 1 else inputs[0])
            total = fca.total()
            check_supported(fca)
    finally:
        module.train(was)
    return int(total)


def model_cost(model: nn.Module, size: int = 256, batch: int = 1) -> CostReport:
    """GMACs of a two-hand model split into image (``model.image``) and pose (``model.pose``) parts."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            fca = flop_analysis(TupleOutputs(model, ALL_OUTPUTS), torch.zeros(batch, 3, size, size))
            total = fca.total()
            by_module = fca.by_module()
            check_supported(fca)
            by_op = {k: v / 1e9 for k, v in Counter(fca.by_operator()).most_common()}
    finally:
        model.train(was)
    image, pose = by_module.get("net.image", 0), by_module.get("net.pose", 0)
    params = sum(p.numel() for p in model.parameters())
    return CostReport(gmacs_total=total / 1e9, gmacs_image=image / 1e9, gmacs_pose=pose / 1e9,
                      params_m=params / 1e6, input_size=size, by_operator=by_op)
