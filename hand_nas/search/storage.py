"""Study storage: the only module that talks to optuna's storage layer (public API only).

Every backend's trials land here in one shape: an optuna study whose trials carry a
``TrialRecord`` in their user attributes (one key per field), the budget constraint both where
optuna 5 keeps it (``Trial.set_constraint``) and where optuna-dashboard 0.21 reads it (the
``constraints`` system attribute), and the proxy's held-out MPJPE as intermediate values.

Storage URLs: ``sqlite:///FILE`` (the default; long lock timeout), ``journal:///FILE`` (optuna's
JournalStorage, append-only, NFS-friendly), ``postgresql://...`` (any SQLAlchemy URL; the driver
comes with ``pip install 'hand-nas[cluster]'``).

Liveness: every driver writes a heartbeat (a system attribute) for each trial it runs, every
``heartbeat_s`` seconds (``MIN_HEARTBEAT_S``..``MAX_HEARTBEAT_S``), and the beat carries that interval.
A RUNNING trial whose heartbeat is older than ``STALE_BEATS`` of the intervals its own driver
declared belongs to a killed driver and is marked failed by the next driver that looks; a live
driver's trials are never touched (several drivers may share one study).

Readers (``read_records``, ``study_attrs``, ``trial_count``...) open a storage without creating it:
a missing SQLite or journal file is a one-line error, never a new empty database.
"""
from __future__ import annotations

import functools
import json
import socket
import threading
import time
import warnings
from pathlib import Path

from hand_nas.config import DEFAULT_STORAGE
from hand_nas.errors import HandNasError
from hand_nas.search.records import TrialRecord
from hand_nas.search.space import SearchSpace, encode

__all__ = ["DEFAULT_STORAGE", "StudyStore", "open_storage", "read_records", "select_trial", "study_attrs",
           "set_study_attr", "param_importances", "distributions", "make_pruner", "trial_count"]

CONSTRAINT = "gmacs_budget"
HEARTBEAT = "hand_nas:heartbeat"  # system attribute: [unix time, interval s, host]
STALE_BEATS = 3  # a trial is stale after this many missed heartbeats
MIN_HEARTBEAT_S, MAX_HEARTBEAT_S = 1.0, 3600.0
PRUNERS = ("noise", "median", "none")


def _quiet() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _root_cause(exc: BaseException) -> str:
    """The database's own words ('readonly database', 'disk is full'), not SQLAlchemy's wrapper text."""
    orig = getattr(exc, "orig", None) or exc.__cause__ or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]


def _creation_race(why: str) -> bool:
    """Errors two drivers get when they create one fresh database or study at the same moment."""
    why = why.lower()
    return any(k in why for k in ("already exists", "unique constraint", "duplicate", "database is locked"))


def check_heartbeat(seconds, field: str = "--heartbeat-s") -> float:
    """``seconds`` as a heartbeat interval: a finite number in MIN_HEARTBEAT_S..MAX_HEARTBEAT_S."""
    import math

    ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds)
    if not ok or not MIN_HEARTBEAT_S <= seconds <= MAX_HEARTBEAT_S:
        raise HandNasError(f"{field}: {seconds!r}, expected a finite number of seconds in "
                           f"{MIN_HEARTBEAT_S:g}..{MAX_HEARTBEAT_S:g}")
    return float(seconds)


def _file_of(url: str) -> Path | None:
    """The file a sqlite:/// or journal:/// URL names (None for servers and in-memory SQLite)."""
    if url.startswith("journal:///"):
        return Path(url[len("journal:///") - 1:])
    name = url[len("sqlite:///"):].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    return Path(name) if name and name != ":memory:" else None


def _storage_file(url: str, create: bool) -> None:
    """For a file URL: with ``create``, make its folder (refusing a path under a file); without, it must exist."""
    from hand_nas.atomic import check_parents

    path = _file_of(url)
    if path is None:
        return
    if not create:
        if not path.is_file():
            raise HandNasError(f"storage {url}: {path} not found (a command that only reads a study creates "
                               "no database; check --storage)")
        return
    check_parents(path)
    path.parent.mkdir(parents=True, exist_ok=True)


