"""The interface every search strategy implements (ask -> proposal, tell(outcome)), and the pairs it is offered in.

A strategy only proposes configurations and learns from outcomes, the way optuna's samplers never
write to the storage themselves: the runner creates, heart-beats and finishes every trial through
``hand_nas.search.storage.StudyStore``. Backends are adapters of outside libraries (optuna's samplers, NNI's
strategies) to this interface, registered in ``hand_nas.search.backends``; ``tests/test_search_backends.py``
runs every (backend, sampler) pair of ``SAMPLERS`` through the same contract.
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
        params: the sampled values, keyed by the space's parameter labels (decoded); None leaves
            them to the study's sampler (``backends.study_sampler``: an optuna strategy's), which samples them
            as the runner creates the trial, and the runner fills them in.
        number: the study's trial number, set by the runner once it created the trial.
        handle: the strategy's own token for this proposal (an NNI model, ...).
    """

    params: dict | None = None
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
        """Learn from an outcome (an optuna sampler reads it from the study: nothing here)."""

    def close(self) -> None:
        """Release resources (threads)."""

