"""The worker side of early stopping: a trial's held-out MPJPE into the study, and the pruner's verdict."""
from __future__ import annotations

from hand_nas.search.storage.urls import open_storage


class Reporter:
    """A picklable ``fn(step, mpjpe_mm) -> stop?`` for the worker training trial ``number``.

    Writes each value as the trial's intermediate value and asks the study's pruner (a ``make_pruner``
    spec); the storage is opened on the first call, in the worker. ``cost``: the trial's costs known
    before training ([gmacs, latency_ms or None]), stored for the multi-objective pruner to judge dominance.
    """

    def __init__(self, url: str, study: str, number: int, pruner, cost: list | None = None) -> None:
        self.url, self.study_name, self.number, self.pruner, self.cost = url, study, number, pruner, cost
        self._opened = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_opened"} | {"_opened": None}

    def __call__(self, step: int, value: float) -> bool:
        import optuna

        from hand_nas.search.pruning import COST_ATTR, make_pruner

        if self._opened is None:
            storage = open_storage(self.url, create=False)
            study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=make_pruner(self.pruner))
            tid = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(self.study_name),
                                                                  self.number)
            self._opened = (storage, study, tid)
            if self.cost is not None:
                storage.set_trial_user_attr(tid, COST_ATTR, list(self.cost))
        storage, study, tid = self._opened
        storage.set_trial_intermediate_value(tid, step, float(value))
        return bool(study.pruner.prune(study, storage.get_trial(tid)))
