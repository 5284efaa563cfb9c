"""NNI 3.0 strategy: NNI's multi-trial strategies (regularized evolution, random) over the same space.

NNI strategies pull: they ask an ``ExecutionEngine`` for idle workers and submit frozen models.
hand-nas runs the strategy in a thread against ``QueueEngine``, an engine that hands each
submitted model to the search runner as a ``Proposal`` and feeds outcomes back as NNI events. So
NNI needs neither its manager nor its web server, and its trials are created, run and recorded by
the same runner and storage as optuna's (reports and dashboards treat both backends alike).

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
from hand_nas.search.records import PENALTY_MM
from hand_nas.search.space import SearchSpace
from hand_nas.search.strategy import SAMPLERS, Outcome, Proposal, Strategy


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


class NniStrategy(Strategy):
    backend = "nni"

    def __init__(self, space: SearchSpace, strategy: str = "evolution", seed: int = 0, workers: int = 1,
                 max_trials: int = 100) -> None:
        import logging

        if strategy not in SAMPLERS["nni"]:
            raise HandNasError(f"NNI strategy {strategy!r}: expected one of {SAMPLERS['nni']}")
        from nni.nas.strategy import Random, RegularizedEvolution

        # NNI configures its loggers on import; quiet them afterwards (the runner shows progress).
        for name in ("nni", "nni.nas", "nni.nas.strategy", "nni.nas.strategy.evolution", "nni.nas.strategy.bruteforce"):
            logging.getLogger(name).setLevel(logging.WARNING)

        self.space = space
        self.values = _choices(space)
        self.engine, self.model_space = _engine_and_space(space, workers, max_trials)
        if strategy == "evolution":
            pop = max(4, min(10, max_trials // 2))
            self.strategy = RegularizedEvolution(population_size=pop, sample_size=max(2, pop // 2), seed=seed, dedup=True)
        else:
            self.strategy = Random(dedup=True, seed=seed)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="nni-strategy")
        self._thread.start()

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
        return Proposal({k: self.values[k][i] for k, i in model.sample.items()}, handle=model)

    def tell(self, proposal: Proposal, outcome: Outcome) -> None:
        # NNI maximises: -MPJPE; rejected and pruned configurations get the penalty, failures no metric.
        if outcome.state in ("complete", "infeasible"):
            metric = -float(outcome.values[0])
        else:
            metric = -PENALTY_MM if outcome.state == "pruned" else None
        self.engine.outcomes.put((proposal.handle, metric, outcome.state != "failed"))

    def close(self) -> None:
        self.engine.stopped = True
        self._thread.join(timeout=5)
