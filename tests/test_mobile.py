"""The mobile form and ExecuTorch programs (XNNPACK delegate) of small models.

The form's outputs are checked on every family at once (milliseconds); lowering a program takes ExecuTorch
40-60 s per small model on one core (the int8 one three times that), so one more family is lowered here, on a
one-level graph, beside the lwa-like one in the compress bundle (tests/test_compress.py), both checked to be one
XNNPACK partition with nothing on portable kernels. LiteRT's conversion runs in the bundle test (a minute each).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from model_configs import small_model
from torch import nn

from compress.onnx_export import relative_error
from hand_nas.errors import HandNasError
from hand_nas.models import build_model
from hand_nas.models.hand_batched import StackedLayerNorm, hand_batched
from hand_nas.models.mobile_form import xnnpack_form
from hand_nas.models.traceable import DEPLOY_OUTPUTS, TupleOutputs

FAMILY = [dict(encoder="mobile_former", bridge="light_cross", cross="separable"),
          dict(encoder="mobilevit_v3", attention="softmax", bridge="mhsa", cross="softmax"),
          dict(encoder="mobilevit_v3", attention="separable", bridge="light_cross", cross="elementwise"),
          dict(encoder="mobilenet_v2", bridge="mhsa", cross="elementwise"),
          dict(encoder="mobilenet_v2", bridge="none", cross="none", levels=1)]
needs_executorch = pytest.mark.skipif(importlib.util.find_spec("executorch") is None,
                                      reason="ExecuTorch is not installed (pip install 'hand-nas[mobile]')")


@pytest.mark.parametrize("quantizable", [False, True], ids=["fp32-form", "quantizable-form"])
@pytest.mark.parametrize("kw", FAMILY, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_the_xnnpack_form_computes_what_the_model_computes(kw, quantizable):
    torch.manual_seed(0)
    m = build_model(small_model(**kw, cheb_order=3)).eval()
    form = xnnpack_form(hand_batched(m), quantizable=quantizable)
    if quantizable:  # every graph-convolution weight is an nn.Linear the quantizers annotate
        assert not [x for x in form.modules() if type(x).__name__ in ("StackedLinear", "StackedChebConv")]
    # nothing XNNPACK lacks is left: no LayerNorm module, no adaptive pool, no separable attention of the
    # training form
    left = [type(x).__name__ for x in form.modules()
            if isinstance(x, (nn.LayerNorm, StackedLayerNorm, nn.AdaptiveAvgPool2d))
            or type(x).__name__ in ("SeparableAttention", "SoftmaxTokens")]
    assert not left, left
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        ref = TupleOutputs(m, DEPLOY_OUTPUTS)(x)
        got = TupleOutputs(form, DEPLOY_OUTPUTS)(x)
    for a, b in zip(ref, got):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), (a - b).abs().max()


@needs_executorch
@pytest.mark.slow
def test_executorch_takes_the_whole_graph_and_runs_it_on_one_thread(tmp_path):
    from compress.mobile import PteRunner, export_pte
    from hand_nas.cost.bench import format_profile
    from hand_nas.cost.runtimes import busy_threads, profile_pte, threadpool_size

    torch.manual_seed(0)
    # softmax attention, mhsa bridge (per hand), softmax cross; one graph level: lowering time grows with the graph
    m = build_model(small_model(**FAMILY[1], levels=1)).eval()
    took = export_pte(m, tmp_path / "m.pte", 128)
    assert (took.partitions, took.portable) == (1, 0), took
    x = np.random.default_rng(0).random((2, 3, 128, 128), dtype=np.float32)
    with torch.no_grad():
        ref = TupleOutputs(m, DEPLOY_OUTPUTS)(torch.as_tensor(x))
    run = PteRunner(tmp_path / "m.pte", threads=1)
    got = run(x)
    assert len(got) == len(ref) and relative_error([r.numpy() for r in ref], got) < 1e-4
    assert threadpool_size() == 1 and busy_threads(lambda: run(x[:1])) == 1
    # the event tracer's profile: every operator of the fp32 program is fp32 arithmetic or a layout change
    prof = profile_pte(tmp_path / "m.pte", threads=1, runs=3)
    assert prof["operators"] > 10 and set(prof["groups"]) <= {"fp32 arithmetic", "layout"}, prof["groups"]
    assert abs(sum(o["ms"] for o in prof["ops"]) - prof["ms"]) < 1e-6 and prof["ms"] > 0
    assert sum(o["count"] for o in prof["ops"]) == prof["operators"]
    # the delegate call holds every operator; those under a microsecond read 0
    assert prof["delegate_ms"] > 0 and 0 <= prof["zero"] <= prof["operators"]
    assert f"the traced delegate call took {prof['delegate_ms']:.2f} ms" in format_profile("fp32 @ 1", prof)


def test_operator_groups_follow_the_names_the_tracer_gives():
    from hand_nas.cost.runtimes import op_group

    assert op_group("Fully Connected (NC, QS8, QC8W) GEMM") == "int8 kernels"
    assert op_group("Convolution (NHWC, QC8) DWConv") == "int8 kernels"
    assert op_group("Transpose (ND, X8)") == "layout" and op_group("Static Reshape (NC)") == "layout"
    assert op_group("Convert (NC)") == "convert"
    assert op_group("Batch Matrix Multiply (NC, F32) GEMM") == "fp32 arithmetic"


def test_an_int8_litert_output_comes_back_as_float():
    from hand_nas.cost.runtimes import dequantized

    got = dequantized(np.array([-58, 0, 127], dtype=np.int8), (0.5, -58))
    assert got.dtype == np.float32 and got.tolist() == [0.0, 29.0, 92.5]
    fp = np.array([0.25], dtype=np.float32)
    assert dequantized(fp, (0.0, 0)) is fp


def test_litert_without_its_converter_is_one_line(tmp_path, monkeypatch):
    from compress.litert import export_tflite

    monkeypatch.setenv("HAND_NAS_LITERT_PYTHON", str(tmp_path / "none" / "python"))
    with pytest.raises(HandNasError, match="LiteRT converter not found at .*none/python: run `hand-nas mobile "
                                           "setup-litert`"):
        export_tflite(nn.Linear(1, 1), tmp_path / "m.tflite")
    assert list(tmp_path.iterdir()) == []


def test_a_conversion_running_beside_the_lowering_fails_in_one_line_or_is_stopped(tmp_path):
    """compress starts LiteRT's conversion in its own process while ExecuTorch lowers: a failed one is one line
    naming the file, one still running when compress fails is killed, and its program file goes either way."""
    import subprocess
    import sys
    import time

    from compress.litert import TfliteConversion

    def started(code: str) -> TfliteConversion:
        (tmp_path / "m.pt2").write_bytes(b"program")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return TfliteConversion(proc, tmp_path / "m.pt2", tmp_path / "m.tflite", time.perf_counter())

    failed = started("import sys; sys.exit('converter said no')")
    with pytest.raises(HandNasError, match=r"m.tflite: LiteRT conversion failed \(converter said no\)"):
        failed.wait()
    assert not (tmp_path / "m.pt2").exists()
    running = started("import time; time.sleep(60)")
    running.cancel()
    assert running.proc.poll() is not None and not (tmp_path / "m.pt2").exists()
    done = started("open(r'%s', 'w').write('flatbuffer')" % (tmp_path / "m.tflite"))
    first = done.wait()
    assert done.wait() is first and first["seconds"] >= 0


@needs_executorch
def test_a_file_that_is_not_a_program_is_one_line(tmp_path):
    from hand_nas.cost.runtimes import load_pte

    (tmp_path / "m.pte").write_bytes(b"not a program")
    with pytest.raises(HandNasError, match=r"m.pte: not a loadable ExecuTorch program"):
        load_pte(tmp_path / "m.pte")
    with pytest.raises(HandNasError, match=r"missing.pte: ExecuTorch program not found"):
        load_pte(tmp_path / "missing.pte")


@needs_executorch
@pytest.mark.slow
def test_an_int8_program_keeps_the_stem_and_layernorm_fp32_and_depthwise_on_request():
    from hand_nas.export_executorch import _quantized, deploy_module

    torch.manual_seed(0)
    m = build_model(small_model(**FAMILY[4])).eval()  # its graph blocks hold LayerNorms
    module, x = deploy_module(m, quantizable=True), torch.rand(1, 3, 64, 64)

    def conv_weights_int8(gm) -> dict[str, set[bool]]:  # kind -> {is its weight dequantized int8?}
        out: dict[str, set[bool]] = {"stem": set(), "depthwise": set(), "other": set()}
        for n in gm.graph.nodes:
            if n.op == "call_function" and n.target == torch.ops.aten.conv2d.default:
                groups = n.args[6] if len(n.args) > 6 else 1  # the small model's grouped convolutions are depthwise
                kind = "depthwise" if groups > 1 else "other" if out["stem"] else "stem"  # the first reads the image
                out[kind].add("dequantize" in str(n.args[1].target))
        return out

    def layernorm(n) -> str | None:  # the path of the MatmulLayerNorm a node belongs to
        paths = [path for path, t in (n.meta.get("nn_module_stack") or {}).values()
                 if str(t).endswith("MatmulLayerNorm") or getattr(t, "__name__", "") == "MatmulLayerNorm"]
        return paths[-1] if paths else None

    def quantized_inside(gm) -> dict[str, set]:  # LayerNorm -> its nodes whose output is quantized
        out: dict[str, set] = {}
        for n in gm.graph.nodes:
            if n.op == "call_function" and "quantize_per_tensor" in str(n.target) and "dequant" not in str(n.target):
                src = n.args[0]  # a reshape of the input keeps its int8 (a layout op, no arithmetic)
                if (ln := layernorm(src)) is not None and src.target != torch.ops.aten.reshape.default:
                    out.setdefault(ln, set()).add(src.name)
        return out

    calib = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    with torch.no_grad():  # the stem, reading the 3-channel image, stays fp32 in both (see _quantized)
        gm = _quantized(module, x, calib)
        assert conv_weights_int8(gm) == {"stem": {False}, "depthwise": {True}, "other": {True}}
        assert conv_weights_int8(_quantized(module, x, calib, ("depthwise",))) == \
            {"stem": {False}, "depthwise": {False}, "other": {True}}
    assert any(layernorm(n) for n in gm.graph.nodes), "the model has no LayerNorm in its mobile form"
    # at most a LayerNorm's output is quantized, for the next int8 layer (without the rule its inner products were)
    assert {ln: len(v) for ln, v in quantized_inside(gm).items() if len(v) > 1} == {}
    with pytest.raises(HandNasError, match="fp32_ops: pointwise: expected some of depthwise"):
        _quantized(module, x, calib, ("pointwise",))
