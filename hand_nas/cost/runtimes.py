"""The mobile runtimes' Python front doors, for timing and parity: ExecuTorch's runtime (XNNPACK delegate).

Each is an optional install (``pip install 'hand-nas[mobile]'``): ``executorch_available`` says whether it is here,
``load_pte`` raises one HandNasError line when it is not.

Threads: ExecuTorch's Python runtime has one process-wide XNNPACK thread pool that starts with a thread per
core; ``load_pte(path, threads)`` resets it to ``threads`` (``threadpool_size`` reads it back), so a
single-threaded figure is one busy thread (``busy_threads`` checks that from /proc).
"""
from __future__ import annotations

import os
from pathlib import Path

from hand_nas.errors import HandNasError


def executorch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("executorch") is not None


def _portable_lib():
    try:
        from executorch.extension.pybindings import portable_lib
    except ImportError as e:
        raise HandNasError(f"ExecuTorch's runtime is not installed: pip install 'hand-nas[mobile]' ({e})") from None
    return portable_lib


def set_threads(threads: int) -> None:
    _portable_lib()._unsafe_reset_threadpool(threads)


def threadpool_size() -> int:
    return _portable_lib()._threadpool_get_thread_count()


def load_pte(path: str | Path, threads: int = 1):
    """The ``forward`` method of the ExecuTorch program at ``path``, the XNNPACK pool at ``threads``."""
    _portable_lib()
    from executorch.runtime import Runtime

    if not Path(path).is_file():
        raise HandNasError(f"{path}: ExecuTorch program not found")
    set_threads(threads)
    try:
        method = Runtime.get().load_program(Path(path)).load_method("forward")
    except Exception as e:  # noqa: BLE001 - the runtime raises RuntimeError/ValueError for a bad file
        raise HandNasError(f"{path}: not a loadable ExecuTorch program ({type(e).__name__}: {e})") from None
    if method is None:
        raise HandNasError(f"{path}: ExecuTorch program has no 'forward' method")
    return method


def busy_threads(fn, runs: int = 20, share: float = 0.1) -> int:
    """Threads of this process that did at least ``share`` of the CPU time spent while ``fn`` ran ``runs``
    times (from /proc/self/task/*/stat): 1 when a runtime really runs single-threaded."""
    def cpu_ticks() -> dict[str, int]:
        ticks = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks[tid] = int(fields[11]) + int(fields[12])  # utime + stime
            except (OSError, IndexError, ValueError):
                pass
        return ticks

    before = cpu_ticks()
    for _ in range(runs):
        fn()
    after = cpu_ticks()
    spent = {t: after[t] - before.get(t, 0) for t in after}
    total = sum(spent.values())
    return sum(1 for v in spent.values() if total and v >= share * total)
