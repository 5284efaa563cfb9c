"""The per-block profile behind the selective int8 candidate (compress.onnx_export, hand_nas.cost.latency)."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from compress.onnx_export import FUSED_SCOPE, int8_faster_scopes, scope_of, scope_times_ms
from hand_nas.cost.latency import ort_node_profile_ms


def test_a_node_is_filed_under_its_module_path():
    assert scope_of("/net/image/encoder/blocks.3/m2f/q/MatMul") == "net/image/encoder/blocks.3"
    assert scope_of("/net/pose/graph.2.1/Relu_1_output_0_QuantizeLinear") == "net/pose/graph.2.1"
    assert scope_of("/net/pose/Add_1") == "net/pose"
    assert scope_of("SkipLayerNormalization_token_7") == FUSED_SCOPE


def test_only_blocks_clearly_faster_in_int8_are_chosen_costliest_first():
    fp32 = {"net/a": 1.0, "net/b": 0.5, "net/c": 0.5, "net/tiny": 0.01, FUSED_SCOPE: 2.0}
    int8 = {"net/a": 0.5, "net/b": 0.48, "net/c": 0.2, "net/tiny": 0.001, FUSED_SCOPE: 0.1}
    assert int8_faster_scopes(fp32, int8) == ["net/a", "net/c"]  # b within the margin, tiny below min_ms


class _Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc, self.norm = nn.Linear(c, c), nn.LayerNorm(c)

    def forward(self, x):
        return self.norm(x + self.fc(x))  # Add + LayerNorm: onnxruntime fuses it under a new name


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=4)
        self.blocks = nn.ModuleList([_Block(8), _Block(8)])

    def forward(self, image):
        x = self.stem(image).flatten(2).transpose(1, 2)
        for b in self.blocks:
            x = b(x)
        return x


class _Wrapped(nn.Module):  # exported names start with /net/, as under hand_nas' TupleOutputs
    def __init__(self):
        super().__init__()
        self.net = _Net()

    def forward(self, image):
        return self.net(image)


def test_fused_nodes_keep_their_module_in_the_profile(tmp_path):
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Wrapped().eval(), (torch.rand(1, 3, 32, 32),), str(path), input_names=["image"],
                          opset_version=17, dynamo=False)
    prof = ort_node_profile_ms(path, size=32, runs=3)
    assert prof and all(ms >= 0 for ms, _ in prof.values())
    assert any(not node.startswith("/net/") for node in prof)  # onnxruntime renamed some nodes it fused ...
    scopes = scope_times_ms(prof, depth=2)
    assert set(scopes) == {"net", "net/stem", "net/blocks.0", "net/blocks.1"}
    # ... and each was filed under the module its tensors belong to: both blocks hold a fused residual norm
    assert {name.split("/")[2] for node, (_, name) in prof.items() if node.startswith("SkipLayer")} == \
        {"blocks.0", "blocks.1"}
