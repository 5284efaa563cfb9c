"""Study storage: the only part of hand-nas that talks to optuna's storage layer (public API only).

* ``urls``: storage URLs (``sqlite:///``, ``journal:///``, ``postgresql://``) and ``open_storage``.
* ``store``: ``StudyStore``, one study as one search driver opens it; trials are created and ended there.
* ``heartbeat``: the driver's heartbeat for its running trials, and when a trial's driver is gone.
* ``reporter``: the worker side of early stopping (``Reporter``).
* ``studies``: reading stored studies (``read_records``, ``trial_count``...), never creating one.
* ``study_records``: the typed study-level records (meta, references, retrains, proxy checks).
* ``importances``: parameter importances of a stored study.
"""
from __future__ import annotations

from hand_nas.config import DEFAULT_STORAGE
from hand_nas.search.storage.heartbeat import HEARTBEAT, STALE_BEATS, check_heartbeat
from hand_nas.search.storage.importances import param_importances
from hand_nas.search.storage.reporter import Reporter
from hand_nas.search.storage.store import StudyStore, distributions
from hand_nas.search.storage.studies import read_records, study_attrs, study_id, trial_count
from hand_nas.search.storage.study_records import (LatencyMeta, ProxyCheck, Reference, RetrainRecord, StudyMeta,
                                                   read_meta, read_proxy_check, read_references, read_retrains,
                                                   record_retrain, trial_retrains, write_proxy_check,
                                                   write_reference)
from hand_nas.search.storage.urls import open_storage

__all__ = ["DEFAULT_STORAGE", "HEARTBEAT", "STALE_BEATS", "LatencyMeta", "ProxyCheck", "Reference", "Reporter",
           "RetrainRecord", "StudyMeta", "StudyStore", "check_heartbeat", "distributions", "open_storage",
           "param_importances", "read_meta", "read_proxy_check", "read_records", "read_references", "read_retrains",
           "record_retrain", "study_attrs", "study_id", "trial_count",
           "trial_retrains", "write_proxy_check", "write_reference"]
