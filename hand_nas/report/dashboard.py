"""optuna-dashboard on a stored study, listening on loopback only unless the user insists.

optuna-dashboard's API has no authentication: whoever reaches the port can read every study of the
storage and change it. A host that is not loopback is therefore refused unless ``allow_remote`` is
given (``--allow-remote``), and then a warning says what is exposed.

Optuna- and NNI-backed studies live in the same optuna storage, and both backends also write the
old-style ``constraints`` system attribute that optuna-dashboard 0.21 reads (it ignores
``set_constraint``), so infeasible trials are marked in either case. The server is started with
``run_server`` from Python, which opens every storage optuna can (the CLI cannot open journal files).
"""
from __future__ import annotations

from hand_nas.errors import HandNasError


def check_port(host: str, port: int) -> None:
    """Raise a one-line HandNasError unless ``host:port`` can be listened on now (free, valid, permitted)."""
    import socket

    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise HandNasError(f"--port {port}: expected 1..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise HandNasError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        # as wsgiref's server does, so a port in TIME_WAIT is not mistaken for a busy one
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            raise HandNasError(f"{host}:{port}: cannot listen ({exc.strerror or exc}; is another dashboard "
                               "running? pass --port)") from None


EXPOSED = ("the optuna-dashboard API is unauthenticated: anyone who reaches {where} can read every study in "
           "{storage} (parameters, metrics, checkpoint paths, host names) and create, rename, delete or tell them")


def loopback_host(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    import socket

    from hand_nas.search.ray_local import is_loopback

    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False  # check_port reports it
    return bool(infos) and all(is_loopback(info[4][0]) for info in infos)


def check_host(host: str, storage_url: str, allow_remote: bool = False, warn=None) -> None:
    """Refuse a non-loopback ``host`` unless ``allow_remote``; then ``warn`` says what the network can reach."""
    if loopback_host(host):
        return
    if not allow_remote:
        exposed = EXPOSED.format(where="it", storage=storage_url)
        raise HandNasError(f"--host {host}: not a loopback address, and {exposed}; pass --allow-remote to serve it "
                           "anyway, or keep 127.0.0.1 and use `ssh -L`")
    if warn is not None:
        warn("warning: " + EXPOSED.format(where=f"{host} (not loopback)", storage=storage_url))


def serve(study: str, storage_url: str, host: str = "127.0.0.1", port: int = 8080, allow_remote: bool = False,
          warn=None) -> None:
    """Block serving the dashboard; host, port and study are checked first, with one-line errors."""
    from optuna_dashboard import run_server

    from hand_nas.search.storage import open_storage, study_id

    check_host(host, storage_url, allow_remote, warn)
    check_port(host, port)  # before "Listening": a busy port is an error line, not a traceback after it
    sid = study_id(study, storage_url)  # a one-line error if the study does not exist
    storage = open_storage(storage_url, create=False)
    print(f"optuna-dashboard for study {study!r}: http://{host}:{port}/dashboard/studies/{sid} "
          f"(API: http://{host}:{port}/api/studies/{sid}); Ctrl-C stops it", flush=True)
    run_server(storage, host=host, port=port)
