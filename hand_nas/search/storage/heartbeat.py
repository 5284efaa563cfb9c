"""Liveness of running trials: a driver's heartbeat thread, and the test of a stale trial.

Every driver writes a heartbeat (a trial system attribute) for each trial it runs, every ``interval_s``
seconds (``MIN_HEARTBEAT_S``..``MAX_HEARTBEAT_S``), and the beat carries that interval. A RUNNING trial
whose heartbeat is older than ``STALE_BEATS`` of the intervals its own driver declared belongs to a
killed driver; a live driver's trials are never judged stale (several drivers may share one study).
"""
from __future__ import annotations

import math
import socket
import threading
import time

from hand_nas.errors import HandNasError

HEARTBEAT = "hand_nas:heartbeat"  # system attribute: [unix time, interval s, host]
STALE_BEATS = 3  # a trial is stale after this many missed heartbeats
MIN_HEARTBEAT_S, MAX_HEARTBEAT_S = 1.0, 3600.0


def check_heartbeat(seconds, field: str = "--heartbeat-s") -> float:
    """``seconds`` as a heartbeat interval: a finite number in MIN_HEARTBEAT_S..MAX_HEARTBEAT_S."""
    ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds)
    if not ok or not MIN_HEARTBEAT_S <= seconds <= MAX_HEARTBEAT_S:
        raise HandNasError(f"{field}: {seconds!r}, expected a finite number of seconds in "
                           f"{MIN_HEARTBEAT_S:g}..{MAX_HEARTBEAT_S:g}")
    return float(seconds)


def _last_beat(trial, default_s: float) -> tuple[float, float]:
    """(time of the trial's last heartbeat, the interval its own driver declared), the interval held to
    MIN_HEARTBEAT_S..MAX_HEARTBEAT_S whatever was stored (an older or hostile driver's 0 or inf fails nothing early)."""
    beat = trial.system_attrs.get(HEARTBEAT)
    try:
        last, interval = float(beat[0]), float(beat[1])
    except (TypeError, ValueError, IndexError):  # no beat (an older hand-nas): judge by its start time
        last, interval = (trial.datetime_start.timestamp() if trial.datetime_start else 0.0), default_s
    if not math.isfinite(last):
        last = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    interval = min(max(interval, MIN_HEARTBEAT_S), MAX_HEARTBEAT_S) if math.isfinite(interval) else MAX_HEARTBEAT_S
    return last, interval


def stale_for(trial, now: float, default_s: float) -> float | None:
    """Seconds since a RUNNING trial's last heartbeat when its driver is gone (missed ``STALE_BEATS``), else None."""
    last, interval = _last_beat(trial, default_s)
    return now - last if now - last > STALE_BEATS * interval else None


class Heartbeat:
    """A daemon thread beating, every ``interval_s`` seconds, for the trials in ``live`` (number -> trial).

    Args:
        storage: the optuna storage the beats are written to.
        trial_id: ``fn(number) -> the storage's trial id``.
        interval_s: seconds between beats (checked by ``check_heartbeat`` before).
    """

    def __init__(self, storage, trial_id, interval_s: float) -> None:
        self.storage, self.trial_id, self.interval_s = storage, trial_id, interval_s
        self.live: dict[int, object] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="hand-nas-heartbeat")
        self._thread.start()

    def start(self, number: int, trial) -> None:
        """Beat for trial ``number`` from now on (a first beat at once)."""
        with self.lock:
            self.live[number] = trial
        self.beat(number)

    def stop(self, number: int):
        """Stop beating for trial ``number``; returns its trial (None if this driver was not running it)."""
        with self.lock:
            return self.live.pop(number, None)

    def running(self, number: int) -> bool:
        with self.lock:
            return number in self.live

    def beat(self, number: int) -> None:
        self.storage.set_trial_system_attr(self.trial_id(number), HEARTBEAT,
                                           [time.time(), self.interval_s, socket.gethostname()])

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self.lock:
                numbers = list(self.live)
            for n in numbers:
                try:
                    self.beat(n)
                except Exception:  # a transient storage error; the next beat retries
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
