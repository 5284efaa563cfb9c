"""Does int8 reach the pose part, and does it pay? ExecuTorch programs of one bundle's pruned model, timed together.

Programs (XNNPACK delegate, batch 1, the bundle's export size): fp32; int8 with the fp32 mobile form (the
quantizer takes convolutions and nn.Linear layers: the image part, the pose part's stacked matmuls stay fp32);
int8 with the quantizable form (``xnnpack_form(quantizable=True)``: each hand's weights and the Laplacian
products as nn.Linear layers, so the graph convolutions are int8 too); the same with the depthwise
convolutions left fp32 (``export_pte(fp32_ops=("depthwise",))``: XNNPACK's int8 depthwise kernel is the slower
one on some CPUs, see ``hand-nas bench --profile``). Beside them the bundle's ORT fp32 graph.
Each program: held-out MPJPE (the bundle's split and resolution), single-thread medians in alternating rounds,
partitions and portable ops. Programs are written under --work/<deploy version> and reused when there
(resumable; a change to the deployment code writes them again).

    python experiments/mobile_int8_forms.py runs/mobile_lwa/bundle --out experiments/results/mobile_lwa/int8_forms.json
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from bundle_experiment import bundle_experiment


def main() -> None:
    args, b = bundle_experiment(__doc__, "int8_forms")
    bundle, model, config, train, size = b.path, b.model, b.config, b.train, b.size

    from compress.mobile import PteRunner, export_pte, runner_metrics
    from compress.onnx_export import output_names
    from compress.pipeline import calibration_images
    from hand_nas.cost.bench import cpu_info, time_interleaved
    from hand_nas.cost.predictor import deploy_version
    from hand_nas.cost.latency import ort_session
    from hand_nas.train import held_out_loader

    work = b.work / deploy_version("executorch-int8")
    work.mkdir(parents=True, exist_ok=True)
    # timed at the export size; MPJPE at the training resolution (the held-out split's), lowered again at that
    # size when the two differ, as `hand-nas compress` does
    calibs = {at: calibration_images(config["data"], train, config["compress"]["calib_images"], at)
              for at in {size, train.resolution}}
    results = {}
    for name, kw in (("fp32", {}), ("int8 fp32-form", {"quantizable": False}), ("int8 quantizable", {"quantizable": True}),
                     ("int8 quantizable, depthwise fp32", {"quantizable": True, "fp32_ops": ("depthwise",)})):
        files = {}
        for at in sorted(calibs, key=lambda a: a != size):  # the timed size first
            path = work / (name.replace(",", "").replace(" ", "_") + ("" if at == size else f"_{at}px") + ".pte")
            took_path = path.with_suffix(".json")
            if not took_path.is_file():
                print(f"exporting {name} at {at} px ...", flush=True)
                took = export_pte(model, path, at, calib=calibs[at] if name != "fp32" else None, **kw).to_dict()
                took_path.write_text(json.dumps(took))
            files[at] = path
        results[name] = {"file": str(files[size]), **json.loads(work.joinpath(files[size].stem + ".json").read_text())}
        results[name]["eval_file"] = str(files[train.resolution])
    loader = held_out_loader(config["data"], train)
    names = output_names(model, train.resolution)
    for name, r in results.items():
        r["mpjpe_mm"] = round(runner_metrics(PteRunner(r.pop("eval_file"), 1), names, loader).mpjpe_mm, 2)
        print(f"{name}: MPJPE {r['mpjpe_mm']} mm at {train.resolution} px, {r['partitions']} partition(s), "
              f"{r['portable']} portable", flush=True)
    sess = ort_session(bundle / "model.onnx", 1)
    img = calibs[size][:1]
    runs = {name: (lambda p=PteRunner(r["file"], 1): p(img)) for name, r in results.items()}
    runs["ORT fp32"] = lambda: sess.run(None, {"image": img})
    times = time_interleaved(runs, rounds=args.rounds)
    for name, t in times.items():
        results.setdefault(name, {})["median_ms"] = round(float(np.median(t)), 3)
        results[name]["p90_ms"] = round(float(np.percentile(t, 90)), 3)
    out = {"bundle": str(bundle), "size": size, "threads": 1, "batch": 1, "rounds": args.rounds,
           "cpu": cpu_info(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "programs": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    for name, r in results.items():
        print(f"| {name} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r.get('mpjpe_mm', '-')} | "
              f"{r.get('partitions', '-')} | {r.get('portable', '-')} |")


if __name__ == "__main__":
    main()
