"""Can any onnxruntime int8 form of the deployed graph beat its fp32 graph? (issue 13, acceptance 2)

``hand-nas compress`` quantizes the per-hand export (onnxruntime's per-channel QLinearMatMul takes no
stacked weight) and picks among four candidates. This command asks the question on the graph users
deploy, the hand-batched fp32 export (``hand_nas.export.export_onnx``): it quantizes that graph with
onnxruntime's static quantizer in both formats (QOperator, QDQ), per-tensor and per-channel weights,
every op or only the convolutions or only the MatMul/Gemm, calibrated on training-split images of the
bundle's data (uint8 activations, int8 weights: the VNNI pair), and times every file against the fp32
graph in alternating rounds (1 thread, batch 1, median). It prints each file's speed-up, its op count in
the graph onnxruntime runs, and the CPU model and flags. A quantizer that fails on a form is reported,
not hidden.

Usage:
    python experiments/int8_formats.py BUNDLE [--data DIR] [--calib 32] [--rounds 12] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

# name -> quantize_static keywords (format and weight granularity; None: every op onnxruntime can quantize)
FORMS = {
    "qoperator_all_per_tensor": ("QOperator", False, None),
    "qdq_all_per_tensor": ("QDQ", False, None),
    "qoperator_conv_per_channel": ("QOperator", True, ("Conv",)),
    "qdq_conv_per_channel": ("QDQ", True, ("Conv",)),
    "qdq_matmul_per_tensor": ("QDQ", False, ("MatMul", "Gemm")),
}


def quantize(fp32: Path, out: Path, images, fmt: str, per_channel: bool, op_types) -> Path:
    from compress.onnx_export import export_ort_static

    return export_ort_static(fp32, out, images, op_types=op_types, quant_format=fmt, per_channel=per_channel)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--calib", type=int, default=32, help="calibration images (training split)")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--data", type=Path, help="sample folder for calibration (default: the bundle's own)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from compress.onnx_export import optimized_op_types
    from compress.pipeline import calibration_images
    from compress.bundle import open_model
    from hand_nas.config import TrainCfg
    from hand_nas.cost.bench import cpu_info
    from hand_nas.cost.latency import ort_latency_interleaved_ms
    from hand_nas.export import export_onnx

    report = args.bundle / "report.json"
    if not report.is_file():
        raise SystemExit(f"{report}: missing; expected a bundle folder written by `hand-nas compress`")
    size = json.loads(report.read_text()).get("size", 256)
    model, config = open_model(args.bundle)  # verifies the bundle's manifest
    data = args.data or config.get("data")
    if not data or not Path(data).is_dir():
        raise SystemExit(f"{args.bundle / 'config.json'}: field 'data' is {data!r}, not a sample folder; "
                         "pass --data with the folder the bundle was built on")
    images = calibration_images(data, TrainCfg(), args.calib, size).astype("float32")
    rows, files = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        files["fp32"] = export_onnx(model.eval(), Path(tmp) / "fp32.onnx", size)
        for name, (fmt, per_channel, op_types) in FORMS.items():
            try:
                files[name] = quantize(files["fp32"], Path(tmp) / f"{name}.onnx", images, fmt, per_channel, op_types)
            except Exception as exc:  # the quantizer's own error types; the row says why it is missing
                rows[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        ms = ort_latency_interleaved_ms(files, size, threads=1, rounds=args.rounds)
        for name, path in files.items():
            ops = optimized_op_types(path)
            rows[name] = {"ms": round(ms[name], 3), "speedup": round(ms["fp32"] / ms[name], 3),
                          "nodes": sum(ops.values()), "top_ops": dict(list(ops.items())[:6])}
    cpu = cpu_info()
    print(f"{args.bundle}: the hand-batched deployment graph, onnxruntime, {size} px, 1 thread, batch 1, "
          f"median of {args.rounds} alternating rounds; uint8 activations, int8 weights, {args.calib} calibration images")
    print(f"CPU: {cpu['model']}; flags: {', '.join(cpu['flags'])}")
    print(f"{'form':28s} {'ms':>7s} {'vs fp32':>8s} {'nodes':>6s}  most frequent ops")
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:28s} {'-':>7s} {'-':>8s} {'-':>6s}  quantizer failed: {r['error']}")
        else:
            ops = ", ".join(f"{k} {v}" for k, v in r["top_ops"].items())
            print(f"{name:28s} {r['ms']:7.3f} {r['speedup']:7.2f}x {r['nodes']:6d}  {ops}")
    if args.json:
        args.json.write_text(json.dumps({"bundle": str(args.bundle), "cpu": cpu, "size": size, "rounds": args.rounds,
                                         "calib": args.calib, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
