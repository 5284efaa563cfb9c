"""Pareto fronts and hypervolume over any number of minimised objectives (pure functions).

Points are tuples of objective values, all minimised (MPJPE mm, GMACs, latency ms, ...). Reports,
the CLI and the experiments all use these two functions, so a 3-objective space (MPJPE, GMACs,
latency) gets a 3-D front and a 3-D hypervolume like a 2-objective one gets 2-D ones.
"""
from __future__ import annotations

from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is no worse than ``b`` in every objective and better in at least one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_indices(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points, ordered by their objective tuples (first objective first)."""
    keep = [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]
    return sorted(keep, key=lambda i: tuple(points[i]))


def hypervolume(points: Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """Volume dominated by ``points`` inside the box bounded above by ``ref`` (all objectives minimised).

    Recursive slicing along the last objective: exact, O(n^d), meant for the tens of trials a
    study's front holds. Points not strictly better than ``ref`` in every objective add nothing.
    """
    pts = [tuple(map(float, p)) for p in points if all(x < r for x, r in zip(p, ref))]
    if not pts:
        return 0.0
    if len(ref) == 1:
        return float(ref[0]) - min(p[0] for p in pts)
    pts.sort(key=lambda p: p[-1])
    volume = 0.0
    for i, p in enumerate(pts):
        top = pts[i + 1][-1] if i + 1 < len(pts) else ref[-1]
        if top > p[-1]:
            volume += hypervolume([q[:-1] for q in pts[:i + 1]], ref[:-1]) * (top - p[-1])
    return volume
