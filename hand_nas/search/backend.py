"""The interface every search backend implements (ask/tell), and what flows through it.

A backend proposes parameter dicts (``ask``) and learns from outcomes (``tell``); it also owns
the study storage, so every backend's trials land in the same records (an optuna RDB study).
Runners (local, Ray) drive any backend the same way; ``tests/test_search_backends.py`` holds the
shared contract.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field


@dataclass
class Proposal:
    """A configuration to evaluate. ``number`` is the study's trial number."""

    number: int
    params: dict
    handle: object = None
    tag: str = ""

    @property
    def name(self) -> str:
        """Folder name of the trial's checkpoint."""
        return self.tag or f"trial_{self.number:04d}"


@dataclass
class Outcome:
    """What happened to a proposal.

    Attributes:
        state: 'complete', 'infeasible' (rejected by the gate, not trained), 'pruned' or 'failed'.
        values: objective values (mpjpe first) for complete/infeasible trials.
        constraint: gmacs - budget (<= 0 feasible).
        attrs: the record stored on the trial (config, cost, metrics, proxy, seed, checkpoint, error).
        intermediate: [(step, mpjpe_mm)] seen during training.
    """

    state: str
    values: tuple = ()
    constraint: float = 0.0
    attrs: dict = field(default_factory=dict)
    intermediate: list = field(default_factory=list)


class Backend(abc.ABC):
    """A search strategy plus its storage."""

    name: str = ""

    @abc.abstractmethod
    def ask(self) -> Proposal | None:
        """Next proposal, or None when the strategy has nothing more to propose."""

    @abc.abstractmethod
    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        """Record an outcome (in the strategy and in the study storage)."""

    @abc.abstractmethod
    def finished_count(self) -> int:
        """Trials in a terminal state in the study (all backends and earlier runs included)."""

    def reporter(self, proposal: Proposal):
        """A picklable ``fn(step, mpjpe) -> prune?`` for workers, or None (no early stopping)."""
        return None

    def recover(self) -> int:
        """Mark trials a killed run left RUNNING as failed; returns how many."""
        return 0

    def close(self) -> None:
        """Release resources (threads, connections)."""