def open_storage(url: str, create: bool = True):
    """An optuna storage for a URL (one-line errors for typos, missing drivers, unusable files).

    ``create=False`` (every reader): a SQLite or journal file must already exist; nothing is created.
    """
    import optuna

    _quiet()
    _storage_file(url, create)
    if url.startswith("journal:///"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len("journal:///") - 1:])
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise HandNasError(f"storage {url}: cannot open the journal file ({exc.strerror})") from None
    if "://" not in url:
        raise HandNasError(f"storage {url!r}: expected sqlite:///FILE, journal:///FILE or postgresql://USER@HOST/DB")
    if url.startswith(("postgresql://", "postgres://")):  # SQLAlchemy would pick psycopg2; the [cluster] extra has psycopg 3
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    kwargs = {}
    if url.startswith("sqlite:///"):
        kwargs = {"engine_kwargs": {"connect_args": {"timeout": 120}}}
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except ModuleNotFoundError as exc:
            raise HandNasError(f"storage {url.split('@')[-1]}: database driver {exc.name!r} is not installed "
                               f"(pip install 'hand-nas[cluster]' for PostgreSQL)") from None
        except Exception as exc:  # SQLAlchemy raises several types; show the database's reason
            why = _root_cause(exc)
            if _creation_race(why) and attempt < 4:  # two drivers creating one fresh database at once
                time.sleep(0.2 * (attempt + 1))
                continue
            raise HandNasError(f"storage {url.split('@')[-1]}: {why}") from None
    raise AssertionError("unreachable")


def distributions(space: SearchSpace) -> dict:
    """The optuna distribution of every parameter of a space (lists enter categoricals as JSON)."""
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


def make_pruner(spec):
    """Early stopping judged on the stored intermediate MPJPE of the study's trials.

    ``spec``: a name of ``PRUNERS`` or a dict {'name', ...} ('noise' takes the keyword arguments of
    ``NoiseAwarePruner`` with ``noise`` as a ``NoiseProfile`` dict); plain dicts travel to workers.
    """
    import optuna

    name, kwargs = (spec, {}) if isinstance(spec, str) else (spec["name"], {k: v for k, v in spec.items() if k != "name"})
    if name == "noise":
        from hand_nas.search.pruning import NoiseAwarePruner, NoiseProfile

        return NoiseAwarePruner(NoiseProfile.from_dict(kwargs.pop("noise")), **kwargs)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise HandNasError(f"pruner {name!r}: expected one of {PRUNERS}")


def pruner_name(spec) -> str:
    return spec if isinstance(spec, str) else spec["name"]


def _for_sampler(study):
    """The study as a sampler should see it: in a multi-objective study, ``direction`` is MPJPE's.

    Early stopping judges MPJPE, the first objective and the only trained one (GMACs and latency are known
    before training), so a pruned trial's intermediate values are MPJPE. optuna's pruners are single-objective
    (optuna#5260), and TPE ranks pruned trials through ``study.direction``, which a multi-objective study
    refuses (RuntimeError): this view answers with the first objective's direction, so TPE ranks pruned
    trials by the step they reached, then their last MPJPE, as it does in a single-objective study.
    """
    if len(study.directions) <= 1:
        return study
    view = object.__new__(_first_objective_study())
    view.__dict__ = study.__dict__  # the same study (storage, cache), one property answered differently
    return view


@functools.cache
def _first_objective_study():
    import optuna

    class FirstObjectiveStudy(optuna.Study):
        @property
        def direction(self):
            return self.directions[0]

    return FirstObjectiveStudy


