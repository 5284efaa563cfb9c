"""A resumable build of a directory: chunks committed beside the target, renamed into place at the end.

The folder ``.<name>.partial`` next to the target holds the files being built plus three files of
its own: ``build-state.json`` (the parameters the build was started with), ``build-log.jsonl``
(one line per committed chunk, appended after the chunk's data is written) and ``build.lock``
(an ``flock`` held by the one process building). A run killed at any point, even with SIGKILL,
restarts from the committed chunks: a chunk that was being written when the process died is not in
the log and is written again, which is harmless because a chunk always writes the same bytes to the
same place. A torn last log line (the kill hit the append) is ignored for the same reason. Nothing
appears at the target until ``finish`` renames the folder into place, without the three files.
Writers sync a chunk's data before it is committed, and the log is synced after each line, so a
committed chunk is on disk even if the machine, not just the process, went down.

The folder is made with ``mkdir``, so it gets the usual ``0777 & ~umask`` permissions (``tempfile``'s
``mkdtemp`` would make it private, 0700, and a shared data cache unreadable by others).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any, Self

from hand_nas.errors import HandNasError

STATE, LOG, LOCK = "build-state.json", "build-log.jsonl", "build.lock"


def partial_dir(target: str | os.PathLike) -> Path:
    """Where the build of ``target`` lives until it is finished."""
    target = Path(target)
    return target.parent / f".{target.name}.partial"


class ResumableBuild:
    """Context manager around one build of ``target``.

    Args:
        target: the directory to produce.
        params: JSON-able description of the inputs; a partial build started with other params is
            not resumed (an error says what differs) so a changed input can never mix into it.
        overwrite: replace an existing target at the end; otherwise an existing target is an error.
        resume: continue a partial build with the same params (False: discard it and start over).

    On a HandNasError (the inputs are wrong: nothing worth continuing) the partial folder is
    removed; on any other exception (Ctrl-C, a full disk, a bug) it is kept for a resume once the
    cause is fixed, as it is when the process is killed.
    """

    def __init__(self, target: str | os.PathLike, params: dict, overwrite: bool = False, resume: bool = True) -> None:
        self.target, self.folder = Path(target), partial_dir(target)
        self.params = json.loads(json.dumps(params))  # what a reload gives back, for the comparison
        self.overwrite, self.resume = overwrite, resume
        self.resumed = False
        self._lock = None
        self._log = None
        self._committed: dict[str, dict[int, dict]] = {}

    def __enter__(self) -> Self:
        if self.target.exists() and not self.overwrite:
            raise HandNasError(f"{self.target}: already exists (pass --overwrite to replace it)")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.folder.mkdir(exist_ok=True)
        self._lock = open(self.folder / LOCK, "a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise HandNasError(f"{self.folder}: another process is building {self.target}") from None
        state = self.folder / STATE
        if self.resume and state.is_file():
            try:
                old = json.loads(state.read_text())
            except json.JSONDecodeError:
                old = None  # killed while the state was first written: nothing was committed yet
            if old is not None and old != self.params:
                diff = sorted(k for k in set(old) | set(self.params) if old.get(k) != self.params.get(k))
                self._lock.close()
                raise HandNasError(f"{state}: a partial build with other inputs ({', '.join(diff)} differ); rerun "
                                   f"with the same arguments to resume it, or pass --no-resume to start over")
            if old is not None:
                self._committed = _read_log(self.folder / LOG)
                self.resumed = True
        if not self.resumed:
            for child in self.folder.iterdir():
                if child.name != LOCK:
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            tmp = self.folder / (STATE + ".tmp")
            tmp.write_text(json.dumps(self.params, indent=1, sort_keys=True))
            os.replace(tmp, state)
        self._log = open(self.folder / LOG, "a")
        return self

    def committed(self, phase: str) -> dict[int, dict]:
        """The chunks of ``phase`` committed so far: ``{chunk: payload}``."""
        return self._committed.setdefault(phase, {})

    def commit(self, phase: str, chunk: int, **payload: Any) -> None:
        """Record that ``chunk`` of ``phase`` is complete on disk (call after its data is written)."""
        self._log.write(json.dumps({"phase": phase, "chunk": chunk, **payload}) + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())
        self.committed(phase)[chunk] = payload

    def finish(self) -> None:
        """Drop the build's own files and rename the folder to the target (replacing it if allowed)."""
        self._log.close()
        self._log = None
        for name in (LOG, STATE, LOCK):
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()  # the flock stays held on the open (now unlinked) file
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
            os.replace(self.folder, self.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.folder, self.target)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._log is not None:
            self._log.close()
        if exc_type is not None and issubclass(exc_type, HandNasError):
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()


def _read_log(path: Path) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    if not path.is_file():
        return out
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):  # the append a kill cut short: drop it so the next line starts clean
        with open(path, "r+b") as fh:
            fh.truncate(end)
    for line in data[:end].decode().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # the append a kill cut short; that chunk is simply done again
        out.setdefault(entry.pop("phase"), {})[int(entry.pop("chunk"))] = entry
    return out
