"""What a study report shows, as plain data: trial points, Pareto front, best-so-far, hypervolume,
parameter importances, reference presets and (on InterHand2.6M only) the papers' published points.

Everything here is pure or reads the study storage; the figures (``report.figures``) and the page
(``report.html``) only render these values. GMACs follow the fvcore convention (one fused
multiply-add = one flop, 3x256x256, batch 1); errors are held-out MPJPE/MPVPE in mm.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from hand_nas.search.records import feasible_complete, pareto_front

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
        rows: every trial as ``records.trial_row`` dicts.
        objectives: the study's objectives ('mpjpe', optionally 'gmacs').
        budget_gmacs: the FLOPs budget of the space.
        data_source: 'synthetic', 'interhand2.6m', ... (the samples' meta.json 'source').
        proxy: the trials' TrainCfg dict.
        references: presets trained under the same proxy: {'name', 'gmacs', 'mpjpe_mm', 'mpvpe_mm'}.
        importances: {param: importance} (empty when the study cannot give them yet).
    """

    study: str
    storage: str
    rows: list
    objectives: list
    budget_gmacs: float | None
    data: str | None
    data_source: str | None
    proxy: dict | None
    references: list = field(default_factory=list)
    importances: dict = field(default_factory=dict)
    importance_note: str = ""

    @property
    def published(self) -> list[dict]:
        """The papers' points, only when the trials were scored on InterHand2.6M (else not comparable)."""
        if self.data_source != "interhand2.6m":
            return []
        return [{"name": k, "mpjpe_mm": v[0], "mpvpe_mm": v[1], "gmacs": v[2]} for k, v in PUBLISHED.items()]

    @property
    def front(self) -> list[dict]:
        return pareto_front(self.rows)

    @property
    def has_latency(self) -> bool:
        return any(r.get("latency_ms") for r in self.rows)


def best_so_far(rows: list[dict]) -> list[tuple[int, float]]:
    """(trial number, best feasible MPJPE up to and including it) for every trial number in order."""
    out, best = [], math.inf
    ok = {r["number"] for r in feasible_complete(rows)}
    for r in sorted(rows, key=lambda r: r["number"]):
        if r["number"] in ok:
            best = min(best, r["mpjpe_mm"])
        out.append((r["number"], best if math.isfinite(best) else None))
    return out


def hypervolume_2d(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (both coordinates minimised) inside the box bounded by ``ref``."""
    pts = sorted((p for p in points if p[0] < ref[0] and p[1] < ref[1]))
    area, y_prev = 0.0, ref[1]
    for x, y in pts:
        if y < y_prev:
            area += (ref[0] - x) * (y_prev - y)
            y_prev = y
    return area


def hypervolume_history(rows: list[dict], ref: tuple[float, float] | None = None) -> list[tuple[int, float]]:
    """(trial number, hypervolume of feasible (MPJPE mm, GMACs) points so far); ``ref`` defaults to
    (1.1 x the worst feasible MPJPE, 1.1 x the largest feasible GMACs)."""
    pts = feasible_complete(rows)
    if not pts:
        return []
    if ref is None:
        ref = (1.1 * max(r["mpjpe_mm"] for r in pts), 1.1 * max(r["gmacs"] for r in pts))
    ok = {r["number"]: (r["mpjpe_mm"], r["gmacs"]) for r in pts}
    seen, out = [], []
    for r in sorted(rows, key=lambda r: r["number"]):
        if r["number"] in ok:
            seen.append(ok[r["number"]])
        out.append((r["number"], hypervolume_2d(seen, ref)))
    return out


def proxy_key(proxy: dict, data: str | None) -> str:
    # Machine-independent by construction: JSON of config values (Python's float repr is exact and portable).
    return hashlib.sha256(json.dumps([proxy, data], sort_keys=True).encode()).hexdigest()[:12]


def load_study_data(study_name: str, storage_url: str) -> StudyData:
    """Read a stored study (optuna- or nni-backed; both live in the same optuna storage)."""
    import optuna

    from hand_nas.errors import HandNasError
    from hand_nas.search.optuna_backend import make_storage
    from hand_nas.search.records import trial_row

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=make_storage(storage_url))
    except KeyError:
        raise HandNasError(f"{storage_url}: no study named {study_name!r}") from None
    trials = study.get_trials(deepcopy=False)
    rows = [trial_row(t) for t in trials]
    attrs = study.user_attrs
    done = [t for t in trials if "proxy" in t.user_attrs]
    proxy = done[-1].user_attrs["proxy"] if done else None
    data = done[-1].user_attrs.get("data") if done else None
    sd = StudyData(study_name, storage_url, rows, attrs.get("objectives", ["mpjpe"]), attrs.get("budget_gmacs"),
                   data, _data_source(data), proxy)
    sd.importances, sd.importance_note = _importances(study)
    key = proxy_key(proxy, data) if proxy else None
    sd.references = [r for r in attrs.get("references", []) if r.get("proxy_key") == key]
    return sd


def _data_source(data: str | None) -> str | None:
    from pathlib import Path

    if not data or not (Path(data) / "meta.json").is_file():
        return None
    try:
        return json.loads((Path(data) / "meta.json").read_text()).get("source")
    except (OSError, ValueError):
        return None


def _importances(study) -> tuple[dict, str]:
    """Parameter importances for MPJPE (optuna's default evaluator) over the completed feasible trials."""
    import warnings

    import optuna

    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.values and t.values[0] < 1000]
    if len(done) < 4:
        return {}, f"{len(done)} completed feasible trials: importances need at least 4"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sub = optuna.create_study(directions=["minimize"])
            for t in done:
                sub.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                        values=[t.values[0]]))
            imp = optuna.importance.get_param_importances(sub)
        return {k: float(v) for k, v in imp.items()}, (f"optuna's default importance evaluator over {len(done)} "
                                                       "completed feasible trials (target: MPJPE)")
    except Exception as exc:  # optuna raises several types for degenerate studies
        return {}, f"importances unavailable: {exc}"


def add_references(sd: StudyData, names=REFERENCE_PRESETS, mano_dir=None, log=print) -> list[dict]:
    """Train each preset under the study's proxy on its data (once: results are kept in the study)."""
    import optuna

    from hand_nas.config import TrainCfg
    from hand_nas.cost.flops import model_cost
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model
    from hand_nas.search.optuna_backend import make_storage
    from hand_nas.train import train

    if sd.proxy is None or not sd.data:
        return []
    key = proxy_key(sd.proxy, sd.data)
    have = {r["name"] for r in sd.references}
    study = optuna.load_study(study_name=sd.study, storage=make_storage(sd.storage))
    stored = [r for r in study.user_attrs.get("references", []) if r.get("name") not in names or r.get("proxy_key") == key]
    for name in names:
        if name in have:
            continue
        cfg = resolve_model(name)
        log(f"reference {name}: training under the study's proxy ({sd.proxy.get('steps')} steps at "
            f"{sd.proxy.get('resolution')} px)")
        res = train(cfg, TrainCfg.from_dict(sd.proxy), sd.data, mano_dir=mano_dir)
        cost = model_cost(build_model(cfg, mano_dir))
        row = {"name": name, "gmacs": cost.gmacs_total, "mpjpe_mm": res.metrics.mpjpe_mm,
               "mpvpe_mm": res.metrics.mpvpe_mm, "proxy_key": key}
        stored = [r for r in stored if r.get("name") != name] + [row]
        sd.references.append(row)
    study.set_user_attr("references", stored)
    return sd.references
