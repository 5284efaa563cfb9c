"""Trial records: the one typed value every search trial becomes (pure data; IO is in ``storage``).

A ``TrialRecord`` holds everything needed to rebuild, compare and compress a trial without the
search that produced it: the model config, its cost (GMACs in the fvcore convention: one fused
multiply-add = one flop, 3x256x256, batch 1), held-out metrics (mm, IntagHand protocol), the proxy
training it got, its seed and data, its state and checkpoint, the strategy that proposed it and
the node it ran on. ``to_attrs`` / ``from_attrs`` are its storage form (one key per field, so a
dashboard shows them readably). ``select_trial`` picks the trial a command names ('best' or a number);
its one look outside the records is whether a checkpoint it must hand on is on disk.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from hand_nas.config import arch_key
from hand_nas.errors import HandNasError
from hand_nas.search.pareto import pareto_indices

# Objective value told to samplers for configurations the gate rejects (never trained), and for
# latency when a trained trial was not timed: far above any real value, so samplers avoid them.
PENALTY_MM = 1000.0
PENALTY_LATENCY_MS = 1e4
STATES = ("complete", "infeasible", "pruned", "failed", "running")
# Objective names of a space -> the record attribute each one reads (all minimised).
OBJECTIVE_KEYS = {"mpjpe": "mpjpe_mm", "gmacs": "gmacs", "latency": "latency_ms"}


@dataclass(frozen=True)
class Cost:
    """A configuration's cost before training, from the budget gate."""

    gmacs_total: float
    gmacs_image: float
    gmacs_pose: float
    budget_gmacs: float
    input_size: int = 256
    convention: str = "fvcore MACs"

    @property
    def feasible(self) -> bool:
        return self.gmacs_total <= self.budget_gmacs

    @property
    def violation(self) -> float:
        """Constraint value for samplers: <= 0 means within budget."""
        return self.gmacs_total - self.budget_gmacs


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a study.

    Attributes:
        number: the study's trial number (also names the checkpoint folder ``trial_NNNN``).
        state: one of ``STATES``; 'infeasible' trials were rejected by the gate and never trained.
        backend: the strategy that proposed it ('optuna' or 'nni').
        params: the sampled values, keyed by the space's parameter labels.
        config: the full ``ModelCfg`` dict (None if the params did not build a model).
        cost: the gate's ``Cost`` (None if no model was built).
        metrics: final held-out metrics {'mpjpe_mm', 'mpvpe_mm', ...} (trained trials).
        init_metrics: held-out metrics before training.
        proxy: the ``TrainCfg`` dict the trial trained under; seed: its training seed.
        data: the sample folder it trained and was scored on (under ``--storage-path`` when given).
        checkpoint: its checkpoint folder as stored: an absolute path or a ``--storage-path`` URI; or None.
        node: the host (and Ray node id) that ran it.
        error: why it failed or was rejected.
        seconds, steps: wall time and training steps; latency_ms: measured latency, if any.
        history: [{'step', 'mpjpe_mm', 'mpvpe_mm'}] held-out evaluations during training.
        values: the objective values told to the sampler.
        evaluator: how it was scored when not by training: {'name': 'supernet', 'supernet': folder,
            'sha256': of its weights, 'eval_images', 'calib_batches'}.
    """

    number: int
    state: str
    backend: str = ""
    params: dict = field(default_factory=dict)
    config: dict | None = None
    cost: Cost | None = None
    metrics: dict | None = None
    init_metrics: dict | None = None
    proxy: dict | None = None
    seed: int | None = None
    data: str | None = None
    checkpoint: str | None = None
    node: str | None = None
    error: str | None = None
    seconds: float | None = None
    steps: int | None = None
    latency_ms: float | None = None
    history: list = field(default_factory=list)
    values: tuple | None = None
    evaluator: dict | None = None

    @property
    def mpjpe_mm(self) -> float | None:
        return (self.metrics or {}).get("mpjpe_mm")

    @property
    def mpvpe_mm(self) -> float | None:
        return (self.metrics or {}).get("mpvpe_mm")

    @property
    def gmacs(self) -> float | None:
        return self.cost.gmacs_total if self.cost else None

    @property
    def gmacs_image(self) -> float | None:
        return self.cost.gmacs_image if self.cost else None

    @property
    def gmacs_pose(self) -> float | None:
        return self.cost.gmacs_pose if self.cost else None

    @property
    def feasible(self) -> bool | None:
        return self.cost.feasible if self.cost else None

    @property
    def trained(self) -> bool:
        """Completed, within budget, with a finite held-out MPJPE: a point of the front."""
        m = self.mpjpe_mm
        return self.state == "complete" and bool(self.feasible) and m is not None and math.isfinite(m)

    def objective(self, name: str) -> float | None:
        """The value of a space objective ('mpjpe', 'gmacs', 'latency') for this trial."""
        return getattr(self, OBJECTIVE_KEYS[name])

    def to_attrs(self) -> dict:
        """The storage form: JSON-ready, one key per field (``number`` and ``values`` are the storage's own)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("number", "values")}
        out["cost"] = asdict(self.cost) if self.cost else None
        return {k: v for k, v in out.items() if v is not None and v != [] and v != {}}

    @classmethod
    def from_attrs(cls, number: int, attrs: dict, values=None, running: bool = False) -> TrialRecord:
        """Rebuild a record from its storage form (unknown keys, from newer versions, are ignored)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in attrs.items() if k in known and k not in ("number", "values")}
        if kw.get("cost") is not None:
            kw["cost"] = Cost(**kw["cost"])
        state = "running" if running else kw.pop("state", None) or "failed"
        kw.pop("state", None)
        return cls(number=number, state=state, values=tuple(values) if values else None, **kw)

    def row(self) -> dict:
        """A flat dict for tables and JSON files."""
        return {"number": self.number, "state": self.state, "backend": self.backend, "mpjpe_mm": self.mpjpe_mm,
                "mpvpe_mm": self.mpvpe_mm, "gmacs": self.gmacs, "gmacs_image": self.gmacs_image,
                "gmacs_pose": self.gmacs_pose, "feasible": self.feasible, "latency_ms": self.latency_ms,
                "seconds": self.seconds, "checkpoint": self.checkpoint, "node": self.node, "error": self.error,
                "params": self.params, "values": list(self.values) if self.values else None}


def trained(records: list[TrialRecord]) -> list[TrialRecord]:
    """Completed feasible records with a finite MPJPE."""
    return [r for r in records if r.trained]


def first_of_each_architecture(records: list[TrialRecord]) -> list[TrialRecord]:
    """``records`` with each architecture once, at its lowest-numbered trial, in the given order: a table of a front
    where a sampler proposed an architecture again (``report.page.front_markdown`` groups such trials instead)."""
    first: dict[str, TrialRecord] = {}
    for r in sorted(records, key=lambda r: r.number):
        first.setdefault(arch_key(r.config), r)
    keep = {id(r) for r in first.values()}
    return [r for r in records if id(r) in keep]


def pareto_front(records: list[TrialRecord], objectives=("mpjpe", "gmacs")) -> list[TrialRecord]:
    """Non-dominated trained records over the given objectives (all minimised), by the first one."""
    pts = [r for r in trained(records) if all(r.objective(o) is not None for o in objectives)]
    return [pts[i] for i in pareto_indices([tuple(r.objective(o) for o in objectives) for r in pts])]


def best_trained(records: list[TrialRecord]) -> TrialRecord | None:
    """The trained record with the lowest held-out MPJPE."""
    pts = trained(records)
    return min(pts, key=lambda r: r.mpjpe_mm) if pts else None


def select_trial(records: list[TrialRecord], which: str | int = "best", study: str = "",
                 need_checkpoint: bool = False) -> TrialRecord:
    """'best' (lowest held-out MPJPE among trained trials) or a trial number; with ``need_checkpoint``, the
    trial's checkpoint must be a folder on disk or a ``--storage-path`` URI (fetched by whoever reads it)."""
    if which == "best":
        rec = best_trained(records)
        if rec is None:
            raise HandNasError(f"study {study!r}: no feasible completed trial")
    else:
        if not str(which).isdigit():
            raise HandNasError(f"--trial {which!r}: expected 'best' or a trial number")
        rec = next((r for r in records if r.number == int(which)), None)
        if rec is None:
            raise HandNasError(f"study {study!r}: no trial {which} (trials 0..{len(records) - 1})")
    if need_checkpoint:
        from pathlib import Path

        from hand_nas.search.trial_storage import is_uri

        if not rec.checkpoint or (not is_uri(rec.checkpoint) and not Path(rec.checkpoint).is_dir()):
            raise HandNasError(f"study {study!r} trial {rec.number}: no checkpoint on disk ({rec.checkpoint})")
    return rec


def format_table(records: list[TrialRecord]) -> str:
    """A fixed-width table (GMACs in the fvcore convention; MPJPE/MPVPE held-out, mm)."""
    head = (f"{'trial':>5}  {'state':<10} {'MPJPE mm':>9} {'MPVPE mm':>9} {'GMACs':>8} {'image':>7} {'pose':>7} "
            f"{'lat ms':>7}  backend")
    lines = [head, "-" * len(head)]
    fmt = lambda v, spec: format(v, spec) if isinstance(v, (int, float)) else "-"  # noqa: E731
    for r in records:
        lines.append(f"{r.number:>5}  {r.state:<10} {fmt(r.mpjpe_mm, '9.2f')} {fmt(r.mpvpe_mm, '9.2f')} "
                     f"{fmt(r.gmacs, '8.4f')} {fmt(r.gmacs_image, '7.4f')} {fmt(r.gmacs_pose, '7.4f')} "
                     f"{fmt(r.latency_ms, '7.2f')}  {r.backend}")
    return "\n".join(lines)
