"""What a study report shows, as plain data: trial points, Pareto front, best-so-far, hypervolume,
parameter importances, reference presets and (on InterHand2.6M only) the papers' published points.

Everything here is pure or reads the study storage (through ``hand_nas.search.storage``); the
figures (``report.figures``) and the page (``report.page``) only render these values. GMACs follow the fvcore convention (one fused
multiply-add = one flop, 3x256x256, batch 1); errors are held-out MPJPE/MPVPE in mm.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from hand_nas.search.pareto import hypervolume
from hand_nas.search.records import TrialRecord, pareto_front, trained

# Published (MPJPE mm, MPVPE mm, GFLOPs) on InterHand2.6M: LWA-HAND Table 1 and LAGCHand Table 1.
PUBLISHED = {
    "InterNet": (16.00, None, 19.49),
    "Two-Hand-Shape": (13.48, 13.95, 28.98),
    "IntagHand": (8.79, 9.03, 8.42),
    "LWA-HAND": (12.56, 12.37, 0.47),
    "LAGCHand": (21.89, 22.26, 0.81),
}
REFERENCE_PRESETS = ("lwa_hand", "lagc_hand")


@dataclass
class StudyData:
    """Attributes:
        records: every trial as a ``TrialRecord``.
        objectives: the study's objectives ('mpjpe', optionally 'gmacs', 'latency').
        budget_gmacs: the FLOPs budget of the space.
        data_source: 'synthetic', 'interhand2.6m', ... (the samples' meta.json 'source').
        proxy: the trials' TrainCfg dict.
        references: presets trained under the same proxy: {'name', 'gmacs', 'mpjpe_mm', 'mpvpe_mm'}.
        importances: {param: importance} (empty when the study cannot give them yet).
    """

    study: str
    storage: str
    records: list
    objectives: list
    budget_gmacs: float | None
    data: str | None
    data_source: str | None
    proxy: dict | None
    references: list = field(default_factory=list)
    importances: dict = field(default_factory=dict)
    importance_note: str = ""
    proxy_check: dict | None = None  # ``hand-nas proxy check --study``: rank correlation and seed noise
    latency_source: str = "torch eager, batch 1, after training"  # or the predictor's (``hand_nas.cost.predictor``)
    budget_latency_ms: float | None = None  # the space's latency budget, read on the predictor's runtime

    @property
    def published(self) -> list[dict]:
        """The papers' points, only when the trials were scored on InterHand2.6M (else not comparable)."""
        if self.data_source != "interhand2.6m":
            return []
        return [{"name": k, "mpjpe_mm": v[0], "mpvpe_mm": v[1], "gmacs": v[2]} for k, v in PUBLISHED.items()]

    @property
    def front_objectives(self) -> tuple[str, ...]:
        """The objectives the front is taken over: the study's own, or (MPJPE, GMACs) for single-objective
        studies (GMACs are known for every trial, so the trade-off is always there to show)."""
        return tuple(self.objectives) if len(self.objectives) > 1 else ("mpjpe", "gmacs")

    @property
    def front(self) -> list[TrialRecord]:
        return pareto_front(self.records, self.front_objectives)

    def front_of(self, *objectives: str) -> list[TrialRecord]:
        """The 2-D front a figure draws (MPJPE against its x axis): the study's own when that is the study's."""
        return self.front if objectives == self.front_objectives else pareto_front(self.records, objectives)

    @property
    def has_latency(self) -> bool:
        return any(r.latency_ms for r in self.records)


def best_trials(records: list[TrialRecord], n: int = 10) -> list[TrialRecord]:
    """The ``n`` lowest-MPJPE trials among those that reported one (complete or pruned, feasible or not), best first."""
    scored = [r for r in records if r.state in ("complete", "pruned") and r.mpjpe_mm is not None]
    return sorted(scored, key=lambda r: r.mpjpe_mm)[:n]


def best_so_far(records: list[TrialRecord]) -> list[tuple[int, float | None]]:
    """(trial number, best trained MPJPE up to and including it) for every trial number in order."""
    out, best = [], math.inf
    ok = {r.number for r in trained(records)}
    for r in sorted(records, key=lambda r: r.number):
        if r.number in ok:
            best = min(best, r.mpjpe_mm)
        out.append((r.number, best if math.isfinite(best) else None))
    return out


def hypervolume_history(records: list[TrialRecord], objectives=("mpjpe", "gmacs"), ref: tuple | None = None
                        ) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the trained points so far over ``objectives``); ``ref`` defaults
    to 1.1 x the worst trained value of each objective."""
    pts = [r for r in trained(records) if all(r.objective(o) is not None for o in objectives)]
    if not pts:
        return []
    if ref is None:
        ref = tuple(1.1 * max(r.objective(o) for r in pts) for o in objectives)
    ok = {r.number: tuple(r.objective(o) for o in objectives) for r in pts}
    seen, out = [], []
    for r in sorted(records, key=lambda r: r.number):
        if r.number in ok:
            seen.append(ok[r.number])
        out.append((r.number, hypervolume(seen, ref)))
    return out


def proxy_key(proxy: dict, data: str | None) -> str:
    # Machine-independent by construction: JSON of config values (Python's float repr is exact and portable).
    return hashlib.sha256(json.dumps([proxy, data], sort_keys=True).encode()).hexdigest()[:12]


def load_study_data(study_name: str, storage_url: str) -> StudyData:
    """Read a stored study (optuna- or nni-backed; both live in the same storage)."""
    from hand_nas.search import storage

    records = storage.read_records(study_name, storage_url)
    meta = storage.read_meta(study_name, storage_url)
    done = [r for r in records if r.proxy]
    proxy = done[-1].proxy if done else None
    data = done[-1].data if done else None
    sd = StudyData(study_name, storage_url, records, list(meta.objectives), meta.budget_gmacs,
                   data, _data_source(data), proxy)
    sd.importances, sd.importance_note = storage.param_importances(study_name, storage_url)
    key = proxy_key(proxy, data) if proxy else None
    sd.references = [r.to_dict() for r in storage.read_references(study_name, storage_url, key)]
    check = storage.read_proxy_check(study_name, storage_url)
    sd.proxy_check = check.to_dict() if check and proxy and check.proxy == proxy else None  # only for this proxy
    if meta.latency:
        cpu = meta.latency.cpu or {}
        sd.latency_source = f"{meta.latency.source}; {cpu.get('model', '?')} {', '.join(cpu.get('flags') or [])}"
        sd.budget_latency_ms = meta.latency.budget_ms
    return sd


def _data_source(data: str | None) -> str | None:
    from pathlib import Path

    if not data or not (Path(data) / "meta.json").is_file():
        return None
    try:
        return json.loads((Path(data) / "meta.json").read_text()).get("source")
    except (OSError, ValueError):
        return None
