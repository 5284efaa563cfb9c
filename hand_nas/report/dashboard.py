"""optuna-dashboard on a stored study, listening on 127.0.0.1 unless told otherwise.

Optuna- and NNI-backed studies live in the same optuna storage, and both backends also write the
old-style ``constraints`` system attribute that optuna-dashboard 0.21 reads (it ignores
``set_constraint``), so infeasible trials are marked in either case. The server is started with
``run_server`` from Python, which opens every storage optuna can (the CLI cannot open journal files).
"""
from __future__ import annotations


def serve(study: str, storage_url: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Block serving the dashboard; the study must exist (checked first, with a one-line error)."""
    from optuna_dashboard import run_server

    from hand_nas.search.storage import open_storage, study_id

    sid = study_id(study, storage_url)  # a one-line error if the study does not exist
    storage = open_storage(storage_url)
    print(f"optuna-dashboard for study {study!r}: http://{host}:{port}/dashboard/studies/{sid} "
          f"(API: http://{host}:{port}/api/studies/{sid}); Ctrl-C stops it", flush=True)
    run_server(storage, host=host, port=port)
