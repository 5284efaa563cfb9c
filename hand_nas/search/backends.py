"""The registered search backends: the strategy for a (backend, sampler) pair, and the sampler its study opens with.

The pairs are ``strategy.SAMPLERS``; each backend is one adapter module (``optuna_strategy``,
``nni_strategy``), imported only when it is asked for (NNI is heavy and optional).
"""
from __future__ import annotations

from hand_nas.search.strategy import Strategy, resolve_sampler


def study_sampler(backend: str, sampler: str, seed: int, multi_objective: bool, workers: int):
    """The optuna sampler a study must be opened with for this strategy (None: proposals carry params)."""
    if backend == "optuna":
        from hand_nas.search.optuna_strategy import make_sampler

        return make_sampler(sampler, seed, multi_objective, workers)
    return None


def make_strategy(backend: str, sampler: str, space, seed: int = 0, workers: int = 1,
                  max_trials: int = 100) -> Strategy:
    """The registered strategy for (backend, sampler) over ``space`` (an optuna one samples through the
    study's sampler, ``study_sampler``)."""
    sampler = resolve_sampler(backend, sampler)
    if backend == "optuna":
        from hand_nas.search.optuna_strategy import OptunaStrategy

        return OptunaStrategy()
    from hand_nas.search.nni_strategy import NniStrategy

    return NniStrategy(space, sampler, seed, workers, max_trials)
