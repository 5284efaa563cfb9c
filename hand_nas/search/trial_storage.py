"""Where trials find their data and leave their checkpoints: ``--storage-path``, shared by every node.

The root is a folder every node mounts at the same path, or a pyarrow filesystem URI
(``s3://bucket/prefix``, ``gs://...``, ``file:///...``). The driver publishes the data set once under
``ROOT/data/NAME``; a trial task receives only locations under the root (``ROOT/data/NAME``,
``ROOT/STUDY/trial_NNNN``), never a path of the driver's disk. On a mounted folder a worker reads and
writes in place; for a URI it downloads the data once into a per-node cache
(``$HAND_NAS_HOME/storage_cache``) and uploads its checkpoint at the end. Files rather than Ray's
object store carry the data: a prepared InterHand2.6M set is gigabytes, the local executor has no
object store, and a set published under the root stays there for ``compress`` and later studies.
Without ``--storage-path`` nothing changes: checkpoints go to ``--out`` and the data is read where it is.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from hand_nas.errors import HandNasError

URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
COMPLETE = "meta.json"  # a data set's last file to arrive: present means complete


def is_uri(root: str) -> bool:
    return bool(URI.match(root))


def normalise(root: str) -> str:
    """The root as trials receive it: a URI unchanged (without a trailing '/'), a folder made absolute."""
    if is_uri(root):
        _filesystem(root)  # an unknown scheme or missing credentials library fails here, before any trial
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


def location(root: str, rel: str) -> str:
    """``root/rel`` as stored in trial records (a URI or an absolute path)."""
    return f"{root}/{rel}" if is_uri(root) else str(Path(root) / rel)


def _filesystem(uri: str):
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid / ArrowNotImplementedError / OSError
        raise HandNasError(f"--storage-path {uri[:200]!r}: {exc}") from exc


def data_name(folder: Path) -> str:
    """A published data set's name: the folder's name and a digest of its meta.json (which tells sets apart)."""
    digest = hashlib.sha256((folder / COMPLETE).read_bytes()).hexdigest()[:10]
    return f"{folder.name}-{digest}"


def publish_data(root: str, folder: Path) -> str:
    """Put the sample folder ``folder`` under ``root/data`` once (driver side); returns its location there.

    A folder already inside a mounted ``root`` is used in place.
    """
    folder = folder.resolve()
    if not is_uri(root) and folder.is_relative_to(root):
        return str(folder)
    loc = location(root, f"data/{data_name(folder)}")
    if is_uri(root):
        import pyarrow.fs

        fs, base = _filesystem(loc)
        if fs.get_file_info(f"{base}/{COMPLETE}").type == pyarrow.fs.FileType.NotFound:
            _upload(folder, fs, base)
        return loc
    if not (Path(loc) / COMPLETE).is_file():
        from hand_nas.atomic import atomic_dir

        with atomic_dir(loc, overwrite=True) as tmp:
            shutil.copytree(folder, tmp, dirs_exist_ok=True)
    return loc


def _upload(folder: Path, fs, base: str, last: str = COMPLETE) -> None:
    """Copy ``folder`` to ``base`` on ``fs``, ``last`` last (a reader takes its presence for completeness)."""
    import pyarrow.fs

    fs.create_dir(base, recursive=True)
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.name == last)
    for p in files:
        dest = f"{base}/{p.relative_to(folder).as_posix()}"
        fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
        pyarrow.fs.copy_files(str(p), dest, destination_filesystem=fs)


def local_data(loc: str) -> Path:
    """The data set at ``loc`` as a folder of this node (worker side): in place, or the node's cached copy."""
    if not is_uri(loc):
        folder = Path(loc)
        if not (folder / COMPLETE).is_file():
            raise HandNasError(f"{folder}: no data set here; is --storage-path mounted at the same path on this node?")
        return folder
    return _cached(loc, "data", COMPLETE)


def _cached(uri: str, kind: str, complete: str) -> Path:
    """``uri``'s folder downloaded once into this node's cache (``$HAND_NAS_HOME/storage_cache``)."""
    from hand_nas.atomic import atomic_dir
    from hand_nas.paths import home

    cache = home() / "storage_cache" / kind / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if not (cache / complete).is_file():
        fs, base = _filesystem(uri)
        with atomic_dir(cache, overwrite=True) as tmp:
            _download(fs, base, tmp)
    return cache


def _download(fs, base: str, dest: Path) -> None:
    import pyarrow.fs

    for info in fs.get_file_info(pyarrow.fs.FileSelector(base, recursive=True)):
        if info.type == pyarrow.fs.FileType.File:
            out = dest / info.path[len(base):].lstrip("/")
            out.parent.mkdir(parents=True, exist_ok=True)
            pyarrow.fs.copy_files(info.path, str(out), source_filesystem=fs)


def checkpoint_target(loc: str) -> tuple[Path, str | None]:
    """(local folder to write the checkpoint ``loc`` to, URI to upload it to afterwards or None)."""
    if not is_uri(loc):
        return Path(loc), None
    from hand_nas.paths import home

    return home() / "storage_upload" / hashlib.sha256(loc.encode()).hexdigest()[:16], loc


def upload_checkpoint(folder: Path, uri: str) -> str:
    """Copy a finished checkpoint folder to ``uri`` (config.json last) and drop the local copy; returns ``uri``."""
    fs, base = _filesystem(uri)
    _upload(folder, fs, base, last="config.json")
    shutil.rmtree(folder, ignore_errors=True)
    return uri


def fetch_checkpoint(loc: str) -> str:
    """A checkpoint location from a trial record as a local folder (a URI is downloaded into the cache once)."""
    return loc if not is_uri(loc) else str(_cached(loc, "checkpoints", "config.json"))
