"""The headline benchmark (issue 11): does a multi-fidelity search on lwa.yaml beat the hand design?

Phases, each resumable and stored on its own under ``results/search_vs_hand/<tag>/`` (small JSON only;
rerunning skips what is stored, a killed retrain resumes from its snapshot while the machine keeps
its ``--home``):

1. ``mf``: a multi-fidelity search (``--pruner noise``: a trial stops only when behind by more than
   twice the proxy's measured seed noise, taken from ``--noise``, the lwa proxy check's JSON), TPE,
   ``--trials`` trials. Its cost: the training steps and core-seconds of every trial.
2. ``random``: random search with full-fidelity trials (no early stopping) at equal total training
   steps: as many trials as phase 1's steps buy at the proxy's length.
3. ``retrain``: the ``--top`` best feasible architectures of each search, ``lwa_hand`` and
   ``lagc_hand``, trained from scratch under one recipe (``hand_nas.retrain.RECIPES``) with
   ``--seeds`` seeds each.
   ``reference``: the same for the proxy check's architectures (``--noise``'s JSON, one long run of seed 0
   each) not retrained above, into ``reference/`` (labels ``pc-<label>``): their further seeds make the
   reference that ``hand-nas proxy check --evaluator supernet`` ranks against sharper. Seed 0 is read from
   the proxy check's cache, not trained again.
4. ``--table``: GMACs, parameters, MPJPE/MPVPE mean +- std per model over the seeds, beside the
   split's mean-shape baseline, the searches' cost, and the target check (best searched architecture
   at <= 0.47 GMACs vs lwa_hand: ratio <= 0.90 with the gap > 2 std).

GMACs: fvcore convention (one fused multiply-add = one flop), batch 1, 3x256x256. MPJPE: held-out,
mm, IntagHand protocol. One torch thread per process.

Usage:
    python experiments/search_vs_hand.py --phase mf --trials 24 --max-minutes 90
    python experiments/search_vs_hand.py --phase random
    python experiments/search_vs_hand.py --phase retrain --max-minutes 90
    python experiments/search_vs_hand.py --phase reference --shard 0/2 --max-minutes 150   # and 1/2 beside it
    python experiments/search_vs_hand.py --table
    python experiments/search_vs_hand.py --quick --phase all   # the whole chain on the tiny space in minutes
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PROXY_RUNS = ROOT / "results" / "proxy_runs"  # the proxy check's cached runs (its long runs are this table's)
REFERENCES = ("lwa_hand", "lagc_hand")


def settings(args) -> dict:
    if args.quick:
        return {"tag": "quick", "space": "tiny", "recipe": "smoke", "trials": 4, "top": 1, "seeds": 2, "noise": "0.5",
                "workers": args.workers}
    return {"tag": "lwa", "space": "lwa", "recipe": args.recipe, "trials": args.trials, "top": args.top,
            "seeds": args.seeds, "noise": args.noise or str(ROOT / "results" / "proxy_check_lwa.json"),
            "workers": args.workers}


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def _summary(records) -> list[dict]:
    return [{"number": r.number, "state": r.state, "gmacs": r.gmacs, "mpjpe_mm": r.mpjpe_mm if r.trained else None,
             "steps": r.steps, "seconds": r.seconds, "config": r.config, "feasible": r.feasible} for r in records]


def run_phase_search(kind: str, s: dict, home: Path, out: Path) -> dict:
    from hand_nas.config import StudyCfg
    from hand_nas.search.runner import pruner_spec, run_search
    from hand_nas.search.space import load_space

    path = out / f"search_{kind}.json"
    if path.exists():
        return json.loads(path.read_text())
    space = load_space(s["space"])
    if kind == "mf":
        trials, sampler, pruner = s["trials"], "tpe", "noise"
    else:
        mf = json.loads((out / "search_mf.json").read_text())
        steps = sum(r["steps"] or 0 for r in mf["trials"])
        trials, sampler, pruner = max(1, math.floor(steps / space.proxy.steps)), "random", "none"
    cfg = StudyCfg(space=s["space"], study=f"svh-{s['tag']}-{kind}", storage=f"sqlite:///{home / 'svh.db'}",
                   trials=trials, workers=s["workers"], executor="ray" if s["workers"] > 1 else "local",
                   out=str(home / "trials"), sampler=sampler, pruner=pruner,
                   noise=s["noise"] if pruner == "noise" else "", seed=0, device="cpu")
    t0 = time.perf_counter()
    summary = run_search(cfg, progress=True, space=space)
    trials_ = _summary(summary.records)
    if kind == "random":  # over-budget draws train nothing: draw on until the steps match the mf search's
        while (short := steps - sum(t["steps"] or 0 for t in trials_)) >= space.proxy.steps:
            cfg = dataclasses.replace(cfg, trials=len(trials_) + short // space.proxy.steps)
            trials_ = _summary(run_search(cfg, progress=True, space=space).records)
    spec = pruner_spec(cfg, space)
    res = {"kind": kind, "space": s["space"], "sampler": sampler, "pruner": pruner, "noise": s["noise"],
           "prune_from_step": spec["min_steps"] if isinstance(spec, dict) else None,
           "trials": trials_, "total_steps": sum(t["steps"] or 0 for t in trials_),
           "core_hours": sum(t["seconds"] or 0 for t in trials_) / 3600, "wall_s_this_run": time.perf_counter() - t0}
    _write(path, res)
    return res


def _top_architectures(done: list[dict], k: int, kind: str) -> list[tuple[str, dict]]:
    """The ``k`` best distinct architectures of a search's trials (a sampler may propose one twice)."""
    out, seen = [], set()
    for t in sorted(done, key=lambda t: t["mpjpe_mm"]):
        if (key := _arch_key(t["config"])) not in seen and len(out) < k:
            seen.add(key)
            out.append((f"{kind}-trial{t['number']}", t["config"]))
    return out


