"""NNI 3.0 backend: NNI's multi-trial strategies (regularized evolution, random) over the same space.

NNI strategies pull: they ask an ``ExecutionEngine`` for idle workers and submit frozen models.
hand-nas runs the strategy in a thread against ``QueueEngine``, an engine that hands each
submitted model to the search runner as a ``Proposal`` and feeds outcomes back as NNI events. So
NNI needs neither its manager nor its web server, its trials run on the same local or Ray runner
as optuna's, and each finished trial is also written into the optuna study storage (with the same
user attributes and constraint), so reports and dashboards treat both backends alike.

NNI maximises its metric: hand-nas reports -MPJPE (rejected configurations get -1000). Integer
ranges become choices; float ranges are discretised to 8 values. A resumed NNI search keeps the
finished trials in the study but starts a new population (NNI's strategy state is not restored).
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np

from hand_nas.errors import HandNasError
from hand_nas.search.backend import Backend, Outcome, Proposal
from hand_nas.search.optuna_backend import CONSTRAINT, PENALTY_MM, finished_count, open_study
from hand_nas.search.space import SearchSpace, encode

STRATEGIES = ("evolution", "random")


def _choices(space: SearchSpace) -> dict[str, list]:
    out = {}
    for p in space.all_params():
        if p.kind in ("choices", "scale"):
            out[p.label] = list(p.values)
        elif p.kind == "int":
            out[p.label] = list(range(int(p.low), int(p.high) + 1))
        else:
            vals = np.geomspace(p.low, p.high, 8) if p.log else np.linspace(p.low, p.high, 8)
            out[p.label] = [float(v) for v in vals]
    return out


def _engine_and_space(space: SearchSpace, workers: int, budget: int):
    import nni
    from nni.mutable import MutableDict
    from nni.nas.execution import ExecutionEngine
    from nni.nas.execution.event import FinalMetricEvent, TrainingEndEvent
    from nni.nas.space import ExecutableModelSpace, ModelStatus

    class DictSpace(ExecutableModelSpace):
        """A model space that is just named choices; a frozen sample is the parameter dict."""

        def __init__(self, mutables: MutableDict) -> None:
            super().__init__()
            self.mutables = mutables
            self.sample = None

        def freeze(self, sample):
            self.validate(sample)
            model = DictSpace(self.mutables)
            model.status = ModelStatus.Frozen
            model.sample = dict(sample)
            return model

        def check_contains(self, sample):
            return self.mutables.check_contains(sample)

        def leaf_mutables(self, is_leaf):
            yield from self.mutables.leaf_mutables(is_leaf)

        def executable_model(self):
            return self.sample

    class QueueEngine(ExecutionEngine):
        def __init__(self) -> None:
            super().__init__()
            self.proposals: queue.Queue = queue.Queue()
            self.outcomes: queue.Queue = queue.Queue()
            self.running: list = []
            self.history: list = []
            self.stopped = False

        def submit_models(self, *models) -> None:
            for m in models:
                m.status = ModelStatus.Training
                self.running.append(m)
                self.history.append(m)
                self.proposals.put(m)

        def _drain(self) -> None:
            while True:
                try:
                    model, metric, ok = self.outcomes.get_nowait()
                except queue.Empty:
                    return
                if metric is not None:
                    self.dispatch_model_event(FinalMetricEvent(model, metric))
                self.dispatch_model_event(TrainingEndEvent(model, ModelStatus.Trained if ok else ModelStatus.Failed))
                if model in self.running:
                    self.running.remove(model)

        def idle_worker_available(self) -> bool:
            self._drain()
            return len(self.running) < workers

        def budget_available(self) -> bool:
            return not self.stopped and len(self.history) < budget

        def wait_models(self, *models) -> None:
            while not self.stopped:
                self._drain()
                pending = [m for m in (models or self.running) if m in self.running]
                if not pending:
                    return
                time.sleep(0.05)

        def list_models(self, status=None):
            return [m for m in self.history if status is None or m.status == status]

    mutables = MutableDict({k: nni.choice(k, list(range(len(v)))) for k, v in _choices(space).items()})
    return QueueEngine(), DictSpace(mutables)


class NniBackend(Backend):
    name = "nni"

    def __init__(self, space: SearchSpace, study_name: str, storage_url: str, strategy: str = "evolution",
                 seed: int = 0, workers: int = 1, max_trials: int = 100) -> None:
        import logging

        import optuna

        if strategy not in STRATEGIES:
            raise HandNasError(f"NNI strategy {strategy!r}: expected one of {STRATEGIES}")
        from nni.nas.strategy import Random, RegularizedEvolution

        # NNI configures its loggers on import; quiet them afterwards (the runner shows progress).
        for name in ("nni", "nni.nas", "nni.nas.strategy", "nni.nas.strategy.evolution", "nni.nas.strategy.bruteforce"):
            logging.getLogger(name).setLevel(logging.WARNING)

        self.space = space
        self.values = _choices(space)
        self.study = open_study(study_name, storage_url, space, sampler=optuna.samplers.RandomSampler(seed=seed))
        if self.study.user_attrs.get("sampler") is None:
            self.study.set_user_attr("sampler", f"nni-{strategy}")
            self.study.set_user_attr("space", space.source)
            self.study.set_user_attr("objectives", list(space.objectives))
            self.study.set_user_attr("budget_gmacs", space.budget_gmacs)
        self.engine, self.model_space = _engine_and_space(space, workers, max_trials)
        if strategy == "evolution":
            pop = max(4, min(10, max_trials // 2))
            self.strategy = RegularizedEvolution(population_size=pop, sample_size=max(2, pop // 2), seed=seed, dedup=True)
        else:
            self.strategy = Random(dedup=True, seed=seed)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="nni-strategy")
        self._thread.start()
        self._next_number = len(self.study.trials)

    def _run(self) -> None:
        try:
            self.strategy(self.model_space, self.engine)
        except BaseException as exc:  # surfaced by ask()
            self._error = exc

    def ask(self) -> Proposal | None:
        while True:
            try:
                model = self.engine.proposals.get(timeout=0.2)
                break
            except queue.Empty:
                if self._error is not None:
                    raise HandNasError(f"NNI strategy failed: {self._error}")
                if not self._thread.is_alive():
                    return None
        params = {k: self.values[k][i] for k, i in model.sample.items()}
        number = self._next_number
        self._next_number += 1
        # optuna numbers NNI's trials when they are added (in completion order), so checkpoints
        # are named by NNI's own submission order instead.
        return Proposal(number, params, handle=model, tag=f"nni_{number:04d}")

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        import optuna
        from optuna.trial import TrialState

        ok = outcome.state in ("complete", "infeasible")
        metric = -float(outcome.values[0]) if ok else (-PENALTY_MM if outcome.state == "pruned" else None)
        self.engine.outcomes.put((proposal.handle, metric, outcome.state != "failed"))
        state = {"complete": TrialState.COMPLETE, "infeasible": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                 "failed": TrialState.FAIL}[outcome.state]
        params = {k: encode(v) for k, v in proposal.params.items()}
        dists = self.space.distributions()
        attrs = dict(outcome.attrs, backend=self.name)
        trial = optuna.trial.create_trial(
            params=params, distributions=dists, values=list(outcome.values) if ok else None, state=state,
            user_attrs=attrs, system_attrs={"constraints": [float(outcome.constraint)],
                                            f"constraints:{CONSTRAINT}": float(outcome.constraint)},
            intermediate_values={s: v for s, v in outcome.intermediate})
        self.study.add_trial(trial)

    def finished_count(self) -> int:
        return finished_count(self.study)

    def close(self) -> None:
        self.engine.stopped = True
        self._thread.join(timeout=5)
