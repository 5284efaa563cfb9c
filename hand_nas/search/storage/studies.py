"""Reading stored studies: their trials as ``TrialRecord``s, counts, ids; nothing is created or written."""
from __future__ import annotations

from hand_nas.config import DEFAULT_STORAGE
from hand_nas.errors import HandNasError
from hand_nas.search.records import TrialRecord
from hand_nas.search.storage.urls import file_of, open_storage


def trial_record(t) -> TrialRecord:
    """An optuna ``FrozenTrial`` as the record its user attributes hold."""
    return TrialRecord.from_attrs(t.number, t.user_attrs, t.values, running=t.state.name == "RUNNING")


def load_study(name: str, url: str):
    """The optuna study ``name`` of an existing storage (a one-line error naming the studies it holds)."""
    import optuna

    storage = open_storage(url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise HandNasError(f"{url}: no study named {name!r} (studies: {', '.join(names) or 'none'})") from None


def trial_count(name: str, url: str = DEFAULT_STORAGE) -> int:
    """Trials a stored study holds (0 when it does not exist yet; a missing database file is not created)."""
    path = file_of(url)
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
    return [trial_record(t) for t in load_study(name, url).get_trials(deepcopy=False)]


def study_attrs(name: str, url: str = DEFAULT_STORAGE) -> dict:
    """Every study attribute as stored (for inspection; ``study_records`` reads them as typed records)."""
    return dict(load_study(name, url).user_attrs)


def study_id(name: str, url: str) -> int:
    """The storage's id of a study (optuna-dashboard's URLs use it)."""
    return open_storage(url, create=False).get_study_id_from_name(load_study(name, url).study_name)
