"""``StudyStore``: one study as one search driver opens it; every trial is created, beaten for and ended here.

Every backend's trials land in one shape: an optuna study whose trials carry a ``TrialRecord`` in their
user attributes (one key per field), the budget constraint both where optuna 5 keeps it
(``Trial.set_constraint``) and where optuna-dashboard 0.21 reads it (the ``constraints`` system
attribute), and the proxy's held-out MPJPE as intermediate values. Strategies never write here: the
runner creates each trial (``ask``) with the parameters a strategy proposed, or with what the study's
sampler (an optuna strategy's) samples, and ends it with its record (``finish``).
"""
from __future__ import annotations

import time
import warnings

from hand_nas.errors import HandNasError
from hand_nas.search.records import TrialRecord
from hand_nas.search.space import SearchSpace, decode, encode
from hand_nas.search.storage.heartbeat import Heartbeat, check_heartbeat, stale_for
from hand_nas.search.storage.reporter import Reporter
from hand_nas.search.storage.studies import trial_record
from hand_nas.search.storage.study_records import StudyMeta, claim_meta
from hand_nas.search.storage.urls import creation_race, open_storage, root_cause, where

CONSTRAINT = "gmacs_budget"


def distributions(space: SearchSpace) -> dict:
    """The optuna distribution of every parameter of a space, in its order (lists enter categoricals as JSON)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for p in space.all_params():
        if p.kind in ("choices", "scale"):
            out[p.label] = CategoricalDistribution([encode(v) for v in p.values])
        elif p.kind == "int":
            out[p.label] = IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            out[p.label] = FloatDistribution(p.low, p.high, log=p.log)
    return out


class StudyStore:
    """One study, opened by one search driver.

    Args:
        name, url: the study and its storage URL.
        space: fixes the number of objectives and the parameters' distributions.
        sampler: the optuna sampler of an optuna strategy (None: trials only take given parameters).
        pruner: early stopping rule (a ``make_pruner`` spec); multi-objective studies prune only with 'noise'.
        heartbeat_s: seconds between heartbeats of this driver's running trials.
    """

    def __init__(self, name: str, url: str, space: SearchSpace, sampler=None, pruner="none",
                 heartbeat_s: float = 30.0) -> None:
        import optuna

        from hand_nas.search.optuna_samplers import GivenSampler
        from hand_nas.search.pruning import make_pruner, pruner_name

        self.heartbeat_s = check_heartbeat(heartbeat_s, "heartbeat_s")  # before anything is opened
        self.name, self.url, self.space = name, url, space
        self.pruner = "none" if space.multi_objective and pruner_name(pruner) != "noise" else pruner
        self.storage = open_storage(url)
        self.distributions = distributions(space)
        self._sampler = GivenSampler(sampler or optuna.samplers.RandomSampler())
        directions = ["minimize"] * len(space.objectives)
        for attempt in range(5):
            try:
                self.study = optuna.create_study(study_name=name, storage=self.storage, directions=directions,
                                                 sampler=self._sampler, pruner=make_pruner(self.pruner),
                                                 load_if_exists=True)
                break
            except Exception as exc:  # a concurrent driver created it between our check and insert
                if attempt == 4 or not creation_race(root_cause(exc)):
                    raise HandNasError(f"storage {where(url)}: {root_cause(exc)}") from None
                time.sleep(0.2 * (attempt + 1))
        if len(self.study.directions) != len(directions):
            raise HandNasError(f"study {name!r} has {len(self.study.directions)} objective(s); the space "
                               f"{space.source} has {len(directions)} ({', '.join(space.objectives)})")
        self._study_id = self.storage.get_study_id_from_name(name)
        self._heart = Heartbeat(self.storage, self._trial_id, self.heartbeat_s)
        self._live = self._heart.live  # number -> optuna trial, for every trial this driver runs

    def claim(self, meta: StudyMeta) -> None:
        """Write the study's meta on first use; refuse a run whose backend or sampler differ (``claim_meta``)."""
        claim_meta(self.study, meta)

    # --- trials ---------------------------------------------------------------------------------

    def ask(self, params: dict | None = None):
        """Create a RUNNING trial and start its heartbeat; returns the optuna trial.

        With ``params`` (a strategy's own choice, decoded values) the trial takes exactly those; without,
        the study's sampler samples every parameter of the space, in the space's order.
        """
        if params is not None:
            self._sampler.given = {k: encode(v) for k, v in params.items()}
            try:
                trial = self.study.ask(fixed_distributions={k: self.distributions[k] for k in params})
            finally:
                self._sampler.given = None
        else:
            trial = self.study.ask(fixed_distributions=self.distributions)
        self._heart.start(trial.number, trial)
        return trial

    def params_of(self, trial) -> dict:
        """A trial's parameters as the space reads them (decoded), in the space's order."""
        return {label: decode(trial.params[label]) for label in self.distributions if label in trial.params}

    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    def finish(self, record: TrialRecord, values=None) -> None:
        """Store a trial's record and end it in the state the record says (its heartbeat stops)."""
        from optuna.trial import TrialState

        trial = self._heart.stop(record.number)
        if trial is None:
            raise HandNasError(f"study {self.name!r}: trial {record.number} is not running in this driver")
        tid = self._trial_id(record.number)
        if self.storage.get_trial(tid).state.is_finished():
            # Another driver took it for dead (this driver's heartbeat stalled past the stale limit) and
            # failed it; its record stays as that driver wrote it, and this driver goes on.
            warnings.warn(f"study {self.name!r}: trial {record.number} was already ended by another driver; "
                          f"its result ({record.state}) is not stored", RuntimeWarning, stacklevel=2)
            return
        for key, value in record.to_attrs().items():
            trial.set_user_attr(key, value)
        violation = record.cost.violation if record.cost else 0.0
        trial.set_constraint(CONSTRAINT, float(violation))
        self.storage.set_trial_system_attr(tid, "constraints", [float(violation)])  # optuna-dashboard 0.21
        for h in record.history:
            if h["step"] > 0:
                self.storage.set_trial_intermediate_value(tid, h["step"], float(h["mpjpe_mm"]))
        if record.state in ("complete", "infeasible"):
            self.study.tell(trial, list(values), skip_if_finished=True)
        else:
            state = TrialState.PRUNED if record.state == "pruned" else TrialState.FAIL
            self.study.tell(trial, state=state, skip_if_finished=True)

    def fail_stale(self) -> int:
        """Mark RUNNING trials whose driver stopped beating as failed; returns how many."""
        from optuna.trial import TrialState

        now, stale = time.time(), []
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not self._heart.running(t.number) and (age := stale_for(t, now, self.heartbeat_s)) is not None:
                stale.append((t, age))
        for t, age in stale:
            tid = self._trial_id(t.number)
            self.storage.set_trial_user_attr(tid, "state", "failed")
            self.storage.set_trial_user_attr(tid, "error", f"interrupted: no heartbeat for {age:.0f} s "
                                                           f"(its search process was killed)")
            self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        return len(stale)

    def finished_count(self) -> int:
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                  TrialState.FAIL)))

    def trial_count(self) -> int:
        """Trials the study holds, every driver's, running ones included."""
        return len(self.study.get_trials(deepcopy=False))

    def records(self) -> list[TrialRecord]:
        return [trial_record(t) for t in self.study.get_trials(deepcopy=False)]

    def reporter(self, number: int, cost: list | None = None) -> Reporter | None:
        """A picklable ``fn(step, mpjpe_mm) -> stop?`` for the worker training trial ``number`` (``Reporter``);
        None when the study prunes nothing. ``cost``: its costs known before training ([gmacs, latency_ms])."""
        from hand_nas.search.pruning import pruner_name

        if pruner_name(self.pruner) == "none":
            return None
        return Reporter(self.url, self.name, number, self.pruner, cost)

    def close(self) -> None:
        self._heart.close()