def retrain_jobs(s: dict, out: Path) -> list[list[tuple[str, dict]]]:
    """Groups of (label, model config dict) in the order the target needs them: lwa_hand with each search's
    best, then each search's second best, ..., lagc_hand last (a partial retrain already compares the best
    with the hand design over every seed). An architecture both searches found is retrained once."""
    from hand_nas.models.presets import resolve_model

    ranked = []
    for kind in ("mf", "random"):
        path = out / f"search_{kind}.json"
        if not path.exists():
            continue
        done = [t for t in json.loads(path.read_text())["trials"]
                if t["state"] == "complete" and t["feasible"] and t["mpjpe_mm"] is not None]
        ranked.append(_top_architectures(done, s["top"], kind))
    first, *rest = REFERENCES
    groups, seen = [[(first, resolve_model(first).to_dict())]], set()
    for rank in range(s["top"]):
        if rank:
            groups.append([])
        for jobs in ranked:
            if rank < len(jobs):
                key = _arch_key(jobs[rank][1])
                if key in seen:
                    print(f"{jobs[rank][0]}: the same architecture as one retrained above")
                    continue
                seen.add(key)
                groups[-1].append(jobs[rank])
    return [g for g in groups if g] + [[(n, resolve_model(n).to_dict())] for n in rest]


def reference_jobs(s: dict, out: Path) -> list[list[tuple[str, dict]]]:
    """The proxy check's architectures (``s['noise']``, its JSON) that no retrain record of ``out`` holds yet,
    one group each, labelled ``pc-<label>``."""
    from hand_nas.config import ModelCfg

    def key(cfg: dict) -> str:
        return _arch_key(ModelCfg.from_dict(cfg).to_dict())

    done = {key(json.loads(p.read_text())["config"]) for p in (out / "retrain").glob("*.json")}
    check = json.loads(Path(s["noise"]).read_text())
    return [[(f"pc-{a['label']}", a["config"])] for a in check["architectures"] if key(a["config"]) not in done]


