"""Pareto fronts and hypervolume over any number of objectives, against hand-computed values."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from hand_nas.search.pareto import dominates, hypervolume, pareto_indices
from hand_nas.search.records import Cost, TrialRecord, pareto_front


def test_two_dimensional_hypervolume_by_hand():
    assert hypervolume([(1, 1)], (2, 2)) == 1.0
    assert hypervolume([(1, 1), (0.5, 1.5)], (2, 2)) == 1.0 + 0.25
    assert hypervolume([(3, 0)], (2, 2)) == 0.0  # outside the reference box


def test_three_dimensional_hypervolume_matches_a_grid_count():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, (6, 3)).round(1)
    ref = (1.0, 1.0, 1.0)
    # count the cells of a 0.1 grid dominated by some point: exact for points on the grid
    cells = 0
    for c in itertools.product(np.arange(0.05, 1, 0.1), repeat=3):
        cells += any(all(p[k] <= c[k] for k in range(3)) for p in pts)
    assert hypervolume(pts, ref) == pytest.approx(cells * 1e-3)


def test_front_in_any_dimension():
    pts = [(1, 3, 2), (2, 2, 2), (3, 1, 3), (2, 3, 3), (1, 3, 2.5)]
    assert dominates((1, 3, 2), (1, 3, 2.5)) and not dominates((1, 3, 2), (2, 2, 2))
    assert pareto_indices(pts) == [0, 1, 2]
    assert pareto_indices([p[:2] for p in pts]) == [0, 4, 1, 2]  # equal points do not dominate each other


def test_record_front_uses_the_space_objectives():
    def rec(i, mpjpe, gmacs, lat):
        return TrialRecord(i, "complete", metrics={"mpjpe_mm": mpjpe}, cost=Cost(gmacs, gmacs, 0.0, 1.0),
                           latency_ms=lat)

    recs = [rec(0, 50, 0.3, 9.0), rec(1, 40, 0.4, 12.0), rec(2, 55, 0.35, 5.0), rec(3, 60, 0.5, 20.0)]
    assert [r.number for r in pareto_front(recs, ("mpjpe", "gmacs"))] == [1, 0]
    assert [r.number for r in pareto_front(recs, ("mpjpe", "gmacs", "latency"))] == [1, 0, 2]
