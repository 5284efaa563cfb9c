"""Data-parallel supernet training (issue 30, acceptance 5): torchrun's two gloo processes vs one process.

Trains the ``short`` supernet recipe (tiny.yaml, 40 sandwich steps at 64 px, global batch 16) three times:
one process with seed 0, one process with seed 1 (the run-to-run noise), and ``torchrun --nproc-per-node 2``
with seed 0 (each rank 8 images of every batch, DDP averaging the gradients). It prints the loss curves'
mean absolute differences (DDP vs one process, against the seed-to-seed difference) and the speed-up of the
training loop (rank 0's evaluations left out). Nothing else may run meanwhile: the speed-up is only meaningful on idle cores.

Usage:  python experiments/supernet_ddp.py --work runs/ddp   (writes results/supernet_ddp.json)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent


def run(out: Path, seed: int, procs: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = ["hand-nas", "supernet", "train", "--space", "tiny", "--recipe", "short", "--out", str(out), "--device",
           "cpu", "--seed", str(seed), "--quiet"]
    if procs > 1:
        cmd = ["torchrun", "--standalone", f"--nproc-per-node={procs}", "--no-python"] + cmd
    subprocess.run(cmd, check=True, env=env)
    record = json.loads((out / "supernet.json").read_text())
    return {"seed": seed, "processes": procs, "seconds": record["loop_seconds"], "losses": record["losses"],
            "compute": record["compute"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/ddp")
    args = ap.parse_args()
    work = Path(args.work)
    one0, one1, two0 = run(work / "one_s0", 0, 1), run(work / "one_s1", 1, 1), run(work / "two_s0", 0, 2)
    a, b, c = (np.array(r["losses"]) for r in (one0, one1, two0))
    out = {"recipe": "short (tiny.yaml, 40 steps, 64 px, global batch 16)", "runs": [one0, one1, two0],
           "ddp_vs_one_mean_abs": float(np.abs(c - a).mean()), "seed_vs_seed_mean_abs": float(np.abs(b - a).mean()),
           "last10_mean": {"one_s0": float(a[-10:].mean()), "one_s1": float(b[-10:].mean()),
                           "ddp_s0": float(c[-10:].mean())},
           "speedup": one0["seconds"] / two0["seconds"], "python": sys.version.split()[0]}
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "supernet_ddp.json").write_text(json.dumps(out, indent=1))
    print(f"loss, mean |DDP(2) - one process| over 40 steps: {out['ddp_vs_one_mean_abs']:.3f}; "
          f"|seed 1 - seed 0|: {out['seed_vs_seed_mean_abs']:.3f}")
    print(f"last 10 steps' mean loss: one process {out['last10_mean']['one_s0']:.3f} (seed 1: "
          f"{out['last10_mean']['one_s1']:.3f}), DDP {out['last10_mean']['ddp_s0']:.3f}")
    print(f"training loop: one process {one0['seconds']:.1f} s, two processes {two0['seconds']:.1f} s: "
          f"speed-up {out['speedup']:.2f}x ({one0['compute']['cpu']})")


if __name__ == "__main__":
    main()
