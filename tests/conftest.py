"""Shared fixtures: a private hand-nas cache, the procedural hand, and small data sets."""
from __future__ import annotations

import os

import pytest


def _point_at_the_litert_converter() -> None:
    """LiteRT's converter venv lives in the user's hand-nas home (``hand-nas mobile setup-litert``); the tests run
    under a private home (``hand_home``), so HAND_NAS_LITERT_PYTHON names the real one, set before any test
    module asks whether it exists."""
    from hand_nas.paths import home

    py = home() / "litert-venv" / "bin" / "python"
    if "HAND_NAS_LITERT_PYTHON" not in os.environ and py.is_file():
        os.environ["HAND_NAS_LITERT_PYTHON"] = str(py)


_point_at_the_litert_converter()


@pytest.fixture(scope="session", autouse=True)
def hand_home(tmp_path_factory):
    """Point HAND_NAS_HOME at a per-session folder so tests never touch a user's cache."""
    home = tmp_path_factory.mktemp("hand_nas_home")
    old = os.environ.get("HAND_NAS_HOME")
    os.environ["HAND_NAS_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("HAND_NAS_HOME", None)
    else:
        os.environ["HAND_NAS_HOME"] = old


@pytest.fixture(scope="session")
def hand_model(hand_home):
    from hand_nas.hand.mano import HandModel

    return HandModel().eval()


@pytest.fixture(scope="session")
def mano_dir(hand_model):
    return hand_model.mano_dir


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory, hand_home):
    """24 synthetic samples at 128x128."""
    from hand_nas.data.synthetic import synthesize

    out = tmp_path_factory.mktemp("synth") / "set"
    synthesize(out, 24, seed=3, size=128, progress=False)
    return out


@pytest.fixture(scope="session")
def interhand_tree(tmp_path_factory, hand_home):
    from hand_nas.data.interhand_mock import write_mock_interhand

    root = tmp_path_factory.mktemp("ih26m")
    info = write_mock_interhand(root, split="test", captures=2, frames=2, cameras=2)
    return root, info


def _pg_bindir():
    import glob
    import shutil

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    path = found[-1] if found else shutil.which("initdb")
    return os.path.dirname(path) if path else None


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on 127.0.0.1 for this test session (Debian's package; .ci/run installs it).

    Skipped only where no server binaries exist and HAND_NAS_REQUIRE_POSTGRES is unset (CI sets it).
    """
    import socket
    import subprocess
    import tempfile

    bindir = _pg_bindir()
    if bindir is None:
        if os.environ.get("HAND_NAS_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL server binaries (initdb) not found; install Debian's postgresql package")
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    root = tempfile.mkdtemp(prefix="hand-nas-pg-")
    as_user = []
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the package's own user
        import shutil

        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = os.path.join(root, "data")
    run = lambda *cmd: subprocess.run(as_user + list(cmd), check=True, capture_output=True, timeout=120)  # noqa: E731
    run(f"{bindir}/initdb", "-D", data, "-U", "hand", "-A", "trust")
    run(f"{bindir}/pg_ctl", "-D", data, "-w", "-l", os.path.join(root, "log"), "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        run(f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "hand", "handnas")
        yield f"postgresql://hand@127.0.0.1:{port}/handnas"
    finally:
        subprocess.run(as_user + [f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True, timeout=60)
        subprocess.run(["rm", "-rf", root])


def pytest_collection_modifyitems(items):
    """Every test that uses the PostgreSQL server is marked ``postgres``: by its fixture, or by a storage-kind
    parameter "postgresql" (those tests ask for the fixture at run time), so none is missed."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres_url" in getattr(item, "fixturenames", ()) or any(v == "postgresql" for v in params.values()):
            item.add_marker(pytest.mark.postgres)
