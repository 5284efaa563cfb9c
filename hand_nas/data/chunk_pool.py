"""Chunked work in worker processes, with a bounded number of chunks in flight.

Results come back in completion order with the key of their chunk; callers that need a fixed
output order write each chunk to its own place (see ``hand_nas.data.samples.write_rows``), so the
result does not depend on how many workers ran or which finished first. With one worker the
chunks run in this process, through the same initializer, so both paths compute the same bytes.
"""
from __future__ import annotations

import itertools
import signal
from collections.abc import Callable, Iterable
from typing import Any, Self


def _ignore_sigint(initializer: Callable[..., None], *args: Any) -> None:
    # Ctrl-C goes to the whole process group: let the parent alone decide (it keeps the partial
    # build for a resume) instead of every worker printing its own traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    initializer(*args)


class ChunkPool:
    """A pool of ``workers`` processes (spawned; none when ``workers <= 1``) that run chunk tasks.

    Args:
        workers: number of processes; 1 runs every chunk in the calling process.
        initializer: called once per worker (or once here) with ``initargs``, e.g. to load a model.
        initargs: its arguments (picklable).
    """

    def __init__(self, workers: int, initializer: Callable[..., None], initargs: tuple = ()) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers, self.initializer, self.initargs = workers, initializer, initargs
        self._pool = None

    def __enter__(self) -> Self:
        if self.workers == 1:
            self.initializer(*self.initargs)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: torch and its thread pools are not fork-safe.
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_ignore_sigint, initargs=(self.initializer, *self.initargs))
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, fn: Callable[..., Any], tasks: Iterable[tuple[Any, tuple]],
            on_result: Callable[[Any, Any], None]) -> None:
        """Run ``fn(*args)`` for every ``(key, args)`` and call ``on_result(key, result)`` as each finishes.

        At most two chunks per worker are queued at a time, so the arguments of a long job are
        never all pickled at once. The first exception stops the run and is raised here.
        """
        tasks = iter(tasks)
        if self._pool is None:
            for key, args in tasks:
                on_result(key, fn(*args))
            return
        from concurrent.futures import FIRST_COMPLETED, wait

        pending = {self._pool.submit(fn, *args): key for key, args in itertools.islice(tasks, 2 * self.workers)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    key = pending.pop(fut)
                    on_result(key, fut.result())
                    for nkey, nargs in itertools.islice(tasks, 1):
                        pending[self._pool.submit(fn, *nargs)] = nkey
        finally:
            for fut in pending:
                fut.cancel()
