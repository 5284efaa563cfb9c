"""Study-level records: the typed facts a study holds beside its trials, one writer and one reader each.

They are study user attributes (JSON), so a dashboard shows them readably::

    record          attribute key(s)                      writer             reader
    StudyMeta       one key per field ('backend', ...)    claim_meta         read_meta
    Reference       'reference:<proxy key>:<preset>'      write_reference    read_references
    RetrainRecord   'retrain:<trial>:<recipe>:<seed>'     record_retrain     read_retrains
    ProxyCheck      'proxy_check'                         write_proxy_check  read_proxy_check

Concurrency: each storage (SQLite, PostgreSQL, the journal) sets one attribute atomically, and no writer
reads a value to change and write it back: each fact has its own key, so drivers writing different facts
at once never lose each other's update, and two writing the same fact (a trial retrained twice under one
recipe and seed, a preset trained twice under one proxy) leave the later one. Only the claim reads first:
a key already stored is kept (the first driver's), and 'backend' and 'sampler' must match it.
Optuna's finished trials take no new attributes, so what is learnt after a search (retrains, references,
proxy checks) lives on the study. Readers ignore keys and fields they do not know (newer versions').
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from hand_nas.errors import HandNasError
from hand_nas.search.storage.studies import load_study

MUST_MATCH = ("backend", "sampler")  # optuna stores no sampler: a resumed study must be given the same
REFERENCE_PREFIX = "reference:"
REFERENCES_V1 = "references"  # before per-key references: one list, rewritten whole (read, never written)
RETRAIN_PREFIX = "retrain:"
PROXY_CHECK = "proxy_check"


def _known(cls, d: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def _json(value):
    return json.loads(json.dumps(value))  # tuples become lists, as the storage gives them back


@dataclass(frozen=True)
class LatencyMeta:
    """How a study's latencies are known: 'source' (in words), the predictor file, its CPU, the budget (ms)."""

    source: str
    predictor: str
    cpu: dict = field(default_factory=dict)
    budget_ms: float | None = None


@dataclass(frozen=True)
class StudyMeta:
    """What a study was created with: written by its first driver (``claim_meta``), checked by the next.

    Attributes:
        backend, sampler: the strategy; a resumed study must be given the same ones.
        space: the search space's file; objectives: its objectives, MPJPE first.
        budget_gmacs: the FLOPs budget; pruner: the ``make_pruner`` spec trials were stopped by.
        evaluator: {'name': 'train'} or the supernet's ({'name': 'supernet', 'supernet', 'sha256', ...}).
        latency: with a latency objective or budget, how latencies are predicted.
    Defaults stand for a study no driver claimed (one opened directly with ``StudyStore``).
    """

    backend: str = ""
    sampler: str = ""
    space: str = ""
    objectives: tuple = ("mpjpe",)
    budget_gmacs: float | None = None
    pruner: str | dict = "none"
    evaluator: dict = field(default_factory=lambda: {"name": "train"})
    latency: LatencyMeta | None = None

    def to_attrs(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "latency"}
        if self.latency is not None:
            out["latency"] = asdict(self.latency)
        return _json(out)

    @classmethod
    def from_attrs(cls, attrs: dict) -> StudyMeta:
        kw = _known(cls, attrs)
        if "objectives" in kw:
            kw["objectives"] = tuple(kw["objectives"])
        if kw.get("latency") is not None:
            kw["latency"] = LatencyMeta(**_known(LatencyMeta, kw["latency"]))
        return cls(**kw)


def claim_meta(study, meta: StudyMeta) -> None:
    """Write a study's meta on first use (each key only if missing); refuse a run whose ``MUST_MATCH`` differ.

    ``study``: the driver's open optuna study (``StudyStore.study``).
    """
    stored, attrs = study.user_attrs, meta.to_attrs()
    for key in MUST_MATCH:
        if key in stored and stored[key] != attrs[key]:
            raise HandNasError(f"study {study.study_name!r} was created with {key} {stored[key]!r}; pass --{key} "
                               f"{stored[key]} to resume it (optuna does not store samplers)")
    for key, value in attrs.items():
        if key not in stored:
            study.set_user_attr(key, value)


def read_meta(name: str, url: str) -> StudyMeta:
    return StudyMeta.from_attrs(load_study(name, url).user_attrs)


