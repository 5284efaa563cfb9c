"""Two `hand-nas search` drivers started at once on one study, ten tries per storage (issue 14, acceptance 1).

Each try makes a fresh storage (SQLite file, optuna journal file, and, with ``--postgres URL``, a fresh
study name on that server), starts two driver processes with the same ``--trials 2N`` at the same moment,
waits for both, and checks: both exit 0, the study holds exactly 2N trials, trial numbers 0..2N-1 once
each, none failed, and no two trials share a checkpoint folder. Tries are stored one by one in
``results/concurrent_drivers.json`` (a killed run resumes at the next try).

Usage:
    python experiments/concurrent_drivers.py --tries 10 --n 3
    python experiments/concurrent_drivers.py --kinds sqlite journal postgresql --postgres postgresql://...
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "concurrent_drivers.json"
SPACE = """
name: concurrent
base: lwa_hand
budget: {gmacs: 0.47}
objectives: [mpjpe]
proxy: {resolution: 64, steps: 2, batch: 4, eval_every: 1, warmup: 1, augment: false}
data: {synthetic_n: 24}
params:
  encoder.tokens: {choices: [2, 4, 6]}
  bridge.levels: {choices: [1, 2]}
  graph.cross_hand: {choices: [separable, elementwise, none]}
"""


def one_try(kind: str, index: int, n: int, work: Path, postgres: str | None) -> dict:
    from hand_nas.search.storage import read_records

    folder = work / f"{kind}_{index}"
    folder.mkdir(parents=True)
    space = folder / "space.yaml"
    space.write_text(SPACE)
    study = f"concurrent_{kind}_{index}_{int(time.time())}"
    storage = {"sqlite": f"sqlite:///{folder}/shared.db", "journal": f"journal:///{folder}/shared.log",
               "postgresql": postgres}[kind]
    cmd = [sys.executable, "-m", "hand_nas.cli", "search", "--space", str(space), "--study", study,
           "--storage", storage, "--trials", str(2 * n), "--local", "--quiet", "--backend", "optuna",
           "--sampler", "random", "--pruner", "none", "--out", str(folder / "runs"), "--heartbeat-s", "2"]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    errors = [p.communicate(timeout=600)[1].decode().strip().splitlines()[-1:] for p in procs]
    records = read_records(study, storage)
    numbers = sorted(r.number for r in records)
    checkpoints = [r.checkpoint for r in records if r.checkpoint]
    row = {"kind": kind, "try": index, "exit_codes": [p.returncode for p in procs], "trials": len(records),
           "expected": 2 * n, "numbers_unique": numbers == list(range(len(records))),
           "failed": sum(r.state == "failed" for r in records), "states": sorted({r.state for r in records}),
           "checkpoints_unique": len(set(checkpoints)) == len(checkpoints), "seconds": round(time.perf_counter() - t0, 1),
           "last_stderr_lines": [e[0] if e else "" for e in errors]}
    row["ok"] = (row["exit_codes"] == [0, 0] and row["trials"] == 2 * n and row["numbers_unique"]
                 and row["failed"] == 0 and row["checkpoints_unique"])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tries", type=int, default=10)
    ap.add_argument("--n", type=int, default=3, help="trials per driver: the study asks for 2N")
    ap.add_argument("--kinds", nargs="+", default=["sqlite", "journal"], choices=["sqlite", "journal", "postgresql"])
    ap.add_argument("--postgres", help="postgresql:// URL (needed for --kinds postgresql)")
    ap.add_argument("--fresh", action="store_true", help="forget stored tries")
    args = ap.parse_args()
    if "postgresql" in args.kinds and not args.postgres:
        sys.exit("--kinds postgresql: give --postgres postgresql://user@host/db")
    rows = [] if args.fresh or not RESULTS.exists() else json.loads(RESULTS.read_text())["tries"]
    done = {(r["kind"], r["try"]) for r in rows}
    with tempfile.TemporaryDirectory(prefix="concurrent-") as tmp:
        for kind in args.kinds:
            for i in range(args.tries):
                if (kind, i) in done:
                    continue
                row = one_try(kind, i, args.n, Path(tmp), args.postgres)
                rows.append(row)
                print(f"{kind:10s} try {i}: exit {row['exit_codes']} trials {row['trials']}/{row['expected']} "
                      f"unique {row['numbers_unique']} failed {row['failed']} {'ok' if row['ok'] else 'FAILED'} "
                      f"({row['seconds']} s)", flush=True)
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(json.dumps({"n_per_driver": args.n, "tries": rows}, indent=1) + "\n")
    for kind in args.kinds:
        mine = [r for r in rows if r["kind"] == kind]
        print(f"{kind}: {sum(r['ok'] for r in mine)}/{len(mine)} tries ok (two drivers, --trials {2 * args.n} each)")


if __name__ == "__main__":
    main()
