"""Optuna strategy: TPE, NSGA-II or random sampling over a space.

Optuna's samplers sample inside a trial of the study, reading its history: the study is opened with the
strategy's sampler (``make_sampler``, through ``backends.study_sampler``), each proposal leaves the
parameters to it, and it samples every one of them when the runner creates the trial
(``StudyStore.ask``). The store then records the outcome, so the sampler learns from it (budget
violations included, through ``set_constraint``); the strategy itself never touches the study.
Trials stop early on the study pruner's verdict (``hand_nas.search.pruning``: multi-objective studies too).
"""
from __future__ import annotations

import optuna

from hand_nas.errors import HandNasError
from hand_nas.search.strategy import SAMPLERS, Proposal, Strategy


def make_sampler(name: str, seed: int, multi: bool, workers: int = 1):
    """The optuna sampler for a name; several workers get TPE's constant liar."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4, constant_liar=workers > 1,
                                          multivariate=not multi)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise HandNasError(f"sampler {name!r}: expected one of {SAMPLERS['optuna']}")


def suggest(trial, label: str, dist):
    """One parameter through an optuna trial, from its distribution (define-by-run use of a store's trial)."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return trial.suggest_categorical(label, list(dist.choices))
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(label, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(label, dist.low, dist.high, log=dist.log)


class OptunaStrategy(Strategy):
    """Proposes through the study's optuna sampler: each proposal's parameters are sampled as its trial is created."""

    backend = "optuna"

    def ask(self) -> Proposal:
        return Proposal(params=None)
