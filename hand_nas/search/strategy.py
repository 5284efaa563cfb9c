"""The interface every search strategy implements (ask -> proposal, tell(outcome)), and its registry.

A strategy only proposes configurations and learns from outcomes, the way optuna's samplers never
write to the storage themselves: the runner creates, heart-beats and finishes every trial through
``hand_nas.search.storage``. Backends are adapters of outside libraries (optuna's samplers, NNI's
strategies) to this interface; ``tests/test_search_backends.py`` runs every registered
(backend, sampler) pair through the same contract.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field

from hand_nas.errors import HandNasError

# backend -> its samplers, the first being the default; any other pair is an error.
SAMPLERS = {"optuna": ("tpe", "nsga2", "random"), "nni": ("evolution", "random")}


def resolve_sampler(backend: str, sampler: str = "") -> str:
    """The sampler a (backend, sampler) request means; an unsupported pair is an error."""
    if backend not in SAMPLERS:
        raise HandNasError(f"backend {backend!r}: expected one of {', '.join(SAMPLERS)}")
    if not sampler:
        return SAMPLERS[backend][0]
    if sampler not in SAMPLERS[backend]:
        raise HandNasError(f"backend {backend!r} has no sampler {sampler!r} (it has: "
                           f"{', '.join(SAMPLERS[backend])})")
    return sampler


@dataclass
class Proposal:
    """A configuration to evaluate.

    Attributes:
        params: the sampled values, keyed by the space's parameter labels (decoded).
        number: the study's trial number once the trial exists in the storage (optuna's samplers
            create it while sampling; for other strategies the runner creates it).
        handle: the strategy's own token for this proposal (an NNI model, ...).
    """

    params: dict
    number: int | None = None
    handle: object = None


@dataclass
class Outcome:
    """What happened to a proposal, as a strategy sees it.

    Attributes:
        state: 'complete', 'infeasible' (rejected by the gate, not trained), 'pruned' or 'failed'.
        values: objective values (mpjpe first) for complete/infeasible trials.
    """

    state: str
    values: tuple = ()
    extra: dict = field(default_factory=dict)


class Strategy(abc.ABC):
    """A search strategy: proposes configurations, learns from outcomes, never writes records."""

    backend: str = ""

    @abc.abstractmethod
    def ask(self) -> Proposal | None:
        """Next proposal, or None when the strategy has nothing more to propose."""

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        """Learn from an outcome (strategies that read the study storage need nothing here)."""

    def close(self) -> None:
        """Release resources (threads)."""


def study_sampler(backend: str, sampler: str, seed: int, multi_objective: bool, workers: int):
    """The optuna sampler a study must be opened with for this strategy (None: proposals carry params)."""
    if backend == "optuna":
        from hand_nas.search.optuna_strategy import make_sampler

        return make_sampler(sampler, seed, multi_objective, workers)
    return None


def make_strategy(backend: str, sampler: str, space, store, seed: int = 0, workers: int = 1,
                  max_trials: int = 100) -> Strategy:
    """The registered strategy for (backend, sampler) over ``space``; ``store`` is read, never written."""
    sampler = resolve_sampler(backend, sampler)
    if backend == "optuna":
        from hand_nas.search.optuna_strategy import OptunaStrategy

        return OptunaStrategy(space, store)
    from hand_nas.search.nni_strategy import NniStrategy

    return NniStrategy(space, sampler, seed, workers, max_trials)
