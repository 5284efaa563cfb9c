"""Trial records as plain rows (pure data for tables, reports and the CLI)."""
from __future__ import annotations

import math


def trial_row(t) -> dict:
    """One finished or running optuna FrozenTrial as a flat dict."""
    ua = t.user_attrs
    m = ua.get("metrics", {}) or {}
    c = ua.get("cost", {}) or {}
    constraint = (t.system_attrs.get("constraints") or [None])[0]
    state = ua.get("state") or t.state.name.lower()
    if t.state.name == "RUNNING":
        state = "running"
    return {
        "number": t.number, "state": state, "backend": ua.get("backend", ""),
        "mpjpe_mm": m.get("mpjpe_mm"), "mpvpe_mm": m.get("mpvpe_mm"),
        "gmacs": c.get("gmacs_total"), "gmacs_image": c.get("gmacs_image"), "gmacs_pose": c.get("gmacs_pose"),
        "feasible": None if constraint is None else constraint <= 0, "latency_ms": ua.get("latency_ms"),
        "seconds": ua.get("seconds"), "checkpoint": ua.get("checkpoint"), "error": ua.get("error") or ua.get("reason"),
        "params": ua.get("params", {}), "values": list(t.values) if t.values else None,
    }


def load_rows(study_name: str, storage_url: str) -> list[dict]:
    import optuna

    from hand_nas.search.optuna_backend import make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=make_storage(storage_url))
    return [trial_row(t) for t in study.get_trials(deepcopy=False)]


def feasible_complete(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["state"] == "complete" and r["feasible"] and r["mpjpe_mm"] is not None
            and math.isfinite(r["mpjpe_mm"])]


def pareto_front(rows: list[dict], keys=("mpjpe_mm", "gmacs")) -> list[dict]:
    """Non-dominated feasible rows (all keys minimised), sorted by the first key."""
    pts = feasible_complete(rows)
    front = []
    for r in pts:
        dominated = any(all(o[k] <= r[k] for k in keys) and any(o[k] < r[k] for k in keys) for o in pts)
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: tuple(r[k] for k in keys))


def best_feasible(rows: list[dict]) -> dict | None:
    pts = feasible_complete(rows)
    return min(pts, key=lambda r: r["mpjpe_mm"]) if pts else None


def format_table(rows: list[dict]) -> str:
    """A fixed-width table of rows (GMACs in the fvcore convention)."""
    head = f"{'trial':>5}  {'state':<10} {'MPJPE mm':>9} {'MPVPE mm':>9} {'GMACs':>8} {'image':>7} {'pose':>7}  backend"
    lines = [head, "-" * len(head)]
    fmt = lambda v, spec: format(v, spec) if isinstance(v, (int, float)) else "-"  # noqa: E731
    for r in rows:
        lines.append(f"{r['number']:>5}  {r['state']:<10} {fmt(r['mpjpe_mm'], '9.2f')} {fmt(r['mpvpe_mm'], '9.2f')} "
                     f"{fmt(r['gmacs'], '8.4f')} {fmt(r['gmacs_image'], '7.4f')} {fmt(r['gmacs_pose'], '7.4f')}  {r['backend']}")
    return "\n".join(lines)
