"""Optuna backend: TPE, NSGA-II or random search over a space, in any optuna storage.

* Single objective (``objectives: [mpjpe]``): MPJPE under the budget, with multi-fidelity early
  stopping (median pruner on the held-out MPJPE the proxy reports at each evaluation).
* Multi-objective (mpjpe, gmacs[, latency]): the Pareto front; optuna cannot prune these.
* The budget is a constraint (``Trial.set_constraint``, value gmacs - budget, <= 0 feasible), so
  ``best_trials`` are feasible and samplers learn from rejected configurations; optuna-dashboard
  0.21 reads only the older ``constraints`` system attribute, so it is written too.
* Resuming: the study keeps the sampler's name; re-running with the same study name rebuilds the
  same sampler (optuna does not store it), and refuses another one.
"""
from __future__ import annotations

from hand_nas.errors import HandNasError
from hand_nas.search.backend import Backend, Outcome, Proposal
from hand_nas.search.space import SearchSpace

SAMPLERS = ("tpe", "nsga2", "random")
PENALTY_MM = 1000.0  # objective value of configurations rejected by the gate (never trained)
CONSTRAINT = "gmacs_budget"


def make_storage(url: str):
    """An optuna storage for a URL; SQLite gets a long lock timeout (several writers on 2 cores)."""
    import optuna

    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})
    return optuna.storages.RDBStorage(url) if "://" in url else url


def make_sampler(name: str, seed: int, multi: bool, workers: int = 1):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4, constant_liar=workers > 1,
                                          multivariate=not multi)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise HandNasError(f"sampler {name!r}: expected one of {SAMPLERS}")


def make_pruner(name: str):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise HandNasError(f"pruner {name!r}: expected 'median' or 'none'")


def open_study(study_name: str, storage_url: str, space: SearchSpace, sampler=None, pruner=None, create: bool = True):
    """Create or load the study for a space (directions from its objectives)."""
    import optuna

    storage = make_storage(storage_url)
    directions = ["minimize"] * len(space.objectives)
    if create:
        study = optuna.create_study(study_name=study_name, storage=storage, directions=directions, sampler=sampler,
                                    pruner=pruner, load_if_exists=True)
    else:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
    if len(study.directions) != len(directions):
        raise HandNasError(f"study {study_name!r} has {len(study.directions)} objective(s); the space "
                           f"{space.source} has {len(directions)} ({', '.join(space.objectives)})")
    return study


def record_constraint(study, trial_id: int, value: float) -> None:
    """Mirror the constraint into the system attribute optuna-dashboard 0.21 reads."""
    study._storage.set_trial_system_attr(trial_id, "constraints", [float(value)])


class OptunaReporter:
    """Picklable intermediate-value reporter used inside workers (single objective only)."""

    def __init__(self, storage_url: str, study_name: str, trial_id: int, pruner: str) -> None:
        self.storage_url, self.study_name, self.trial_id, self.pruner = storage_url, study_name, trial_id, pruner
        self._trial = None

    def __call__(self, step: int, value: float) -> bool:
        import optuna

        if self._trial is None:
            study = optuna.load_study(study_name=self.study_name, storage=make_storage(self.storage_url),
                                      pruner=make_pruner(self.pruner))
            self._trial = optuna.trial.Trial(study, self.trial_id)
        self._trial.report(float(value), step)
        return self._trial.should_prune()


class OptunaBackend(Backend):
    name = "optuna"

    def __init__(self, space: SearchSpace, study_name: str, storage_url: str, sampler: str = "tpe",
                 pruner: str = "median", seed: int = 0, workers: int = 1) -> None:
        if sampler not in SAMPLERS:
            raise HandNasError(f"sampler {sampler!r}: expected one of {SAMPLERS}")
        self.space, self.study_name, self.storage_url = space, study_name, storage_url
        self.pruner_name = pruner if not space.multi_objective else "none"
        self.study = open_study(study_name, storage_url, space, make_sampler(sampler, seed, space.multi_objective, workers),
                                make_pruner(self.pruner_name))
        stored = self.study.user_attrs.get("sampler")
        if stored is not None and stored != sampler:
            raise HandNasError(f"study {study_name!r} was created with sampler {stored!r}; pass --sampler {stored} "
                               f"to resume it (optuna does not store samplers)")
        if stored is None:
            self.study.set_user_attr("sampler", sampler)
            self.study.set_user_attr("space", space.source)
            self.study.set_user_attr("objectives", list(space.objectives))
            self.study.set_user_attr("budget_gmacs", space.budget_gmacs)

    def ask(self) -> Proposal:
        trial = self.study.ask()
        params = self.space.suggest(trial)
        return Proposal(trial.number, params, handle=trial)

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        from optuna.trial import TrialState

        trial = proposal.handle
        for key, value in outcome.attrs.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("backend", self.name)
        trial.set_constraint(CONSTRAINT, float(outcome.constraint))
        record_constraint(self.study, trial._trial_id, outcome.constraint)
        if outcome.state in ("complete", "infeasible"):
            self.study.tell(trial, list(outcome.values))
        elif outcome.state == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    def reporter(self, proposal: Proposal):
        if self.space.multi_objective or self.pruner_name == "none":
            return None
        return OptunaReporter(self.storage_url, self.study_name, proposal.handle._trial_id, self.pruner_name)

    def finished_count(self) -> int:
        return finished_count(self.study)

    def recover(self) -> int:
        from optuna.trial import TrialState

        stale = [t for t in self.study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
        for t in stale:
            self.study._storage.set_trial_user_attr(t._trial_id, "error", "interrupted: the search process was killed")
            self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        return len(stale)


def finished_count(study) -> int:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state in done)
