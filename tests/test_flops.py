"""Toy modules counted against hand-computed MACs (fvcore convention: MACs, no bias)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hand_nas.cost.flops import count_module
from hand_nas.errors import HandNasError
from hand_nas.layers.attention import attend


def test_conv():
    assert count_module(nn.Conv2d(16, 32, 3, padding=1), torch.zeros(1, 16, 32, 32)) == 32 * 32 * 32 * 16 * 9


def test_depthwise_conv():
    assert count_module(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), torch.zeros(1, 16, 32, 32)) == 32 * 32 * 16 * 9


def test_linear_on_tokens():
    assert count_module(nn.Linear(64, 128), torch.zeros(1, 49, 64)) == 49 * 64 * 128


class MatmulAttention(nn.Module):
    def forward(self, q, k, v):
        return attend(q, k, v, heads=4)


class SdpaAttention(nn.Module):
    def forward(self, q, k, v):
        b, n, c = q.shape
        split = lambda t: t.reshape(b, -1, 4, c // 4).transpose(1, 2)  # noqa: E731
        return nn.functional.scaled_dot_product_attention(split(q), split(k), split(v)).transpose(1, 2).reshape(b, n, c)


@pytest.mark.parametrize("module", [MatmulAttention(), SdpaAttention()], ids=["matmul", "sdpa"])
def test_attention_cores(module):
    q = k = v = torch.zeros(1, 49, 64)
    assert count_module(module, q, k, v) == 2 * 49 * 49 * 64  # QK^T and AV: 307,328


class MhaFastPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


def test_multihead_attention_fast_path_in_eval_no_grad():
    from hand_nas.cost.flops import flop_analysis

    m = MhaFastPath().eval()
    x = torch.zeros(1, 49, 64)
    with torch.no_grad():  # the fused kernel fvcore cannot see is really the path taken
        assert set(flop_analysis(m, x).by_operator()) == {"_native_multi_head_attention"}
    expected = 3 * 49 * 64 * 64 + 2 * 49 * 49 * 64 + 49 * 64 * 64  # 1,110,144
    assert count_module(m, x) == expected


class Uncountable(nn.Module):
    def forward(self, x):
        return torch.cumprod(x, dim=-1)


def test_an_uncountable_operator_is_an_error():
    with pytest.raises(HandNasError, match="aten::cumprod"):
        count_module(Uncountable(), torch.zeros(1, 8))
