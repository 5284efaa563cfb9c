"""Stops a local Ray cluster whose driver died without shutting it down (kill -9, OOM).

Ray's GCS and raylet are the driver's children, its agents the raylet's; after a SIGKILL of the
driver some of them (DashboardAgent, RuntimeEnvAgent) live on, reparented to init. The runner
starts this watchdog as a separate process next to every local cluster: it keeps a snapshot of the
driver's process tree and, once the driver is gone, terminates what is left of it.

    python -m hand_nas.search.ray_reaper DRIVER_PID
"""
from __future__ import annotations

import sys
import time


def reap(driver_pid: int, poll_s: float = 1.0, grace_s: float = 5.0) -> int:
    """Wait for ``driver_pid`` to exit, then terminate (and after ``grace_s`` kill) its last known tree."""
    import psutil

    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:
        return 0
    me = psutil.Process().pid
    known: dict[int, psutil.Process] = {}
    while driver.is_running() and driver.status() != psutil.STATUS_ZOMBIE:
        try:
            for p in driver.children(recursive=True):
                if p.pid != me:
                    known[p.pid] = p
        except psutil.Error:
            pass
        time.sleep(poll_s)
    left = []
    for p in known.values():
        try:
            left += [p] + p.children(recursive=True)
        except psutil.Error:
            continue
    left = [p for p in {p.pid: p for p in left if p.pid != me}.values() if p.is_running()]
    for p in left:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(left, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    return len(left)


def start_reaper() -> None:
    """Start the watchdog for this process as a detached child (it outlives a killed driver)."""
    import os
    import subprocess

    subprocess.Popen([sys.executable, "-m", "hand_nas.search.ray_reaper", str(os.getpid())],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


if __name__ == "__main__":
    reap(int(sys.argv[1]))
