"""Does LiteRT int8 pay? litert-torch's PT2E static int8 of a bundle's quantizable graph beside its fp32 flatbuffer.

"int8 where the converter allows" (issue 31 item 1): the bundle's pruned model in the quantizable mobile form
(``deploy_module(quantizable=True)``, the graph ExecuTorch's int8 program is made from), quantized in the
converter's venv by ``experiments/litert_int8_convert.py`` (litert-torch's PT2EQuantizer: symmetric, per-channel
weights, static activations calibrated on the bundle's calibration images) and converted. Then, in this
environment: what LiteRT's XNNPACK delegate takes, each output's relative error against torch fp32, held-out
MPJPE, and single-thread medians in alternating rounds beside the bundle's ``model.tflite`` (fp32) and
``model.int8.pte`` (ExecuTorch int8). The flatbuffer is written under --work and reused when there.

    python experiments/litert_int8.py runs/mobile_lwa/bundle --out experiments/results/mobile_lwa/litert_int8.json
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import torch
from bundle_experiment import bundle_experiment


def main() -> None:
    args, b = bundle_experiment(__doc__, "litert_int8")
    bundle, model, config, report, train, size = b.path, b.model, b.config, b.report, b.train, b.size

    from compress.litert import require_converter, save_deploy_program
    from compress.mobile import PteRunner, runner_metrics
    from compress.onnx_export import output_names
    from compress.pipeline import calibration_images
    from hand_nas.cost.bench import cpu_info, time_interleaved
    from hand_nas.cost.runtimes import TfliteRunner
    from hand_nas.models.traceable import DEPLOY_OUTPUTS, TupleOutputs
    from hand_nas.train import held_out_loader

    if size != train.resolution:
        raise SystemExit(f"{bundle}: exported at {size} px, held out at {train.resolution} px; expected one size")
    work = b.work
    work.mkdir(parents=True, exist_ok=True)
    calib = calibration_images(config["data"], train, config["compress"]["calib_images"], size)
    tfl = work / "model.int8.tflite"
    if not tfl.is_file():
        save_deploy_program(model, work / "program.pt2", size, quantizable=True)
        np.save(work / "calib.npy", calib)
        print("converting (minutes) ...", flush=True)
        partial = work / "model.int8.partial.tflite"
        done = subprocess.run([str(require_converter()), str(Path(__file__).with_name("litert_int8_convert.py")),
                               str(work / "program.pt2"), str(work / "calib.npy"), str(partial)], check=True,
                              capture_output=True, text=True)
        line = next(ln for ln in done.stdout.splitlines() if ln.startswith('{"torch_int8_relative_error"'))
        (work / "torch_int8.json").write_text(line)
        partial.replace(tfl)
    q = TfliteRunner(tfl, 1)
    x = calib[:4]
    with torch.no_grad():
        ref = [t.numpy() for t in TupleOutputs(model.eval(), DEPLOY_OUTPUTS)(torch.as_tensor(x))]
    names = output_names(model, size)
    err = {n: round(float(np.linalg.norm(r - g) / np.linalg.norm(r)), 4) for n, r, g in zip(names, ref, q(x))}
    loader = held_out_loader(config["data"], train)
    out = {"bundle": str(bundle), "size": size, "threads": 1, "batch": 1, "rounds": args.rounds, "cpu": cpu_info(),
           "int8_tflite": {"file": str(tfl), "partitions": q.partitions, "builtin_ops": q.builtin_ops,
                           "relative_error_vs_torch_fp32": err,
                           # the same quantized graph run by torch, before conversion
                           "torch_int8_relative_error": dict(zip(names, json.loads(
                               (work / "torch_int8.json").read_text())["torch_int8_relative_error"])),
                           "mpjpe_mm": round(runner_metrics(q, names, loader).mpjpe_mm, 2)},
           "fp32_mpjpe_mm": report["litert"]["programs"]["fp32"]["mpjpe_mm"]}
    print(json.dumps(out["int8_tflite"]), flush=True)
    img = np.ascontiguousarray(calib[:1], dtype=np.float32)
    fp32, et8 = TfliteRunner(bundle / "model.tflite", 1), PteRunner(bundle / "model.int8.pte", 1)
    times = time_interleaved({"LiteRT fp32": lambda: fp32.run(img), "LiteRT int8": lambda: q.run(img),
                              "ExecuTorch int8": lambda: et8(img)}, rounds=args.rounds)
    out["median_ms"] = {k: round(float(np.median(v)), 3) for k, v in times.items()}
    out["p90_ms"] = {k: round(float(np.percentile(v, 90)), 3) for k, v in times.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"CPU {out['cpu']['model']}, flags {', '.join(out['cpu']['flags'])}; 1 thread, batch 1, {size} px")
    for k in times:
        print(f"| {k} | {out['median_ms'][k]:.2f} | {out['p90_ms'][k]:.2f} |")


if __name__ == "__main__":
    main()
