"""Where int8 wins or loses (issue 13, acceptance 2): a bundle's int8 graph against fp32, block by block.

The comparison ``hand-nas compress`` makes for its ``onnxruntime-profiled`` candidate, on a finished bundle:
the bundle's weights exported as the per-hand fp32 graph (the graph onnxruntime's quantizer starts from, so
node names match) and the bundle's ``model.int8.onnx``, both run under onnxruntime's profiler (1 thread,
batch 1, median kernel time per node over ``--runs`` runs) and summed per module scope of the exported names
(``net/image/encoder/blocks.3`` at ``--depth 4``). Nodes onnxruntime fused under a new name count under
``(fused by onnxruntime)``; the Q/DQ nodes the quantizer inserted count under the scope they are named after.
Profiling adds a fixed cost per node, so the sums exceed plain run times: read ratios, not milliseconds,
and run it alone on the machine (``hand-nas bench`` gives the latency itself).

Usage:
    python experiments/int8_profile.py BUNDLE [--depth 4] [--runs 40] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from compress import onnx_export as ox
    from compress.bundle import open_model
    from hand_nas.cost.bench import cpu_info
    from hand_nas.cost.latency import ort_node_profile_ms

    int8_path = args.bundle / "model.int8.onnx"
    model, _ = open_model(args.bundle)  # verifies the bundle's manifest
    if not int8_path.is_file():
        raise SystemExit(f"{int8_path}: missing; expected a bundle folder written by `hand-nas compress`")
    size = json.loads((args.bundle / "report.json").read_text()).get("size", 256)
    with tempfile.TemporaryDirectory() as tmp:
        per_hand = ox.export_fp32(model.eval(), Path(tmp) / "fp32_per_hand.onnx", size, batched=False)
        a = ox.scope_times_ms(ort_node_profile_ms(per_hand, size, runs=args.runs), args.depth)
    b = ox.scope_times_ms(ort_node_profile_ms(int8_path, size, runs=args.runs), args.depth)
    cpu = cpu_info()
    rows = sorted(({"scope": k, "fp32_ms": round(a.get(k, 0.0), 4), "int8_ms": round(b.get(k, 0.0), 4)}
                   for k in set(a) | set(b)), key=lambda r: -(r["fp32_ms"] + r["int8_ms"]))
    print(f"{args.bundle}: onnxruntime profile at {size} px, 1 thread, batch 1, median of {args.runs} runs per node; "
          "fp32 = the per-hand graph the int8 one was quantized from")
    print(f"CPU: {cpu['model']}; flags: {', '.join(cpu['flags'])}")
    print(f"{'scope':48s} {'fp32 ms':>8s} {'int8 ms':>8s} {'int8/fp32':>9s}")
    for r in rows:
        ratio = f"{r['int8_ms'] / r['fp32_ms']:.2f}" if r["fp32_ms"] else "-"
        print(f"{r['scope']:48s} {r['fp32_ms']:8.3f} {r['int8_ms']:8.3f} {ratio:>9s}")
    wins = ox.int8_faster_scopes(a, b)
    total = {"fp32_ms": round(sum(a.values()), 3), "int8_ms": round(sum(b.values()), 3)}
    # The best any per-block choice could do: each block at the faster of its two times, the Q/DQ at the
    # boundaries between float and int8 blocks taken as free (in a real mixed graph they are not).
    total["oracle_ms"] = round(sum(min(r["fp32_ms"], r["int8_ms"]) if r["fp32_ms"] else r["int8_ms"] for r in rows), 3)
    print(f"total (profiled) fp32 {total['fp32_ms']:.2f} ms, int8 {total['int8_ms']:.2f} ms; "
          f"blocks where int8 takes under 0.9x (those compress would quantize): {', '.join(wins) or 'none'}")
    print(f"bound: every block at the faster of its two times (free Q/DQ between them) {total['oracle_ms']:.2f} ms, "
          f"at most {total['fp32_ms'] / total['oracle_ms']:.3f}x the per-hand fp32 graph")
    if args.json:
        args.json.write_text(json.dumps({"bundle": str(args.bundle), "cpu": cpu, "runs": args.runs,
                                         "depth": args.depth, "total": total, "int8_faster": wins, "rows": rows},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
