"""Where trials run: in this process (``LocalExecutor``) or on Ray (``RayExecutor``).

Both take ``submit(fn, *args) -> key`` and ``wait(timeout) -> [(key, result)]``; a task that
raises yields a result dict with state 'failed' and the error, so the search goes on. A local Ray
is started loopback-only with hand-nas' own token (``hand_nas.search.ray_local``); joining a cluster
with ``address`` changes none of Ray's settings.
"""
from __future__ import annotations

import os
import traceback

from hand_nas.errors import HandNasError
from hand_nas.search.ray_local import exposed, listeners, loopback_only, undo_loopback_only

class LocalExecutor:
    """Runs each task when it is waited for, one at a time, in this process."""

    name = "local"

    def __init__(self) -> None:
        self._pending: list = []
        self._next = 0

    @property
    def capacity(self) -> int:
        return 1

    def submit(self, fn, *args) -> int:
        key = self._next
        self._next += 1
        self._pending.append((key, fn, args))
        return key

    def wait(self, timeout: float | None = None) -> list:
        if not self._pending:
            return []
        key, fn, args = self._pending.pop(0)
        try:
            return [(key, fn(*args))]
        except Exception as exc:
            return [(key, {"state": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)})]

    def cancel_all(self) -> None:
        self._pending.clear()

    def shutdown(self) -> None:
        pass


class RayExecutor:
    """Runs tasks on a local Ray (``address=None``) or an existing cluster, one CPU (or GPU) share each."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None, cpus_per_trial: float = 1.0,
                 gpus_per_trial: float = 0.0) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise HandNasError(f"workers: {workers!r}, expected an integer >= 1")
        if not (cpus_per_trial > 0 and gpus_per_trial >= 0):  # also refuses NaN
            raise HandNasError(f"cpus_per_trial {cpus_per_trial!r}, gpus_per_trial {gpus_per_trial!r}: expected > 0 "
                               "and >= 0")
        if address:
            undo_loopback_only()
        else:
            loopback_only()  # before Ray is imported: Ray reads its configuration at import
        import ray

        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False, include_dashboard=False)
            else:
                before = listeners()
                # num_gpus None: every GPU Ray detects, when trials ask for GPUs
                ray.init(num_cpus=max(1, int(round(workers * cpus_per_trial))),
                         num_gpus=None if gpus_per_trial > 0 else 0, _node_ip_address="127.0.0.1",
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
                from hand_nas.search.ray_reaper import start_reaper

                start_reaper()  # stops this local cluster if the driver is killed before shutdown
                if bad := exposed(listeners() - before):
                    ray.shutdown()
                    undo_loopback_only()
                    pid, name, ip, port = bad[0]
                    raise HandNasError(f"local Ray: {name} (pid {pid}) listens on {ip}:{port}, not on loopback only "
                                       f"({len(bad)} such socket(s)); refusing to run trials reachable from the "
                                       "network (run with --local, or join a cluster you secured with --ray-address)")
        self._ray = ray
        self._local = not address
        self.workers = workers
        self.options = {"num_cpus": cpus_per_trial, "num_gpus": gpus_per_trial}
        self._refs: dict = {}
        self._next = 0

    @property
    def capacity(self) -> int:
        return self.workers

    def submit(self, fn, *args) -> int:
        remote = self._ray.remote(**self.options)(fn)
        ref = remote.options(max_retries=0).remote(*args)
        key = self._next
        self._next += 1
        self._refs[ref] = key
        return key

    def wait(self, timeout: float | None = None) -> list:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            key = self._refs.pop(ref)
            try:
                out.append((key, self._ray.get(ref)))
            except Exception as exc:  # worker died, task raised
                out.append((key, {"state": "failed", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}))
        return out

    def cancel_all(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)
        self._refs.clear()

    def shutdown(self) -> None:
        self.cancel_all()
        self._ray.shutdown()
        if self._local:
            undo_loopback_only()  # the process may live on (tests, notebooks): Ray's settings as they were
