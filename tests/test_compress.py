"""Pruning, quantization, bundles and predict on small models (seconds each)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from model_configs import small_model

from compress.bundle import open_bundle, verify_bundle
from compress.pipeline import CompressCfg, compress
from compress.prune import PruneCfg, head_layers, prune_once, prune_to_target
from compress.quantize import QuantCfg, calibrate, quantize_model, quantized_layers
from hand_nas.checkpoint import load_checkpoint, save_checkpoint, shape_record
from hand_nas.config import TrainCfg
from hand_nas.cost.flops import model_cost
from hand_nas.errors import HandNasError
from hand_nas.models import build_model

HAVE_EXECUTORCH = importlib.util.find_spec("executorch") is not None


def _have_litert() -> bool:
    from compress.litert import converter_python

    return importlib.util.find_spec("ai_edge_litert") is not None and converter_python() is not None


HAVE_LITERT = _have_litert()
FAMILY = [dict(encoder="mobile_former", bridge="light_cross", cross="separable"),
          dict(encoder="mobilevit_v3", attention="softmax", bridge="mhsa", cross="softmax"),
          dict(encoder="mobilenet_v2", bridge="mhsa", cross="elementwise")]


@pytest.mark.parametrize("kw", FAMILY, ids=lambda kw: kw["encoder"])
@pytest.mark.parametrize("heads", [False, True], ids=["head-dims", "whole-heads"])
@pytest.mark.slow
def test_pruned_models_run_and_keep_their_outputs(kw, heads, hand_home):
    model = build_model(small_model(**kw)).eval()
    net = prune_once(model, 0.4, PruneCfg(prune_heads=heads))
    assert model_cost(net).gmacs_total < model_cost(model).gmacs_total
    with torch.no_grad():
        out = net(torch.rand(2, 3, 64, 64))
    assert out.verts.shape == (2, 2, 778, 3) and out.joints.shape == (2, 2, 21, 3)
    assert out.heatmaps.shape[1] == 42 and out.camera.shape == (2, 2, 3)
    for layer, h in head_layers(net).items():  # attention stays consistent: every head has the same width
        assert layer.out_features % h == 0


@pytest.mark.slow
def test_pruning_lands_within_tolerance_of_the_target(hand_home):
    # one graph level: the same path (rounding to 8 jumps past the target, the search runs again without it) in
    # half the time of three
    model = build_model(small_model(encoder="mobile_former", bridge="light_cross", cross="separable", levels=1)).eval()
    g0 = model_cost(model).gmacs_total
    res = prune_to_target(model, PruneCfg(target_gmacs=0.6 * g0))
    assert abs(res.gmacs_after - 0.6 * g0) <= 0.03 * 0.6 * g0
    assert res.params_m_after < res.params_m_before


def test_pruning_refuses_an_impossible_target(hand_home):
    model = build_model(small_model()).eval()
    with pytest.raises(HandNasError, match="target_gmacs"):
        prune_to_target(model, PruneCfg(target_gmacs=10.0))


def test_pruned_checkpoint_round_trip(tmp_path, hand_home):
    cfg = small_model(encoder="mobile_former", bridge="light_cross", cross="separable")
    net = prune_once(build_model(cfg).eval(), 0.3)
    save_checkpoint(tmp_path / "ck", net, cfg, shapes=shape_record(net))
    back, _ = load_checkpoint(tmp_path / "ck")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(back(x).verts, net(x).verts)


@pytest.mark.slow
def test_fake_quant_model_tracks_the_float_model(hand_home):
    net = build_model(small_model(encoder="mobile_former", bridge="light_cross", cross="separable")).eval()
    q = quantize_model(net, QuantCfg(weight_bits=8))
    assert quantized_layers(q) > 20
    x = torch.rand(4, 3, 64, 64)
    calibrate(q, [x])
    with torch.no_grad():
        ref, got = net(x).joints, q(x).joints
    assert (got - ref).abs().max() < 0.1 * ref.abs().max() + 1e-3
    q4 = quantize_model(net, QuantCfg(weight_bits=4))
    calibrate(q4, [x])
    with torch.no_grad():
        assert not torch.equal(q4(x).joints, got)  # lower-bit weights change the result


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, synth_dir, hand_home):
    from hand_nas.train import train

    root = tmp_path_factory.mktemp("bundle")
    # one graph level: ExecuTorch's lowering time grows with the graph (int8 1.9 min instead of 2.6 for three)
    cfg = small_model(encoder="mobile_former", bridge="light_cross", cross="separable", levels=1)
    train(cfg, TrainCfg(resolution=128, steps=2, batch=4, eval_every=0), synth_dir, checkpoint_dir=root / "ck")
    g0 = model_cost(build_model(cfg)).gmacs_total
    report = compress(root / "ck", root / "bundle", CompressCfg(
        prune=PruneCfg(target_gmacs=0.7 * g0, round_to=None), quant=QuantCfg(qat_steps=2), finetune_steps=2,
        size=128, calib_images=4, repeats=2), log=lambda *a: None)
    return root / "bundle", report


@pytest.mark.slow
def test_bundle_files_report_and_parity(bundle):
    folder, report = bundle
    names = {p.name for p in folder.iterdir()}
    mobile = ({"model.pte", "model.int8.pte"} if HAVE_EXECUTORCH else set()) | ({"model.tflite"} if HAVE_LITERT else set())
    assert names == {"model.safetensors", "config.json", "model.onnx", "model.int8.onnx", "report.json", "manifest.json",
                     ".hand-nas", *mobile}
    assert sorted(p.name for p in folder.parent.iterdir()) == ["bundle", "ck"]  # no temporary left beside --out
    from compress.bundle import manifest_sha256

    assert report["manifest_sha256"] == manifest_sha256(folder)
    assert [r["model"] for r in report["rows"]] == ["fp32", "pruned", "pruned+int8"]
    assert report["cpu"]["model"] and isinstance(report["cpu"]["flags"], list)  # the CPU the int8 choice was timed on
    assert report["parity"]["fp32_onnx_vs_torch_rel"] < 1e-4
    assert report["int8"]["chosen"] in ("brevitas", "onnxruntime", "onnxruntime-conv", "onnxruntime-profiled")
    # the profiled candidate exists exactly when the per-block profile found a block where int8 is faster
    assert ("onnxruntime-profiled" in report["int8"]["candidates"]) == bool(report["int8"]["profiled_blocks"])
    assert report["int8"]["candidates"]["onnxruntime-conv"]["int8_ops"].get("QLinearConv")
    assert report["int8"]["candidates"]["onnxruntime"]["int8_ops"]  # integer kernels present
    config = json.loads((folder / "config.json").read_text())
    assert config["provenance"]["git_revision"] is None or len(config["provenance"]["git_revision"]) == 40
    assert "shapes" in config


@pytest.mark.slow
def test_every_bundle_file_is_listed_and_runs_in_its_runtime(bundle):
    """Each file of the manifest is hashed, and each model file is run once by the runtime it is for: the ONNX
    graphs by onnxruntime, the ExecuTorch programs by ExecuTorch's runtime (XNNPACK delegate, one thread)."""
    from compress.onnx_export import ort_outputs
    from hand_nas.cost.bench import format_bench

    folder, report = bundle
    manifest = verify_bundle(folder)
    assert set(manifest["files"]) == {p.name for p in folder.iterdir()} - {"manifest.json"}
    x = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    onnx = {name: ort_outputs(folder / name, x) for name in ("model.onnx", "model.int8.onnx")}
    assert all(o[1].shape == (1, 2, 21, 3) and np.isfinite(o[1]).all() for o in onnx.values())
    et = report["executorch"]
    if not HAVE_EXECUTORCH:
        assert "skipped" in et
        return
    from compress.mobile import PteRunner
    from hand_nas.app.bundles import bench_target

    for kind, p in et["programs"].items():
        assert (p["partitions"], p["portable"]) == (1, 0), (kind, p)  # XNNPACK took the whole graph
        out = PteRunner(folder / p["file"], threads=1)(x)
        assert len(out) == len(onnx["model.onnx"]) and np.isfinite(out[1]).all()
    assert np.abs(PteRunner(folder / "model.pte")(x)[1] - onnx["model.onnx"][1]).max() < 1e-4
    assert et["parity_fp32_vs_torch_rel"] < 1e-4 and et["busy_threads"] == 1
    assert abs(et["int8_mpjpe_change_mm"]) < 50 and et["programs"]["int8"]["mpjpe_mm"] > 0
    r = bench_target(folder, threads=(1,), batches=(1,), size=128, rounds=1, progress=False, profile=True)
    rows = {row.engine: row for row in r.rows}
    for kind in ("fp32", "int8"):
        row = rows[f"ExecuTorch XNNPACK {kind}"]
        assert row.median_ms > 0 and (row.partitions, row.portable, row.busy_threads) == (1, 0, 1), row
    assert "| ExecuTorch XNNPACK int8 | 1 | 1 |" in format_bench(r)
    # --profile: the int8 program's operators include int8 kernels and the conversions around its fp32 parts
    prof = r.profiles["ExecuTorch XNNPACK int8 @ 1"]
    assert {"int8 kernels", "convert"} <= set(prof["groups"]) and "int8 kernels" not in r.profiles[
        "ExecuTorch XNNPACK fp32 @ 1"]["groups"]
    assert "ExecuTorch XNNPACK int8 @ 1 thread(s): where the time goes" in format_bench(r)
    lite = report["litert"]
    assert ("skipped" in lite) != HAVE_LITERT
    if HAVE_LITERT:
        from hand_nas.cost.runtimes import TfliteRunner

        out = TfliteRunner(folder / "model.tflite")(x)
        assert np.abs(out[1] - onnx["model.onnx"][1]).max() < 1e-4 and lite["parity_fp32_vs_torch_rel"] < 1e-4
        row = rows["LiteRT XNNPACK fp32"]
        assert row.median_ms > 0 and row.busy_threads == 1 and row.partitions >= 1, row