def run_phase_retrain(s: dict, home: Path, out: Path, max_minutes: float | None,
                      shard: tuple[int, int] = (0, 1), only: set[str] | None = None, reference: bool = False) -> None:
    """Group by group (``retrain_jobs``), every seed of a group before the next; ``shard`` (k, n) takes every
    n-th of those runs from the k-th on, so n processes retrain at once without sharing a run; ``only`` keeps
    the runs of those labels (e.g. the seeds of one architecture), applied before the shard. ``reference``:
    the proxy check's architectures instead (``reference_jobs``), recorded under ``reference/``."""
    from hand_nas.config import ModelCfg
    from hand_nas.data.dataset import split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.proxy_runs import cached_metrics
    from hand_nas.retrain import get_recipe
    from hand_nas.search.runner import data_dir
    from hand_nas.train import train

    recipe = get_recipe(s["recipe"])
    data = data_dir("synthetic", recipe.synthetic_n, progress=True)
    n_train = len(split_indices(len(open_samples(data)), recipe.train.val_fraction, seed=0)[0])
    t0 = time.perf_counter()
    jobs, folder = (reference_jobs(s, out), out / "reference") if reference else (retrain_jobs(s, out), out / "retrain")
    runs = [(label, cfg_dict, seed) for group in jobs for seed in range(s["seeds"]) for label, cfg_dict in group]
    if only:
        known = {label for label, _, _ in runs}
        if unknown := sorted(only - known):
            raise SystemExit(f"--only: {', '.join(unknown)} not among the retrain runs ({', '.join(sorted(known))})")
        runs = [r for r in runs if r[0] in only]
    for label, cfg_dict, seed in runs[shard[0]::shard[1]]:
        path = folder / f"{label}_seed{seed}.json"
        if path.exists():
            continue
        if max_minutes is not None and (time.perf_counter() - t0) / 60 > max_minutes:
            print(f"stopping after {max_minutes} minutes: run the same command to continue")
            return
        cfg = ModelCfg.from_dict(cfg_dict)
        tcfg = recipe.train_cfg(n_train, seed)
        # the same (architecture, training, data) already trained by the proxy check: its long run is this
        # recipe's run (lwa.yaml's reference = `standard`), so it is read, not trained again
        got, source = cached_metrics(cfg, tcfg, str(data), cache=PROXY_RUNS), "proxy check cache"
        if got is None or got.get("mpvpe_mm") is None:
            print(f"retraining {label} seed {seed}: {tcfg.steps} steps at {tcfg.resolution} px (recipe {s['recipe']})")
            r = train(cfg, tcfg, data, progress=True, resume_dir=home / "snapshots" / f"{label}_seed{seed}",
                      save_every=recipe.save_every, log=print)
            got, source = {"mpjpe_mm": r.metrics.mpjpe_mm, "mpvpe_mm": r.metrics.mpvpe_mm,
                           "baseline_mpjpe_mm": r.baseline.mpjpe_mm, "seconds": r.seconds}, "trained"
        else:
            print(f"{label} seed {seed}: taken from the {source} ({got['mpjpe_mm']:.2f} mm)")
        from hand_nas.cost.flops import model_cost
        from hand_nas.models import build_model

        m = build_model(cfg)
        _record_in_study(s, home, label, seed, tcfg, got, data)
        _write(path, {"label": label, "seed": seed, "recipe": s["recipe"], "train": tcfg.to_dict(),
                      "gmacs": model_cost(m).gmacs_total, "params": sum(p.numel() for p in m.parameters()),
                      "mpjpe_mm": got["mpjpe_mm"], "mpvpe_mm": got["mpvpe_mm"],
                      "baseline_mpjpe_mm": got["baseline_mpjpe_mm"], "seconds": got["seconds"], "source": source,
                      "data": str(data), "config": cfg_dict})


def _record_in_study(s: dict, home: Path, label: str, seed: int, tcfg, got: dict, data) -> None:
    """A searched trial's retrain goes into its search's study too (``record_retrain``: ``hand-nas trial show``,
    the report and ``compress --study`` read it there). The references (lwa_hand, lagc_hand) are no trials; a
    study whose database is gone (another ``--home``) is skipped. No checkpoint is kept (runs read from the proxy
    check's cache have none): the record's checkpoint is empty, so ``compress --study`` keeps the trial's own."""
    from hand_nas.errors import HandNasError
    from hand_nas.search.storage import RetrainRecord, record_retrain, trial_count

    kind, _, number = label.partition("-trial")
    study, storage = f"svh-{s['tag']}-{kind}", f"sqlite:///{home / 'svh.db'}"
    if not number.isdigit() or not (home / "svh.db").is_file():
        return
    try:
        if trial_count(study, storage) == 0:
            return
    except HandNasError:
        return
    record_retrain(study, storage, RetrainRecord(
        study, int(number), s["recipe"], seed, checkpoint="", steps=tcfg.steps, train=tcfg.to_dict(), data=str(data),
        metrics={"mpjpe_mm": got["mpjpe_mm"], "mpvpe_mm": got["mpvpe_mm"]},
        baseline_metrics={"mpjpe_mm": got["baseline_mpjpe_mm"]}, seconds=got["seconds"], finished_at=time.time()))


def _arch_key(cfg: dict) -> str:
    return json.dumps({k: v for k, v in cfg.items() if k != "name"}, sort_keys=True)


