"""`data prepare` at scale: images/s per worker, peak RSS, and kill -9 at ~50% then resume.

    python experiments/prepare_scale.py [--sizes 2000 10000] [--cache DIR] [--out experiments/results/prepare_scale.json]

For each size it writes (once, cached under ``--cache``, default ``$HAND_NAS_HOME/bench/prepare_scale``)
a tree in InterHand2.6M's official layout with that many interacting images (one in 50 dark, plus
the generator's extra annotations), then runs ``prepare`` in a fresh subprocess, 1 torch/BLAS
thread per process:

1. ``w1``: 1 worker, uninterrupted: the reference sha256 of every output file;
2. ``w2``: 2 workers: images/s per worker and the same sha256;
3. ``kill``: 2 workers, SIGKILL to the prepare process once the build log holds half of the write
   chunks, then the same command again, which resumes; its sha256 must equal ``w1``'s.

Peak memory, two ways: (a) ``peak_{rss,pss,uss}_mib_tree``: this script samples, every 50 ms
with psutil, the prepare process plus all its descendants (the spawned workers and
multiprocessing's resource tracker) and keeps the largest sums. In the RSS sum, shared pages (the
torch libraries each process maps) count once per process, so it is an upper bound on the tree's
footprint; PSS splits each shared page among the processes that map it (the tree's real share of
memory), USS counts only pages private to a process (a lower bound). A peak shorter than 50 ms
can be missed. (b) ``ru_maxrss`` of the prepare process itself and the largest
of its worker processes (``RUSAGE_CHILDREN``, read in that process after its pool has been
joined): exact high-water marks, but per process. Linux carries a process's high-water mark across
``exec``, so a spawned worker's figure is at least the prepare process's RSS at the moment it
forked: an upper bound on the worker's own peak. Each finished step is
written to ``--out`` at once, so a rerun after an interruption skips what is done (the step that
was running starts over; ``--fresh`` redoes everything). Output folders are deleted after hashing.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DARK_EVERY = 50
CHUNK = 64


def tree_shape(n: int) -> dict:
    """captures x frames x cameras = n, with InterHand2.6M-like camera counts."""
    for cameras in (40, 32, 25, 20, 16, 10, 8, 5, 4, 2, 1):
        if n % cameras == 0:
            rest = n // cameras
            captures = next(c for c in (5, 4, 2, 1) if rest % c == 0)
            return {"captures": captures, "frames": rest // captures, "cameras": cameras}
    raise ValueError(n)


def ensure_tree(cache: Path, n: int) -> Path:
    from hand_nas.data.interhand_mock import write_mock_interhand

    root = cache / f"tree{n}"
    if (root / "DONE").is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)  # a generation that was interrupted
    t0 = time.perf_counter()
    shape = tree_shape(n)
    print(f"writing a {n}-image tree {shape} to {root}", flush=True)
    write_mock_interhand(root, split="test", seed=n, dark_every=DARK_EVERY, **shape)
    (root / "DONE").write_text(json.dumps({**shape, "seconds": time.perf_counter() - t0}))
    return root


def folder_sha256(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.iterdir()):
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 24), b""):
                h.update(block)
        out[path.name] = h.hexdigest()
    return out


def run_prepare(root: Path, out: Path, workers: int, resume: bool) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, str(Path(__file__).resolve()), "_prepare", str(root), str(out), str(workers),
           "resume" if resume else "fresh"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


class TreeRSS(threading.Thread):
    """Samples the summed RSS of a process and its descendants until the process ends (MiB, largest seen)."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc, self.every_s = psutil.Process(pid), every_s
        self.peak_mib, self.peak_processes, self.samples = 0.0, 0, 0
        self.peak_pss_mib = self.peak_uss_mib = 0.0
        self.start()

    def run(self) -> None:
        import psutil

        while True:
            try:
                if self.proc.status() == psutil.STATUS_ZOMBIE:
                    return
                tree = [self.proc, *self.proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = pss = uss = alive = 0
            for p in tree:
                try:
                    full = p.memory_full_info()  # smaps_rollup: rss, and pss / uss, which split shared pages
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total, pss, uss, alive = total + full.rss, pss + full.pss, uss + full.uss, alive + 1
            self.samples += 1
            if total / 2**20 > self.peak_mib:
                self.peak_mib, self.peak_processes = total / 2**20, alive
            self.peak_pss_mib = max(self.peak_pss_mib, pss / 2**20)
            self.peak_uss_mib = max(self.peak_uss_mib, uss / 2**20)
            time.sleep(self.every_s)


def finish(proc: subprocess.Popen, rss: TreeRSS) -> dict:
    stdout, _ = proc.communicate()
    rss.join()
    if proc.returncode != 0:
        raise SystemExit(f"prepare failed with status {proc.returncode}")
    r = json.loads(stdout.strip().splitlines()[-1])
    r.update(peak_rss_mib_tree=rss.peak_mib, peak_pss_mib_tree=rss.peak_pss_mib, peak_uss_mib_tree=rss.peak_uss_mib,
             peak_tree_processes=rss.peak_processes, rss_samples=rss.samples)
    return r


def log_progress(out: Path) -> tuple[int, int | None]:
    """(write chunks committed, write chunks in all, once known) from the partial build's log."""
    from hand_nas.data.resumable import LOG, partial_dir

    try:
        lines = (partial_dir(out) / LOG).read_text().splitlines()
    except FileNotFoundError:
        return 0, None
    total, done = None, 0
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry["phase"] == "allocate":
            total = -(-entry["count"] // CHUNK)
        done += entry["phase"] == "write"
    return done, total


def step_run(root: Path, work: Path, workers: int) -> dict:
    out = work / f"w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    t0, load = time.perf_counter(), os.getloadavg()[0]
    proc = run_prepare(root, out, workers, resume=False)
    r = finish(proc, TreeRSS(proc.pid))
    r["wall_s"] = time.perf_counter() - t0
    r["load_avg_1min_before_after"] = [load, os.getloadavg()[0]]
    r["sha256"] = folder_sha256(out)
    shutil.rmtree(out)
    return r


def step_kill(root: Path, work: Path, workers: int) -> dict:
    out = work / "killed"
    shutil.rmtree(out, ignore_errors=True)
    proc = run_prepare(root, out, workers, resume=False)
    killed_rss = TreeRSS(proc.pid)
    while proc.poll() is None:
        done, total = log_progress(out)
        if total is not None and done >= total / 2:
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        raise SystemExit("prepare finished before it could be killed")
    proc.send_signal(signal.SIGKILL)  # the prepare process only: its orphaned workers must stop by themselves
    proc.communicate()
    killed_rss.join()
    done, total = log_progress(out)
    print(f"  killed (status {proc.returncode}) with {done} of {total} write chunks committed", flush=True)
    time.sleep(1.0)  # let the orphans notice
    resumed = run_prepare(root, out, workers, resume=True)
    r = finish(resumed, TreeRSS(resumed.pid))
    r["peak_rss_mib_tree_killed_run"] = killed_rss.peak_mib
    r["load_avg_1min_after"] = os.getloadavg()[0]
    r.update(killed_status=proc.returncode, chunks_at_kill=done, chunks_total=total,
             fraction_at_kill=done / total, sha256=folder_sha256(out))
    shutil.rmtree(out)
    return r


def child(root: str, out: str, workers: str, mode: str) -> None:
    """One prepare run; prints its counts, timing and peak RSS as the last line (JSON)."""
    from hand_nas.data.interhand import prepare

    t0 = time.perf_counter()
    r = prepare(root, out, split="test", progress=False, workers=int(workers), resume=mode == "resume", chunk=CHUNK)
    r["process_s"] = time.perf_counter() - t0
    # ru_maxrss is in KiB on Linux; the workers were joined inside prepare, so CHILDREN covers them.
    r["peak_rss_mib_main"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    r["peak_rss_mib_worker_max"] = kids.ru_maxrss / 1024
    # CPU seconds, start-up included: on a shared machine images per CPU-second is the figure that
    # the other users' load does not distort.
    r["cpu_s"] = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    r["images_per_cpu_s"] = r["written"] / r["cpu_s"]
    print(json.dumps(r))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    ap.add_argument("--cache", type=Path, help="where the generated trees live")
    ap.add_argument("--out", type=Path, default=REPO / "experiments" / "results" / "prepare_scale.json")
    ap.add_argument("--fresh", action="store_true", help="ignore the steps already in --out")
    args = ap.parse_args()
    from hand_nas.paths import home

    cache = args.cache or home() / "bench" / "prepare_scale"
    cache.mkdir(parents=True, exist_ok=True)
    results = {} if args.fresh or not args.out.is_file() else json.loads(args.out.read_text())
    results.setdefault("machine", {"cpus": os.cpu_count(), "python": platform.python_version(),
                                   "threads_per_process": 1})
    results.setdefault("command", "python experiments/prepare_scale.py --sizes " + " ".join(map(str, args.sizes)))
    results.setdefault("commit", subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                                text=True).stdout.strip())
    sizes = results.setdefault("sizes", {})
    results["notes"] = ("peak_{rss,pss,uss}_mib_tree: largest sums over the prepare process and all its descendants, "
                        "sampled every 50 ms with psutil (RSS counts shared library pages once per process: an upper "
                        "bound; PSS splits them; USS leaves them out). peak_rss_mib_worker_max is max(worker's own peak, main's RSS when it spawned the "
                        "worker): Linux keeps ru_maxrss across exec. images_per_s is wall-clock on a shared "
                        "2-core machine (see load_avg_1min); images_per_cpu_s includes start-up.")

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")

    for n in args.sizes:
        entry = sizes.setdefault(str(n), {})
        root = ensure_tree(cache, n)
        entry["tree"] = json.loads((root / "DONE").read_text())
        work = cache / f"out{n}"
        for name, fn, workers in (("w1", step_run, 1), ("w2", step_run, 2), ("kill", step_kill, 2)):
            if name in entry:
                continue
            print(f"{n} images, step {name} ...", flush=True)
            r = fn(root, work, workers)
            entry[name] = json.loads(json.dumps(r), parse_float=lambda v: round(float(v), 3))
            save()
        ref = entry["w1"]["sha256"]
        entry["w2_equal_w1"] = entry["w2"]["sha256"] == ref
        entry["resumed_equal_w1"] = entry["kill"]["sha256"] == ref
        save()
        for name in ("w1", "w2"):
            e = entry[name]
            print(f"{n} images, {e['workers']} worker(s): {e['written']} written, {e['dropped_dark']} dark, "
                  f"{e['images_per_s']:.1f} images/s = {e['images_per_s'] / e['workers']:.1f} per worker "
                  f"({e['images_per_cpu_s']:.1f} per CPU-second, load {e['load_avg_1min_before_after'][0]:.1f}); "
                  f"peak process tree: RSS {e['peak_rss_mib_tree']:.0f} MiB (sum of {e['peak_tree_processes']}), "
                  f"PSS {e['peak_pss_mib_tree']:.0f} MiB, USS {e['peak_uss_mib_tree']:.0f} MiB; "
                  f"main {e['peak_rss_mib_main']:.0f} MiB, largest worker {e['peak_rss_mib_worker_max']:.0f} MiB")
        k = entry["kill"]
        print(f"{n} images: SIGKILL at {k['chunks_at_kill']}/{k['chunks_total']} write chunks "
              f"({100 * k['fraction_at_kill']:.0f}%), resumed (tree peak {k['peak_rss_mib_tree']:.0f} MiB): sha256 equal to the uninterrupted run: "
              f"{entry['resumed_equal_w1']}; 2 workers equal to 1: {entry['w2_equal_w1']}")
    results["complete"] = all(str(n) in sizes and "kill" in sizes[str(n)] for n in args.sizes)
    save()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_prepare":
        child(*sys.argv[2:6])
    else:
        main()
