"""Safe writes: build under a temporary name beside the target, then rename; never replace a foreign folder.

A job that is interrupted or fails half-way leaves no half-written file or directory at the target.
Every folder written through ``atomic_dir`` carries the marker file ``.hand-nas``; an existing folder
is replaced only when it carries that marker (or is empty) and the caller passed ``overwrite``, so a
user's own folder given as ``--out`` is refused, never deleted. Temporary names
(``.<name>.tmp-<host>-<pid>-<random>``, ``.<name>.old-...``, ``.<name>.scratch-...``) say who made
them, so the leftovers of a killed process are removed on the next write to the same destination
while another live writer's are left alone. ``check_output`` is the one rule for a command's output
folder (new or ours, never inside or around what the command reads). A full disk during a write is a
one-line error naming the destination. ``confined`` keeps paths built from user input inside their root.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hand_nas.errors import HandNasError, is_disk_full

MARKER = ".hand-nas"
MARKER_TEXT = "Written by hand-nas, which may replace this folder as a whole; delete this file to protect it.\n"
KINDS = ("tmp", "old", "scratch")


def _host() -> str:
    # '-' separates the fields of a temporary name; a host name may contain one
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:64] or "host"


def _temp_name(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-{_host()}-{os.getpid()}-{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_stale(owner: str) -> bool:
    """``owner`` is what follows '.<name>.<kind>-': '<host>-<pid>-<random>' (or an older random suffix)."""
    fields = owner.rsplit("-", 2)
    if len(fields) != 3 or not fields[1].isdigit():
        # an older hand-nas used mkdtemp's bare 8-character suffix; nothing else of this shape is ours
        return re.fullmatch(r"[a-z0-9_]{8}", owner) is not None
    host, pid = fields[0], int(fields[1])
    return host == _host() and pid != os.getpid() and not _pid_alive(pid)


def clean_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings of ``target`` that a killed hand-nas process left; returns them.

    Only names of the form ``.<target name>.{tmp,old,scratch}-...`` are touched, and of those only
    ones whose owner process is gone (same host, pid not running) or that carry no owner.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    prefix = f".{target.name}."
    removed = []
    for p in target.parent.iterdir():
        if not p.name.startswith(prefix):
            continue
        kind, sep, owner = p.name[len(prefix):].partition("-")
        if kind not in KINDS or not sep or not _is_stale(owner):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed


def is_hand_nas_folder(folder: str | os.PathLike) -> bool:
    """True when ``folder`` carries the marker hand-nas writes into every folder it creates."""
    marker = Path(folder) / MARKER
    return marker.is_file() and not marker.is_symlink()


def check_replaceable(target: str | os.PathLike, overwrite: bool) -> None:
    """Raise unless writing ``target`` may proceed: absent, an empty folder, or (with ``overwrite``) ours.

    A symlink, a file, or a non-empty folder without the ``.hand-nas`` marker is refused whatever
    ``overwrite`` says, before anything is touched.
    """
    target = Path(target)
    check_parents(target)
    if target.is_symlink():
        raise HandNasError(f"{target}: is a symbolic link; refusing to replace it (give a new folder)")
    if not target.exists():
        return
    if not target.is_dir():
        raise HandNasError(f"{target}: exists and is not a folder; refusing to replace it (give a new folder)")
    if not any(target.iterdir()):
        return
    if not is_hand_nas_folder(target):
        raise HandNasError(f"{target}: exists, is not empty and was not written by hand-nas (no {MARKER} marker); "
                           "refusing to replace it (give a new folder)")
    if not overwrite:
        raise HandNasError(f"{target}: already exists (pass --overwrite to replace it)")


def check_parents(target: str | os.PathLike) -> None:
    """Raise unless every existing ancestor of ``target`` is a folder (a path under a file cannot be made)."""
    for parent in Path(target).absolute().parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise HandNasError(f"{target}: {parent} is a file, not a folder; give a path under a folder")
            return


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(out: str | os.PathLike, inputs=(), overwrite: bool = False) -> Path:
    """The one rule for a command's output folder; returns ``out``.

    ``out`` must be new (or an empty folder) or a folder hand-nas wrote (``check_replaceable``), and
    it may neither lie inside (or be) one of ``inputs`` (the bundle, checkpoint, data or image the
    command reads) nor contain one: replacing it would destroy what is being read.
    """
    out = Path(out)
    check_parents(out)
    real_out = out.resolve()
    for given in inputs:
        if given is None or given == "":
            continue
        real_in = Path(given).resolve()
        if _inside(real_out, real_in):
            raise HandNasError(f"{out}: is the input {given} or lies inside it; writing there would change what "
                               "is being read: give a folder outside it")
        if _inside(real_in, real_out):
            raise HandNasError(f"{out}: holds the input {given}; replacing it would delete what is being read: "
                               "give another folder")
    check_replaceable(out, overwrite)
    return out


def _disk_full(target: Path, exc: BaseException) -> HandNasError:
    why = (str(exc).strip().splitlines() or ["errno 28"])[0][:200]
    return HandNasError(f"{target}: disk full while writing it ({why}); nothing was written there: free space and "
                        "run the command again")


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``target`` that becomes ``target`` when the block exits cleanly.

    The temporary directory already holds the ``.hand-nas`` marker. An existing ``target`` is
    checked by ``check_replaceable`` before the block runs and again just before the swap.

    Args:
        target: final directory path.
        overwrite: replace an existing ``target`` that hand-nas wrote (a foreign one is always refused).
    """
    target = Path(target)
    check_replaceable(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = target.with_name(_temp_name(target, "tmp"))
    tmp.mkdir()
    try:
        (tmp / MARKER).write_text(MARKER_TEXT)
        yield tmp
        check_replaceable(target, overwrite)  # the block may have run for hours: look again
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not isinstance(exc, HandNasError) and is_disk_full(exc):
            raise _disk_full(target, exc) from None
        raise
    if target.exists():
        old = target.with_name(_temp_name(target, "old"))
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


@contextlib.contextmanager
def scratch_dir(target: str | os.PathLike) -> Iterator[Path]:
    """A working folder beside ``target`` (not in the system temp dir), removed when the block exits.

    Intermediate files of a long job stay on the destination's disk, and a kill -9 leaves at most
    ``.<name>.scratch-*``, which the next ``atomic_dir``/``scratch_dir`` for ``target`` removes.
    """
    target = Path(target)
    check_parents(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    path = target.with_name(_temp_name(target, "scratch"))
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def system_temp_in(folder: str | os.PathLike) -> Iterator[None]:
    """Point ``tempfile``'s default folder at ``folder`` for the block.

    For libraries called inside a ``scratch_dir`` that create their own temporary files without a
    ``dir=`` argument (ONNX optimisation, quantization): their leftovers then die with the scratch.
    """
    old = tempfile.tempdir
    tempfile.tempdir = os.fspath(folder)
    try:
        yield
    finally:
        tempfile.tempdir = old


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    if target.is_dir() and not target.is_symlink():
        raise HandNasError(f"{target}: is a folder; refusing to replace it with a file")
    check_parents(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-{_host()}-{os.getpid()}-", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if not isinstance(exc, HandNasError) and is_disk_full(exc):
            raise _disk_full(target, exc) from None
        raise


def confined(root: str | os.PathLike, *parts: str | os.PathLike) -> Path:
    """``root / parts...``, refusing anything that would leave ``root``.

    Each part must be relative and free of ``..``; after joining, symbolic links are resolved and
    the result must still lie inside ``root`` (so a link planted in ``root`` cannot point out).
    Used for folders named after user input (study names, trial numbers).

    Raises:
        HandNasError: naming the offending part.
    """
    root = Path(root)
    for part in parts:
        s = os.fspath(part)
        p = Path(s)
        if not s or p.is_absolute() or s.startswith(("/", "\\")) or p.drive:
            raise HandNasError(f"{s!r}: expected a relative name inside {root}")
        if ".." in p.parts or ".." in s.replace("\\", "/").split("/"):
            raise HandNasError(f"{s!r}: '..' is not allowed (the path must stay inside {root})")
        if "\0" in s:
            raise HandNasError(f"{s!r}: NUL character in a path")
    path = root.joinpath(*map(os.fspath, parts))
    real_root, real = root.resolve(), path.resolve()
    if real != real_root and real_root not in real.parents:
        raise HandNasError(f"{path}: leads outside {root} (through a symbolic link); refused")
    return path
