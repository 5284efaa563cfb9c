"""Optuna strategy: TPE, NSGA-II or random sampling over a space (define-by-run).

Optuna's samplers sample inside a trial of the study, reading its history: this adapter asks the
store for a new trial and suggests every parameter through it; the store then records the outcome,
so the sampler learns from it (budget violations included, through ``set_constraint``).
Trials stop early on the study pruner's verdict (``hand_nas.search.pruning``: multi-objective studies too).
"""
from __future__ import annotations

import optuna

from hand_nas.errors import HandNasError
from hand_nas.search.space import SearchSpace, decode
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
    """One parameter through an optuna trial, from its distribution."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return trial.suggest_categorical(label, list(dist.choices))
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(label, dist.low, dist.high, log=dist.log)
    return trial.suggest_float(label, dist.low, dist.high, log=dist.log)


class OptunaStrategy(Strategy):
    backend = "optuna"

    def __init__(self, space: SearchSpace, store) -> None:
        self.space, self.store = space, store

    def ask(self) -> Proposal:
        trial = self.store.ask()
        params = {label: decode(suggest(trial, label, dist)) for label, dist in self.store.distributions.items()}
        return Proposal(params, number=trial.number)
