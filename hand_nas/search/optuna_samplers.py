"""Adapters between optuna's samplers and hand-nas studies (public optuna API only).

``StudyStore`` opens every study with ``GivenSampler(base)``: a trial takes the parameters a strategy
already chose (NNI's), or else what ``base`` (an optuna strategy's sampler) samples; the base sampler
sees a multi-objective study through ``first_objective_view``. Nothing here writes to a storage.
"""
from __future__ import annotations

import optuna


class FirstObjectiveStudy(optuna.Study):
    """A study whose ``direction`` is its first objective's (see ``first_objective_view``)."""

    @property
    def direction(self):
        return self.directions[0]


def first_objective_view(study: optuna.Study) -> optuna.Study:
    """The study as a sampler should see it: in a multi-objective study, ``direction`` is MPJPE's.

    Early stopping judges MPJPE, the first objective and the only trained one (GMACs and latency are known
    before training), so a pruned trial's intermediate values are MPJPE. optuna's pruners are single-objective
    (optuna#5260), and TPE ranks pruned trials through ``study.direction``, which a multi-objective study
    refuses (RuntimeError): this view answers with the first objective's direction, so TPE ranks pruned
    trials by the step they reached, then their last MPJPE, as it does in a single-objective study.
    """
    if len(study.directions) <= 1:
        return study
    # The same study object (storage, trial cache, thread-local state), one property answered differently:
    # a subclass instance sharing its __dict__, so the study's own methods see the view's ``direction`` too.
    view = object.__new__(FirstObjectiveStudy)
    view.__dict__ = study.__dict__
    return view


class GivenSampler(optuna.samplers.BaseSampler):
    """Returns the parameters in ``given`` while it is set, else defers to ``base``.

    Strategies outside optuna (NNI) propose whole parameter dicts; the store creates their trials through
    ``study.ask`` with those values, so every backend's trials are created, numbered, heart-beaten and
    finished the same way.
    """

    def __init__(self, base: optuna.samplers.BaseSampler) -> None:
        self.base = base
        self.given: dict | None = None

    def infer_relative_search_space(self, study, trial):
        if self.given is not None:
            return {}
        return self.base.infer_relative_search_space(first_objective_view(study), trial)

    def sample_relative(self, study, trial, search_space):
        if self.given is not None:
            return {}
        return self.base.sample_relative(first_objective_view(study), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        if self.given is not None:
            return self.given[param_name]
        return self.base.sample_independent(first_objective_view(study), trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