def test_the_int8_lines_name_the_chosen_file_and_every_candidate(bundle):
    from compress.pipeline import format_int8

    _, report = bundle
    lines = format_int8(report).splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"int8: {report['int8']['chosen']} (")
    assert all(name in lines[1] for name in report["int8"]["candidates"]) and lines[2].startswith("fp32 ONNX vs torch")


@pytest.mark.parametrize("cfg,field", [(CompressCfg(prune=PruneCfg(ratio=1.5)), "prune.ratio: 1.5"),
                                       (CompressCfg(quant=QuantCfg(weight_bits=1)), "quant.weight_bits: 1"),
                                       (CompressCfg(size=16), "size: 16")])
def test_compress_refuses_out_of_range_numbers_before_anything_runs(tmp_path, cfg, field):
    """A notebook caller gets the one-line error ``hand-nas compress`` gives (there naming --ratio, --bits, --size)."""
    with pytest.raises(HandNasError, match=f"^compress: {field}, expected"):
        compress(tmp_path / "missing", tmp_path / "bundle", cfg, log=lambda *a: None)
    assert list(tmp_path.iterdir()) == []


def test_bundle_reloads_in_a_fresh_process_with_its_reported_mpjpe(bundle):
    folder, report = bundle
    code = (f"from compress.bundle import open_bundle; from hand_nas.train import evaluate, held_out_loader; "
            f"from hand_nas.config import TrainCfg; m, c, r = open_bundle({str(folder)!r}); "
            f"print(evaluate(m, held_out_loader(c['data'], TrainCfg.from_dict(c['train']))).mpjpe_mm)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert abs(float(out.strip().splitlines()[-1]) - report["rows"][1]["mpjpe_mm"]) < 0.01


def test_a_changed_byte_is_refused(bundle, tmp_path):
    import shutil

    folder = tmp_path / "b"
    shutil.copytree(bundle[0], folder)
    verify_bundle(folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(HandNasError, match="model.safetensors: sha256 differs"):
        open_bundle(folder)
    (folder / "notes.txt").write_text("x")
    (folder / "model.safetensors").write_bytes((bundle[0] / "model.safetensors").read_bytes())
    with pytest.raises(HandNasError, match="notes.txt: not listed"):
        verify_bundle(folder)


def test_predict_writes_meshes_and_overlay(bundle, synth_dir, tmp_path):
    from PIL import Image

    from hand_nas.cli import main
    from hand_nas.data.samples import open_samples

    img = tmp_path / "hands.png"
    Image.fromarray(np.asarray(open_samples(synth_dir)["images"][0])).save(img)
    assert main(["predict", str(img), "--checkpoint", str(bundle[0]), "--out", str(tmp_path / "pred")]) == 0
    obj = (tmp_path / "pred" / "left.obj").read_text().splitlines()
    assert sum(line.startswith("v ") for line in obj) == 778 and sum(line.startswith("f ") for line in obj) == 1538
    assert (tmp_path / "pred" / "right.obj").is_file()
    assert Image.open(tmp_path / "pred" / "overlay.png").size[0] >= 256
    assert main(["predict", str(tmp_path / "missing.png"), "--checkpoint", str(bundle[0])]) == 2



@pytest.mark.slow
def test_a_direct_head_is_pruned_in_seconds():
    """graph.direct's (252 x 3)-offset outputs are kept: without that torch-pruning's dependency search ran for
    minutes without finishing on lwa.yaml subnets with the head."""
    import dataclasses
    import time

    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model

    cfg = resolve_model("lwa_hand")
    model = build_model(dataclasses.replace(cfg, graph=dataclasses.replace(cfg.graph, direct=True))).eval()
    t0 = time.perf_counter()
    net = prune_once(model, 0.2, PruneCfg(ratio=0.2))
    assert time.perf_counter() - t0 < 60
    assert net.pose.direct[0].out_features == 756 and net(torch.zeros(1, 3, 64, 64)).verts.shape == (1, 2, 778, 3)