def _given_sampler(base):
    """A sampler that returns the parameters a strategy already chose, else defers to ``base``.

    Strategies outside optuna (NNI) propose whole parameter dicts; the store creates their trials
    through ``study.ask`` with those values, so every backend's trials are created, numbered,
    heart-beaten and finished the same way.
    """
    import optuna

    class GivenSampler(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self.given: dict | None = None

        def infer_relative_search_space(self, study, trial):
            return {} if self.given is not None else base.infer_relative_search_space(_for_sampler(study), trial)

        def sample_relative(self, study, trial, search_space):
            return {} if self.given is not None else base.sample_relative(_for_sampler(study), trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            if self.given is not None:
                return self.given[param_name]
            return base.sample_independent(_for_sampler(study), trial, param_name, param_distribution)

        def before_trial(self, study, trial):
            base.before_trial(study, trial)

        def after_trial(self, study, trial, state, values):
            base.after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:
            base.reseed_rng()

    return GivenSampler()


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

        self.heartbeat_s = check_heartbeat(heartbeat_s, "heartbeat_s")  # before anything is opened
        self.name, self.url, self.space = name, url, space
        self.pruner = "none" if space.multi_objective and pruner_name(pruner) != "noise" else pruner
        self.storage = open_storage(url)
        self.distributions = distributions(space)
        self._sampler = _given_sampler(sampler or optuna.samplers.RandomSampler())
        directions = ["minimize"] * len(space.objectives)
        for attempt in range(5):
            try:
                self.study = optuna.create_study(study_name=name, storage=self.storage, directions=directions,
                                                 sampler=self._sampler, pruner=make_pruner(self.pruner),
                                                 load_if_exists=True)
                break
            except Exception as exc:  # a concurrent driver created it between our check and insert
                if attempt == 4 or not _creation_race(_root_cause(exc)):
                    raise HandNasError(f"storage {url.split('@')[-1]}: {_root_cause(exc)}") from None
                time.sleep(0.2 * (attempt + 1))
        if len(self.study.directions) != len(directions):
            raise HandNasError(f"study {name!r} has {len(self.study.directions)} objective(s); the space "
                               f"{space.source} has {len(directions)} ({', '.join(space.objectives)})")
        self._study_id = self.storage.get_study_id_from_name(name)
        self._live: dict[int, object] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beater = threading.Thread(target=self._beat_loop, daemon=True, name="hand-nas-heartbeat")
        self._beater.start()

    # --- study attributes -----------------------------------------------------------------------

    @property
    def attrs(self) -> dict:
        return dict(self.study.user_attrs)

    def claim(self, attrs: dict, must_match=("backend", "sampler")) -> None:
        """Write the study's attributes on first use; refuse a run whose ``must_match`` keys differ."""
        stored = self.study.user_attrs
        for key in must_match:
            if key in stored and key in attrs and stored[key] != attrs[key]:
                raise HandNasError(f"study {self.name!r} was created with {key} {stored[key]!r}; pass --{key} "
                                   f"{stored[key]} to resume it (optuna does not store samplers)")
        for key, value in attrs.items():
            if key not in stored:
                self.study.set_user_attr(key, value)

    # --- trials ---------------------------------------------------------------------------------

    def ask(self, params: dict | None = None):
        """Create a RUNNING trial and start its heartbeat; returns the optuna trial.

        With ``params`` (a strategy's own choice, decoded values) the trial takes exactly those;
        without, the optuna sampler samples inside it as the strategy suggests (define-by-run).
        """
        if params is not None:
            self._sampler.given = {k: encode(v) for k, v in params.items()}
            try:
                trial = self.study.ask(fixed_distributions={k: self.distributions[k] for k in params})
            finally:
                self._sampler.given = None
        else:
            trial = self.study.ask()
        with self._lock:
            self._live[trial.number] = trial
        self._beat(trial.number)
        return trial

    def _trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    def _beat(self, number: int) -> None:
        self.storage.set_trial_system_attr(self._trial_id(number), HEARTBEAT,
                                           [time.time(), self.heartbeat_s, socket.gethostname()])

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                numbers = list(self._live)
            for n in numbers:
                try:
                    self._beat(n)
                except Exception:  # a transient storage error; the next beat retries
                    pass

    def finish(self, record: TrialRecord, values=None) -> None:
        """Store a trial's record and end it in the state the record says (its heartbeat stops)."""
        from optuna.trial import TrialState

        with self._lock:
            trial = self._live.pop(record.number, None)
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
            with self._lock:
                if t.number in self._live:
                    continue
            last, interval = _last_beat(t, self.heartbeat_s)
            if now - last > STALE_BEATS * interval:
                stale.append((t, now - last))
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

    def records(self) -> list[TrialRecord]:
        return [_record(t) for t in self.study.get_trials(deepcopy=False)]

    def reporter(self, number: int, cost: list | None = None):
        """A picklable ``fn(step, mpjpe_mm) -> stop?`` for the worker training trial ``number``.

        ``cost``: the trial's costs known before training ([gmacs, latency_ms or None]), stored for
        the multi-objective pruner to judge dominance.
        """
        if pruner_name(self.pruner) == "none":
            return None
        return Reporter(self.url, self.name, number, self.pruner, cost)

    def close(self) -> None:
        self._stop.set()
        self._beater.join(timeout=5)


def _last_beat(trial, default_s: float) -> tuple[float, float]:
    """(time of the trial's last heartbeat, the interval its own driver declared), the interval held to
    MIN_HEARTBEAT_S..MAX_HEARTBEAT_S whatever was stored (an older or hostile driver's 0 or inf fails nothing early)."""
    import math

    beat = trial.system_attrs.get(HEARTBEAT)
    try:
        last, interval = float(beat[0]), float(beat[1])
    except (TypeError, ValueError, IndexError):  # no beat (an older hand-nas): judge by its start time
        last, interval = (trial.datetime_start.timestamp() if trial.datetime_start else 0.0), default_s
    if not math.isfinite(last):
        last = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    interval = min(max(interval, MIN_HEARTBEAT_S), MAX_HEARTBEAT_S) if math.isfinite(interval) else MAX_HEARTBEAT_S
    return last, interval


class Reporter:
    """Writes a worker's held-out MPJPE as the trial's intermediate value and asks the study's pruner."""

    def __init__(self, url: str, study: str, number: int, pruner, cost: list | None = None) -> None:
        self.url, self.study_name, self.number, self.pruner, self.cost = url, study, number, pruner, cost
        self._opened = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_opened"} | {"_opened": None}

    def __call__(self, step: int, value: float) -> bool:
        import optuna

        if self._opened is None:
            storage = open_storage(self.url, create=False)
            study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=make_pruner(self.pruner))
            tid = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(self.study_name),
                                                                  self.number)
            self._opened = (storage, study, tid)
            if self.cost is not None:
                from hand_nas.search.pruning import COST_ATTR

                storage.set_trial_user_attr(tid, COST_ATTR, list(self.cost))
        storage, study, tid = self._opened
        storage.set_trial_intermediate_value(tid, step, float(value))
        return bool(study.pruner.prune(study, storage.get_trial(tid)))


