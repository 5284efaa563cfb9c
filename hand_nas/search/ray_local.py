"""A local Ray that is this machine's alone: loopback sockets, hand-nas' own token, checked after start-up.

Ray 2.60 has no bind-address setting, but every Ray gRPC server (GCS, raylet, workers, agents) binds
127.0.0.1 when the node address is 127.0.0.1. ``ray.init(_node_ip_address="127.0.0.1")`` alone is
rewritten to the host address unless Ray's cluster switch is off (``loopback_only``). Token
authentication stays on, with the token in a 0600 file of hand-nas' own
(``$HAND_NAS_HOME/ray/auth_token``, folder 0700) that every process of the search finds through
``RAY_AUTH_TOKEN_PATH``. After start-up ``listeners``/``exposed`` check what the cluster opened.
None of this is applied when joining a cluster (``--ray-address``).
"""
from __future__ import annotations

import os
from pathlib import Path

from hand_nas.errors import HandNasError

# Ray's switch (read once, at ``import ray``, into ray._private.ray_constants.ENABLE_RAY_CLUSTER): when
# off, ``services.get_node_ip_address()`` answers 127.0.0.1 instead of the host address, so
# ``_node_ip_address="127.0.0.1"`` is kept and Ray's servers listen on loopback only. On by default on
# Linux; never switched off for a cluster join (the driver would advertise 127.0.0.1 to other nodes).
CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
_switched_off: dict = {}  # what loopback_only changed in this process, for a later cluster join to undo


def token_file() -> Path:
    """``$HAND_NAS_HOME/ray/auth_token``: created 0600 (folder 0700) with a fresh random token when missing.

    A token file that others could read (any mode but 0600) is replaced by a new token; a symbolic link
    or another non-regular file there is refused.
    """
    import secrets
    import stat

    from hand_nas.atomic import check_parents
    from hand_nas.paths import home

    folder = home() / "ray"
    check_parents(folder / "auth_token")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.is_symlink():
        raise HandNasError(f"{folder}: a symbolic link; the Ray token folder must be hand-nas' own")
    if stat.S_IMODE(folder.stat().st_mode) != 0o700:
        os.chmod(folder, 0o700)
    path = folder / "auth_token"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise HandNasError(f"{path}: not a regular file (a link?); remove it and hand-nas writes a new token")
    if st is not None and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid() and st.st_size >= 32:
        return path
    tmp = folder / f".auth_token.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode())
        os.close(fd)
        if st is None:  # a new token, complete before anyone sees it; a driver starting at the same moment wins
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        else:  # one others could read: replaced
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def loopback_only() -> None:
    """Prepare this process to start a loopback-only local Ray with hand-nas' token; before ``ray.init``.

    Every process of the search (GCS, raylet, workers, agents) inherits these variables. When Ray was
    imported earlier in this process, the flag it read at import and its cached token are set again.
    """
    import sys

    token = token_file()
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    for name in (TOKEN_PATH_ENV, CLUSTER_SWITCH):
        _switched_off.setdefault(name, os.environ.get(name))
    os.environ[TOKEN_PATH_ENV] = str(token)
    os.environ[CLUSTER_SWITCH] = "0"
    if "ray" in sys.modules:
        from ray._private import ray_constants
        from ray._raylet import AuthenticationTokenLoader, Config

        ray_constants.ENABLE_RAY_CLUSTER = False
        Config.initialize("")  # RAY_AUTH_MODE as set now, not as read at import
        AuthenticationTokenLoader.instance().reset_cache()  # our token file, not one read before


def undo_loopback_only() -> None:
    """Give back what ``loopback_only`` changed: after the local cluster stops (a process that lives on, a
    notebook, must not pass the switch to a later ``ray start --address``, which Ray then refuses), and
    before a cluster join in a process that ran a local Ray before."""
    import sys

    for name in (TOKEN_PATH_ENV, CLUSTER_SWITCH):
        if name in _switched_off:
            old = _switched_off.pop(name)
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
    if "ray" in sys.modules:  # Ray's own value for the environment as it is again, computed as its import does;
        from ray._private import ray_constants  # not a saved one: Ray may have been imported under the switch

        ray_constants.ENABLE_RAY_CLUSTER = ray_constants.env_bool(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR,
                                                                  not ray_constants.IS_WINDOWS_OR_OSX)


def listeners(pid: int | None = None) -> set:
    """{(pid, process name, ip, port)} of every listening TCP socket of process ``pid`` and its descendants."""
    import psutil

    root = psutil.Process(pid)
    out = set()
    for p in [root] + root.children(recursive=True):
        try:
            name = p.name()
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    out.add((p.pid, name, c.laddr.ip, c.laddr.port))
        except psutil.Error:  # exited meanwhile
            continue
    return out


def is_loopback(ip: str) -> bool:
    import ipaddress

    try:
        a = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    return (a.ipv4_mapped or a).is_loopback if a.version == 6 else a.is_loopback


def exposed(opened: set) -> list:
    """The sockets of ``opened`` (``listeners`` rows) that listen on something other than loopback."""
    return sorted(row for row in opened if not is_loopback(row[2]))
