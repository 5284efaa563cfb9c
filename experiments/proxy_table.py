"""The table of proxy changes tried on lwa.yaml (issue 11, acceptance 1): tau and noise of each.

Gathers what is stored, trains nothing: every proxy check of lwa.yaml under ``results/`` (the space's
proxy and each ``--proxy-set`` variant, all judged against the same 3000-step long runs, the space's
``reference``: every IntagHand loss term; each row named by how its short runs differ from lwa.yaml's proxy), cheaper
scores read off each check's short runs (the mean of the last two evaluations, a learning-curve
extrapolation), and the untrained scores of ``zero_cost.py``. Per row: Kendall tau vs the long runs
(mean over the proxy seeds, and one seed), seed-to-seed noise (mean |difference|, mm), spread between
architectures (std, mm), noise / spread, the mean proxy MPJPE beside the split's mean-shape baseline
and the median wall time of one short run (as trained: two runs at once on the two cores).
Kendall tau's standard error at N=9 with no correlation is ~0.27: rows closer than that are not
told apart by these 9 architectures. MPJPE: held-out, mm, IntagHand protocol.

Usage:
    python experiments/proxy_table.py            # prints Markdown, writes results/proxy_table.md
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hand_nas.stats import kendall_tau

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


def _extrapolated(h: dict) -> float:
    """The held-out MPJPE the last three evaluations' straight line reaches at 10x the run's steps."""
    steps = sorted(h)[-3:]
    return float(np.polyval(np.polyfit(steps, [h[s] for s in steps], 1), 10 * steps[-1]))


def rule_row(name: str, archs: list[dict], score) -> dict | None:
    """Tau / noise / spread of ``score(history dict)`` over the check's complete architectures."""
    done = [a for a in archs if a["long_mm"] is not None and all(a["proxy_history"] or [None])]
    if len(done) < 3:
        return None
    per = [[score(dict(map(tuple, h))) for h in a["proxy_history"]] for a in done]
    means = [float(np.mean(p)) for p in per]
    long = [a["long_mm"] for a in done]
    noise = float(np.mean([abs(p[0] - p[1]) for p in per])) if len(per[0]) >= 2 else None
    spread = float(np.std(means))
    return {"change": name, "tau": kendall_tau(means, long),
            "tau_one_seed": kendall_tau([p[0] for p in per], long),
            "noise_mm": noise, "spread_mm": spread, "noise_to_spread": noise / spread if noise is not None else None,
            "n": len(done)}


NOTES = {"proxy_check_lwa_before.json": " (the proxy's training before issue 11, then on 2000 images)"}


def change_from(proxy: dict, current: dict) -> str:
    """The fields in which a check's short runs differ from lwa.yaml's proxy now."""
    diff = [f"{k}={v}" for k, v in proxy.items() if k != "seed" and v != current.get(k)]
    return ", ".join(diff) or "none: lwa.yaml's proxy (kept)"


def check_rows(path: Path, current: dict) -> list[dict]:
    c = json.loads(path.read_text())
    if "architectures" not in c:  # a supernet's check (proxy_check_lwa_supernet.json): no trained proxy
        return []
    s, archs = c["summary"], c["architectures"]
    changes = change_from({**current, "ema": 0.0, **c["proxy"]}, current) + NOTES.get(path.name, "")
    p = c["proxy"]
    what = f"{p['steps']} steps, {p['resolution']} px, losses {p.get('losses', 'intaghand')}, augment {p['augment']}"
    secs = [t for a in archs for t in (a.get("proxy_seconds") or []) if t is not None]
    base = s.get("baseline_mpjpe_mm")
    proxy_mean = [float(np.mean(a["proxy_mm"])) for a in archs if all(v is not None for v in a["proxy_mm"])]
    row = {"change": changes, "training": what,
           "tau": s.get("kendall_tau"), "tau_one_seed": s.get("kendall_tau_one_seed"),
           "noise_mm": s.get("seed_noise_mm"), "spread_mm": s.get("spread_mm"), "noise_to_spread": s.get("noise_to_spread"),
           "n": s["complete"], "mean_mm": float(np.mean(proxy_mean)) if proxy_mean else None, "baseline_mm": base,
           "run_minutes": float(np.median(secs)) / 60 if secs else None, "file": path.name}
    rows = [row]
    steps = sorted({st for a in archs for h in (a.get("proxy_history") or []) if h for st, _ in h} - {0})
    if len(steps) >= 3:
        last2 = lambda h: (h[steps[-2]] + h[steps[-1]]) / 2  # noqa: E731
        for name, f in ((f"  same runs, mean of the evaluations at {steps[-2]} and {steps[-1]}", last2),
                        (f"  same runs, straight line through steps {steps[-3]}-{steps[-1]} extrapolated to "
                         f"{10 * steps[-1]}", _extrapolated)):
            r = rule_row(name, archs, f)
            if r is not None:
                rows.append(dict(r, training=what, file=path.name))
    return rows


def zero_cost_rows(path: Path) -> list[dict]:
    z = json.loads(path.read_text())
    rows = []
    for name, v in z["kendall_tau"].items():
        if name == "trained_proxy":
            continue
        v = v if isinstance(v, dict) else {"kendall_tau": v}
        rows.append({"change": f"untrained: {name}" + (f" ({z['seeds']} init seeds x {z['batches']} batches)"
                                                       if "seed_tau" in v else ""),
                     "training": "none", "tau": v["kendall_tau"], "tau_one_seed": v.get("kendall_tau_one_seed"),
                     "seed_tau": v.get("seed_tau"), "n": len(z["architectures"]), "run_minutes": 0.0, "file": path.name})
    return rows


def main() -> None:
    from hand_nas.search.space import load_space

    current = load_space("lwa").proxy.to_dict()
    rows = []
    for path in sorted(RESULTS.glob("proxy_check_lwa*.json")):
        rows += check_rows(path, current)
    seen = set()
    for path in sorted(RESULTS.glob("zero_cost_lwa*.json")):
        for r in zero_cost_rows(path):  # GMACs and params are the same in every file: once
            if r["change"] not in seen:
                seen.add(r["change"])
                rows.append(r)
    f = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = ["| change from lwa.yaml's proxy | training | min / run | mean mm (baseline) | tau (2 seeds) | tau (1 seed) | noise mm | "
             "spread mm | noise / spread | archs | file |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mean = f"{r['mean_mm']:.2f} ({r['baseline_mm']:.2f})" if r.get("mean_mm") and r.get("baseline_mm") else "-"
        noise = f(r.get("noise_mm")) if r.get("noise_mm") is not None else (
            f"seed tau {r['seed_tau']:.2f}" if r.get("seed_tau") is not None else "-")
        lines.append(f"| {r['change'].strip()} | {r['training']} | {f(r.get('run_minutes'), 1)} | {mean} | {f(r['tau'])} | "
                     f"{f(r.get('tau_one_seed'))} | {noise} | {f(r.get('spread_mm'))} | {f(r.get('noise_to_spread'))} | "
                     f"{r['n']} | {r['file']} |")
    text = "\n".join(lines)
    print(text)
    (RESULTS / "proxy_table.md").write_text(text + "\n")
    (RESULTS / "proxy_table.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {RESULTS / 'proxy_table.md'}")


if __name__ == "__main__":
    main()