# --- reading studies ---------------------------------------------------------------------------

def _record(t) -> TrialRecord:
    return TrialRecord.from_attrs(t.number, t.user_attrs, t.values, running=t.state.name == "RUNNING")


def _load(name: str, url: str):
    import optuna

    storage = open_storage(url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise HandNasError(f"{url}: no study named {name!r} (studies: {', '.join(names) or 'none'})") from None


def trial_count(name: str, url: str = DEFAULT_STORAGE) -> int:
    """Trials a stored study holds (0 when it does not exist yet; a missing database file is not created)."""
    path = _file_of(url)
    if path is not None and not path.is_file():
        return 0
    storage = open_storage(url, create=False)
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def read_records(name: str, url: str = DEFAULT_STORAGE) -> list[TrialRecord]:
    """Every trial of a stored study as a ``TrialRecord``, by trial number."""
    return [_record(t) for t in _load(name, url).get_trials(deepcopy=False)]


def study_attrs(name: str, url: str = DEFAULT_STORAGE) -> dict:
    return dict(_load(name, url).user_attrs)


def set_study_attr(name: str, url: str, key: str, value) -> None:
    _load(name, url).set_user_attr(key, json.loads(json.dumps(value)))


RETRAIN_PREFIX = "retrain:"


def record_retrain(name: str, url: str, record: dict) -> None:
    """Store a finished retrain of a trial (``hand_nas.retrain``) as a study attribute.

    Finished trials cannot take new attributes in optuna, so retrains live on the study, one key per
    (trial, recipe, seed): concurrent retrains of other trials never overwrite each other, and
    retraining the same trial under the same recipe and seed replaces the older record.
    """
    set_study_attr(name, url, f"{RETRAIN_PREFIX}{record['trial']}:{record['recipe']}:{record['seed']}", record)


def trial_retrains(name: str, url: str, number: int) -> list[dict]:
    """The recorded retrains of trial ``number``, the most recent first."""
    attrs = study_attrs(name, url)
    found = [v for k, v in attrs.items() if k.startswith(f"{RETRAIN_PREFIX}{number}:") and isinstance(v, dict)]
    return sorted(found, key=lambda r: r.get("finished_at") or 0, reverse=True)


def study_id(name: str, url: str) -> int:
    """The storage's id of a study (optuna-dashboard's URLs use it)."""
    return open_storage(url, create=False).get_study_id_from_name(_load(name, url).study_name)


def select_trial(records: list[TrialRecord], which: str | int = "best", study: str = "",
                 need_checkpoint: bool = False) -> TrialRecord:
    """'best' (lowest held-out MPJPE among trained trials) or a trial number."""
    from hand_nas.search.records import best_trained

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
    from hand_nas.search.trial_storage import is_uri

    # a --storage-path URI is fetched by whoever reads it (compress.workflows.trial_checkpoint)
    if need_checkpoint and (not rec.checkpoint or (not is_uri(rec.checkpoint) and not Path(rec.checkpoint).is_dir())):
        raise HandNasError(f"study {study!r} trial {rec.number}: no checkpoint on disk ({rec.checkpoint})")
    return rec


def param_importances(name: str, url: str) -> tuple[dict, str]:
    """Parameter importances for MPJPE (optuna's default evaluator) over the trained trials, with a note."""
    import warnings

    import optuna

    study = _load(name, url)
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if _record(t).trained]
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
