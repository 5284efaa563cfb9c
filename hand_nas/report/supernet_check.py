"""Does the supernet rank architectures like training them does? Inherited-weight scores against stand-alone runs.

``reference_runs`` collects stand-alone long trainings already on disk: a ``hand-nas proxy check`` result
(its architectures' ``long_mm``, seed 0) and ``experiments/search_vs_hand.py``'s retrain records (one JSON per
architecture and seed). Runs of the same configuration are pooled by seed, so an architecture in both counts
each seed once. ``supernet_check`` scores each reference architecture with the supernet's inherited weights
(extract, BatchNorm recalibration, held-out MPJPE) and returns Kendall's tau and Spearman's rho of those scores
against the stand-alone means, beside GMACs alone (more GMACs, lower error) and the seconds per evaluation.
Architectures outside the supernet's space (another encoder family) are listed as skipped. ``rerank`` ranks an
earlier result's scores against the references as they stand now (a seed added since), scoring nothing again.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hand_nas.config import ModelCfg
from hand_nas.errors import HandNasError
from hand_nas.stats import kendall_tau, spearman_rho


def reference_runs(paths: list[str | Path]) -> list[dict]:
    """[{'label', 'config', 'runs': {seed: mm}}] from proxy-check JSONs and retrain-record JSONs (pure IO)."""
    from hand_nas.supernet.supernet import cfg_key

    by_cfg: dict[str, dict] = {}
    for path in paths:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise HandNasError(f"{path}: unreadable reference ({exc})") from None
        if isinstance(data, dict) and "architectures" in data:  # a proxy check: long runs of seed 0
            seed = (data.get("long") or {}).get("seed", 0)
            rows = [(a["label"], a["config"], seed, a["long_mm"]) for a in data["architectures"]
                    if a.get("long_mm") is not None]
        elif isinstance(data, dict) and {"label", "seed", "mpjpe_mm", "config"} <= set(data):
            rows = [(data["label"], data["config"], data["seed"], data["mpjpe_mm"])]
        else:
            raise HandNasError(f"{path}: neither a proxy check result nor a retrain record")
        for label, config, seed, mm in rows:
            cfg = ModelCfg.from_dict(config)
            entry = by_cfg.setdefault(cfg_key(cfg), {"label": label, "config": cfg, "runs": {}})
            entry["runs"][int(seed)] = float(mm)
    return sorted(by_cfg.values(), key=lambda e: e["label"])


def supernet_check(supernet, scorer, refs: list[dict], log=None) -> dict:
    """Score every reference architecture with the supernet; rank correlations against the stand-alone means."""
    rows, skipped = [], []
    for ref in refs:
        try:
            _, metrics, seconds = scorer.score(supernet, ref["config"])
        except HandNasError as exc:  # not a configuration of the supernet's space
            skipped.append({"label": ref["label"], "why": str(exc)[:160]})
            continue
        rows.append(_row(ref, metrics.mpjpe_mm, seconds))
        if log:
            log(f"{ref['label']:<16} supernet {metrics.mpjpe_mm:6.2f} mm  stand-alone {rows[-1]['standalone_mm']:6.2f} "
                f"mm ({len(ref['runs'])} seed(s))  {seconds:.1f} s")
    return _ranked(rows, skipped, refs)


def rerank(stored: dict, refs: list[dict], source: str = "the stored result") -> dict:
    """``supernet_check``'s result for the supernet scores ``stored`` (an earlier result) against ``refs`` as they
    stand now (more seeds since): nothing is scored again. An architecture scored there is matched by label and
    must have the same GMACs; one it lacks is listed as skipped."""
    from hand_nas.cost.gate import estimate_gmacs

    if not isinstance(stored, dict) or not isinstance(stored.get("rows"), list):
        raise HandNasError(f"{source}: expected a 'hand-nas proxy check --evaluator supernet' result (no 'rows')")
    by_label = {r.get("label"): r for r in stored["rows"] if isinstance(r, dict)}
    why_skipped = {r.get("label"): r.get("why") for r in stored.get("skipped") or [] if isinstance(r, dict)}
    rows, skipped = [], []
    for ref in refs:
        old = by_label.get(ref["label"])
        if old is None or not isinstance(old.get("supernet_mm"), (int, float)):
            skipped.append({"label": ref["label"], "why": why_skipped.get(ref["label"]) or f"not scored in {source}"})
        elif not isinstance(old.get("gmacs"), (int, float)) \
                or abs(old["gmacs"] - round(estimate_gmacs(ref["config"]), 4)) > 1e-4:
            skipped.append({"label": ref["label"], "why": f"{source} scored another configuration under this label "
                                                          f"({old.get('gmacs')} GMACs)"})
        else:
            rows.append(_row(ref, float(old["supernet_mm"]), float(old.get("seconds", float("nan")))))
    return _ranked(rows, skipped, refs)


def _row(ref: dict, supernet_mm: float, seconds: float) -> dict:
    from hand_nas.cost.gate import estimate_gmacs

    runs = list(ref["runs"].values())
    return {"label": ref["label"], "gmacs": round(estimate_gmacs(ref["config"]), 4), "supernet_mm": supernet_mm,
            "standalone_mm": float(np.mean(runs)),
            "standalone_std": float(np.std(runs, ddof=1)) if len(runs) > 1 else None,
            "seeds": sorted(ref["runs"]), "seconds": round(seconds, 2)}


def _ranked(rows: list[dict], skipped: list[dict], refs: list[dict]) -> dict:
    """The result: rows, skipped, and the summary (rank correlations, GMACs alone, the reference's agreement)."""
    sup = [r["supernet_mm"] for r in rows]
    alone = [r["standalone_mm"] for r in rows]
    n = len(rows)
    summary = {"architectures": n, "kendall_tau": kendall_tau(sup, alone), "spearman_rho": spearman_rho(sup, alone),
               "gmacs_tau": kendall_tau([-r["gmacs"] for r in rows], alone),
               # tau's standard error with no correlation: sqrt(2(2n+5) / (9n(n-1)))
               "tau_standard_error": float(np.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))) if n > 1 else None,
               "seconds_per_evaluation": float(np.median([r["seconds"] for r in rows])) if rows else None}
    summary.update(reference_agreement([{"label": r["label"], "runs": ref["runs"]} for r in rows
                                        for ref in refs if ref["label"] == r["label"]]))
    return {"summary": summary, "rows": rows, "skipped": skipped}


