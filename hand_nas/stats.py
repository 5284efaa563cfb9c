"""Rank correlations between two orderings of the same items (pure; scipy's tau-b and rho).

Both return None where no correlation is defined: fewer than three items, or one side constant (scipy's
NaN, e.g. architectures of equal GMACs). Callers print "n/a" or skip the figure; they never see NaN.
"""
from __future__ import annotations

import math
import warnings


def kendall_tau(a, b) -> float | None:
    """Kendall's tau-b of two equal-length sequences, or None (see the module docstring)."""
    from scipy.stats import kendalltau

    if len(a) < 3:
        return None
    with warnings.catch_warnings():  # a constant side: scipy warns and returns NaN, answered None here
        warnings.simplefilter("ignore", RuntimeWarning)
        tau = float(kendalltau(a, b).statistic)
    return None if math.isnan(tau) else tau


def spearman_rho(a, b) -> float | None:
    """Spearman's rho of two equal-length sequences, or None (see the module docstring)."""
    from scipy.stats import spearmanr

    if len(a) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's ConstantInputWarning is a RuntimeWarning
        rho = float(spearmanr(a, b).statistic)
    return None if math.isnan(rho) else rho