@dataclass(frozen=True)
class Reference:
    """A reference preset trained under a study's proxy on its data (``app.references.add_references``).

    Attributes:
        name: the preset; gmacs: its cost; mpjpe_mm, mpvpe_mm: held-out after the proxy.
        proxy_key: which proxy and data it was trained under (``report.study_data.proxy_key``).
    """

    name: str
    gmacs: float
    mpjpe_mm: float
    mpvpe_mm: float | None
    proxy_key: str

    def to_dict(self) -> dict:
        return asdict(self)


def write_reference(name: str, url: str, ref: Reference) -> None:
    """Store one reference under its own key: references other drivers add meanwhile are untouched."""
    load_study(name, url).set_user_attr(f"{REFERENCE_PREFIX}{ref.proxy_key}:{ref.name}", _json(ref.to_dict()))


def read_references(name: str, url: str, proxy_key: str | None) -> list[Reference]:
    """The references stored under ``proxy_key``, by preset name (a study's older list form included)."""
    attrs = load_study(name, url).user_attrs
    rows = [r for r in attrs.get(REFERENCES_V1, []) if isinstance(r, dict)]
    rows += [v for k, v in attrs.items() if k.startswith(f"{REFERENCE_PREFIX}{proxy_key}:") and isinstance(v, dict)]
    found = {r.get("name"): r for r in rows if proxy_key is not None and r.get("proxy_key") == proxy_key}
    return [Reference(**_known(Reference, found[n])) for n in sorted(found)]


@dataclass(frozen=True)
class RetrainRecord:
    """A finished retrain of a trial (``hand_nas.retrain``): its checkpoint and held-out metrics.

    Attributes:
        study, trial, recipe, seed: what was retrained, how; one record per (trial, recipe, seed).
        checkpoint: the absolute checkpoint folder; metrics, baseline_metrics: held-out, of the model and of
            the mean-shape baseline; proxy_metrics: the trial's own under the search's proxy.
        steps, train: its training (a ``TrainCfg`` dict); data; precision; seconds; node; finished_at (unix time).
    """

    study: str
    trial: int
    recipe: str
    seed: int
    checkpoint: str
    metrics: dict
    steps: int
    baseline_metrics: dict | None = None
    proxy_metrics: dict | None = None
    train: dict | None = None
    data: str | None = None
    precision: str | None = None
    seconds: float | None = None
    node: str | None = None
    finished_at: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def record_retrain(name: str, url: str, record: RetrainRecord) -> None:
    """Store a finished retrain under its (trial, recipe, seed) key: retrains of other trials never overwrite
    each other, and retraining a trial under the same recipe and seed replaces the older record."""
    key = f"{RETRAIN_PREFIX}{record.trial}:{record.recipe}:{record.seed}"
    load_study(name, url).set_user_attr(key, _json(record.to_dict()))


def read_retrains(name: str, url: str, number: int) -> list[RetrainRecord]:
    """The recorded retrains of trial ``number``, the most recent first."""
    attrs = load_study(name, url).user_attrs
    found = [RetrainRecord(**_known(RetrainRecord, v)) for k, v in attrs.items()
             if k.startswith(f"{RETRAIN_PREFIX}{number}:") and isinstance(v, dict)]
    return sorted(found, key=lambda r: r.finished_at or 0, reverse=True)


def trial_retrains(name: str, url: str, number: int) -> list[dict]:
    """``read_retrains`` as plain dicts, for callers that print or serialise them."""
    return [r.to_dict() for r in read_retrains(name, url, number)]


@dataclass(frozen=True)
class ProxyCheck:
    """What ``hand-nas proxy check --study`` measured of the study's proxy (``app.proxy_check.run_check``).

    Attributes:
        summary: rank correlation with the long runs and seed noise; warning: None, or why to distrust it.
        proxy, long: the short and the long ``TrainCfg`` dicts; complete: every architecture ran.
        rules: per evaluation step, how the proxy ranks there.
    """

    summary: dict
    proxy: dict
    long: dict
    complete: bool
    warning: str | None = None
    rules: list = field(default_factory=list)

    @classmethod
    def from_result(cls, result: dict) -> ProxyCheck:
        """The stored part of a ``run_check`` result (its per-architecture rows stay in the JSON file)."""
        return cls(**_known(cls, result))

    def to_dict(self) -> dict:
        return asdict(self)


def write_proxy_check(name: str, url: str, check: ProxyCheck) -> None:
    load_study(name, url).set_user_attr(PROXY_CHECK, _json(check.to_dict()))


def read_proxy_check(name: str, url: str) -> ProxyCheck | None:
    stored = load_study(name, url).user_attrs.get(PROXY_CHECK)
    return ProxyCheck.from_result(stored) if isinstance(stored, dict) else None
