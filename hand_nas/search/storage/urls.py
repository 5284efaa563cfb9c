"""Storage URLs: which optuna storage a URL opens, and the file a file URL names.

``sqlite:///FILE`` (the default; long lock timeout), ``journal:///FILE`` (optuna's JournalStorage,
append-only, NFS-friendly), ``postgresql://...`` (any SQLAlchemy URL; the driver comes with
``pip install 'hand-nas[cluster]'``). Readers open a storage without creating it: a missing SQLite or
journal file is a one-line error, never a new empty database.
"""
from __future__ import annotations

import time
from pathlib import Path

from hand_nas.errors import HandNasError


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def root_cause(exc: BaseException) -> str:
    """The database's own words ('readonly database', 'disk is full'), not SQLAlchemy's wrapper text."""
    orig = getattr(exc, "orig", None) or exc.__cause__ or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]


def creation_race(why: str) -> bool:
    """Errors two drivers get when they create one fresh database or study at the same moment."""
    why = why.lower()
    return any(k in why for k in ("already exists", "unique constraint", "duplicate", "database is locked"))


def where(url: str) -> str:
    """A URL as error messages show it: without a server URL's user (and password)."""
    return url.split("@")[-1]


def file_of(url: str) -> Path | None:
    """The file a sqlite:/// or journal:/// URL names (None for servers and in-memory SQLite)."""
    if url.startswith("journal:///"):
        return Path(url[len("journal:///") - 1:])
    name = url[len("sqlite:///"):].split("?", 1)[0] if url.startswith("sqlite:///") else ""
    return Path(name) if name and name != ":memory:" else None


def _storage_file(url: str, create: bool) -> None:
    """For a file URL: with ``create``, make its folder (refusing a path under a file); without, it must exist."""
    from hand_nas.atomic import check_parents

    path = file_of(url)
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

    quiet_optuna()
    _storage_file(url, create)
    if url.startswith("journal:///"):
        from optuna.storages.journal import JournalFileBackend

        try:
            return optuna.storages.JournalStorage(JournalFileBackend(str(file_of(url))))
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
            raise HandNasError(f"storage {where(url)}: database driver {exc.name!r} is not installed "
                               f"(pip install 'hand-nas[cluster]' for PostgreSQL)") from None
        except Exception as exc:  # SQLAlchemy raises several types; show the database's reason
            why = root_cause(exc)
            if creation_race(why) and attempt < 4:  # two drivers creating one fresh database at once
                time.sleep(0.2 * (attempt + 1))
                continue
            raise HandNasError(f"storage {where(url)}: {why}") from None
    raise AssertionError("unreachable")