def table(s: dict, out: Path) -> None:
    """Prints the benchmark's table and writes it to ``table.md`` beside the results."""
    import numpy as np

    lines = ["GMACs: fvcore convention (1 fused multiply-add = 1 flop), batch 1, 3x256x256; MPJPE/MPVPE held-out, mm, "
             f"IntagHand protocol; recipe {s['recipe']}; std over seeds (ddof 1)"]
    searches = {}
    for kind in ("mf", "random"):
        path = out / f"search_{kind}.json"
        if path.exists():
            r = searches[kind] = json.loads(path.read_text())
            states = {}
            for t in r["trials"]:
                states[t["state"]] = states.get(t["state"], 0) + 1
            lines.append(f"search {kind}: {len(r['trials'])} trials ({states}), {r['total_steps']} training steps, "
                         f"{r['core_hours']:.2f} core-hours")
    rows: dict = {}
    for p in sorted((out / "retrain").glob("*.json")):
        r = json.loads(p.read_text())
        rows.setdefault(r["label"], []).append(r)
    lines.append(f"{'model':<18} {'GMACs':>7} {'params':>9} {'seeds':>5} {'MPJPE mean+-std':>17} {'MPVPE mean+-std':>17} "
                 f"{'baseline':>8}")
    stats = {}
    for label, rs in rows.items():
        j, v = np.array([r["mpjpe_mm"] for r in rs]), np.array([r["mpvpe_mm"] for r in rs])
        sd = lambda x: float(x.std(ddof=1)) if len(x) > 1 else float("nan")  # noqa: E731
        stats[label] = (j.mean(), sd(j), rs[0]["gmacs"], len(rs))
        lines.append(f"{label:<18} {rs[0]['gmacs']:7.4f} {rs[0]['params']:9d} {len(rs):5d} {j.mean():8.2f} +- "
                     f"{sd(j):5.2f} {v.mean():8.2f} +- {sd(v):5.2f} {rs[0]['baseline_mpjpe_mm']:8.2f}")
    # acceptance 2: each search's best after retraining (by architecture: one both found counts for both)
    by_arch = {_arch_key(rs[0]["config"]): label for label, rs in rows.items() if "config" in rs[0]}
    for kind, r in searches.items():
        top = _top_architectures([t for t in r["trials"] if t["state"] == "complete" and t["feasible"]
                                  and t["mpjpe_mm"] is not None], s["top"], kind)
        got = [by_arch[k] for k in map(_arch_key, (c for _, c in top)) if k in by_arch]
        if got:
            best = min(got, key=lambda k: stats[k][0])
            m, sd_, _, n = stats[best]
            lines.append(f"best of search {kind} after retraining: {best} {m:.2f} +- {sd_:.2f} mm ({n} seeds; "
                         f"{len(got)} of its top {len(top)} retrained; {r['total_steps']} search steps)")
    searched = {k: v for k, v in stats.items() if k not in REFERENCES and v[2] <= 0.47 and v[3] >= 2}
    if "lwa_hand" in stats and stats["lwa_hand"][3] >= 2 and searched:
        best = min(searched, key=lambda k: searched[k][0])
        b, h = searched[best], stats["lwa_hand"]
        gap, two_std = h[0] - b[0], 2 * max(b[1], h[1])
        lines.append(f"target: best searched {best} {b[0]:.2f} mm vs lwa_hand {h[0]:.2f} mm = {b[0] / h[0]:.3f}x "
                     f"(target <= 0.90x), gap {gap:.2f} mm vs 2 std {two_std:.2f} mm: "
                     + ("met" if b[0] / h[0] <= 0.90 and gap > two_std else "not met"))
    else:
        lines.append("target: not yet measurable (needs lwa_hand and a searched architecture with >= 2 seeds)")
    print("\n".join(lines))
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("```\n" + "\n".join(lines) + "\n```\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase", choices=["mf", "random", "retrain", "reference", "all"])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--recipe", default="standard")
    ap.add_argument("--workers", type=int, default=1, help="searches: trials trained at once (one thread each; > 1 starts a local Ray)")
    ap.add_argument("--noise", help="the proxy check JSON (default results/proxy_check_lwa.json) or a figure in mm")
    ap.add_argument("--max-minutes", type=float, help="retrain: start no new run after this many minutes")
    ap.add_argument("--shard", default="0/1", help="retrain: K/N takes every N-th run from the K-th (N processes at once)")
    ap.add_argument("--only", help="retrain: comma-separated labels to retrain (e.g. mf-trial18), before --shard")
    ap.add_argument("--home", default=os.environ.get("HAND_NAS_HOME", "/tmp/hand-nas-exp"),
                    help="cache, study database and snapshots (keep it to resume)")
    ap.add_argument("--quick", action="store_true", help="the tiny space and the smoke recipe: the chain in minutes")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args()
    os.environ["HAND_NAS_HOME"] = args.home
    import torch

    torch.set_num_threads(1)
    s = settings(args)
    out = ROOT / "results" / "search_vs_hand" / s["tag"]
    home = Path(args.home) / "search_vs_hand" / s["tag"]
    home.mkdir(parents=True, exist_ok=True)
    if args.phase in ("mf", "all"):
        run_phase_search("mf", s, home, out)
    if args.phase in ("random", "all"):
        run_phase_search("random", s, home, out)
    if args.phase in ("retrain", "reference", "all"):
        k, _, n = args.shard.partition("/")
        if not (k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
            ap.error(f"--shard {args.shard!r}: expected K/N with 0 <= K < N, e.g. 1/2")
        run_phase_retrain(s, home, out, args.max_minutes, (int(k), int(n)),
                          set(args.only.split(",")) if args.only else None, reference=args.phase == "reference")
    table(s, out)


if __name__ == "__main__":
    main()