def reference_agreement(refs: list[dict], draws: int = 2000, seed: int = 0) -> dict:
    """How far the stand-alone reference agrees with itself: what a proxy's tau can be read against.

    ``seed_pair_tau``: Kendall's tau between seed s's and seed t's runs over the architectures run with both, per
    seed pair (the reference replicated). ``ceiling_tau``: the mean tau of the architectures' observed means
    against references redrawn around them with the pooled seed std over each architecture's seed count (a
    parametric bootstrap that takes the observed means as the truth: a proxy that knew them would reach about
    this; optimistic, since observed means spread wider than true ones).
    """
    seeds = sorted({s for r in refs for s in r["runs"]})
    pairs = []
    for i, a in enumerate(seeds):
        for b in seeds[i + 1:]:
            both = [r for r in refs if a in r["runs"] and b in r["runs"]]
            if len(both) >= 3:
                pairs.append({"seeds": [a, b], "architectures": len(both),
                              "tau": kendall_tau([r["runs"][a] for r in both], [r["runs"][b] for r in both])})
    multi = [list(r["runs"].values()) for r in refs if len(r["runs"]) > 1]
    out = {"seed_pair_tau": pairs,
           "seed_pair_tau_mean": float(np.mean([p["tau"] for p in pairs])) if pairs else None}
    if not multi or len(refs) < 3:
        return {**out, "pooled_seed_std_mm": None, "ceiling_tau": None}
    pooled = float(np.sqrt(np.mean([np.var(v, ddof=1) for v in multi])))
    means = np.array([np.mean(list(r["runs"].values())) for r in refs])
    counts = np.array([len(r["runs"]) for r in refs])
    rng = np.random.default_rng(seed)
    taus = [kendall_tau(list(means), list(means + rng.normal(0, pooled / np.sqrt(counts)))) for _ in range(draws)]
    return {**out, "pooled_seed_std_mm": pooled, "ceiling_tau": float(np.mean(taus))}


def format_supernet_check(result: dict, trained_proxy_tau: float | None = None) -> str:
    s = result["summary"]
    lines = ["architecture      GMACs  supernet mm  stand-alone mm (seeds)",
             *(f"{r['label']:<16} {r['gmacs']:6.4f}  {r['supernet_mm']:10.2f}  {r['standalone_mm']:10.2f} "
               f"({len(r['seeds'])})" for r in sorted(result["rows"], key=lambda r: r["supernet_mm"]))]
    fmt = (lambda v: "n/a" if v is None else f"{v:.2f}")
    lines.append(f"{s['architectures']} architectures: Kendall tau {fmt(s['kendall_tau'])} (standard error "
                 f"{fmt(s['tau_standard_error'])} without correlation), Spearman rho {fmt(s['spearman_rho'])}; "
                 f"GMACs alone tau {fmt(s['gmacs_tau'])}"
                 + (f"; the trained proxy's tau {trained_proxy_tau:.2f}" if trained_proxy_tau is not None else "")
                 + f"; {fmt(s['seconds_per_evaluation'])} s per evaluation (median)")
    if s.get("seed_pair_tau"):
        lines.append("the reference against itself: seed-vs-seed tau "
                     + ", ".join(f"{p['seeds'][0]}/{p['seeds'][1]} {fmt(p['tau'])} ({p['architectures']} arch.)"
                                 for p in s["seed_pair_tau"])
                     + f"; pooled seed std {fmt(s['pooled_seed_std_mm'])} mm; a proxy knowing each architecture's "
                       f"mean would reach tau ~{fmt(s['ceiling_tau'])} against this reference (bootstrap, optimistic)")
    for sk in result["skipped"]:
        lines.append(f"skipped {sk['label']}: {sk['why']}")
    return "\n".join(lines)
