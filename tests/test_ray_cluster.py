"""A real two-node Ray cluster on this machine: ``hand-nas search --ray-address --storage-path``.

Two ``ray start`` nodes (one CPU each, their own temp dirs, homes and working directories, none of
them the driver's), trials on both, the second node's raylet killed mid-search: its running trial is
recorded failed and the study still reaches the requested count. Every location a trial received
(its data, its checkpoint, the data its checkpoint says it trained on) lies under --storage-path.
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# find_spec, not importorskip: importing ray here would fix its configuration before the executor sets
# RAY_AUTH_MODE for the local clusters of other tests in this session
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
psutil = pytest.importorskip("psutil")

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
# six, not four: node 2 must still have a trial to take after its first one completes, even when its first worker
# starts slowly and the head finishes several meanwhile (with four, CI once saw the head take all the rest)
TRIALS = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ours(marks: list[str]) -> list:
    """This cluster's processes: those whose command line names one of its temp dirs or its GCS port, and
    their children (the raylet's agents retitle themselves 'ray::DashboardAgent' and name neither)."""
    found = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if p.pid != os.getpid() and any(m in cmd for m in marks):
            found[p.pid] = p
            try:
                found.update({c.pid: c for c in p.children(recursive=True)})
            except psutil.Error:
                pass
    return list(found.values())


def _raylet(temp_dir: Path):
    """The raylet of the node started with ``temp_dir`` (its sockets live there)."""
    return next(p for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"] and Path(p.info["cmdline"][0]).name == "raylet"
                and str(temp_dir) in " ".join(p.info["cmdline"]))


def _cluster_env(short: Path) -> dict:
    """Token authentication on, with this cluster's own token (not the user's ~/.ray/auth_token)."""
    token = short / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    return dict(os.environ, PYTHONPATH=str(REPO), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
                RAY_DEDUP_LOGS="0", RAY_USAGE_STATS_ENABLED="0")


@pytest.fixture()
def cluster(tmp_path):
    """(address, head temp dir, node-2 temp dir, the cluster's client env); stopped by PID afterwards, never `ray stop`
    (which would stop every Ray of this user on the machine)."""
    port = _free_port()
    # short temp dirs: Ray's socket paths under them must fit the 107-character limit of a Unix socket
    short = Path(tempfile.mkdtemp(prefix="hn-ray-", dir="/tmp"))
    head, node2 = short / "head", short / "node2"
    env = _cluster_env(short)
    marks = [str(head), str(node2), f":{port}"]
    try:
        for name, args in (("head", ["--head", "--port", str(port), "--temp-dir", str(head),
                                     "--include-dashboard=false"]),
                           ("node2", ["--address", f"127.0.0.1:{port}", "--resources", '{"node2": 1}',
                                      "--temp-dir", str(node2)])):
            cwd = tmp_path / f"{name}_cwd"  # each node's own working directory and hand-nas home
            cwd.mkdir()
            started = subprocess.run([RAY, "start", *args, "--num-cpus", "1", "--disable-usage-stats"],
                                     env=env | {"HAND_NAS_HOME": str(tmp_path / f"{name}_home")}, cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
            assert started.returncode == 0, started.stdout.decode()[-2000:]
        yield f"127.0.0.1:{port}", head, node2, env
    finally:
        procs = _ours(marks)
        for p in procs:
            try:
                p.terminate()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=5)
        left = [p for p in procs + _ours(marks) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"Ray processes of the test cluster left running: {left}"
        shutil.rmtree(short, ignore_errors=True)


@pytest.mark.ray
@pytest.mark.slow
def test_search_on_two_nodes_survives_losing_one(tmp_path, cluster, hand_home):
    from hand_nas.errors import HandNasError
    from hand_nas.search.storage import read_records

    address, head, node2, env = cluster
    node2_id = next(a.split("=", 1)[1] for a in _raylet(node2).info["cmdline"] if a.startswith("--node_id="))[:12]
    storage, url = tmp_path.resolve() / "shared", f"sqlite:///{tmp_path}/study.db"
    driver_cwd = tmp_path / "driver_cwd"
    driver_cwd.mkdir()
    cmd = [sys.executable, "-m", "hand_nas.cli", "search", "--space", "tiny", "--ray-address", address,
           "--workers", "2", "--trials", str(TRIALS), "--storage-path", str(storage), "--storage", url, "--study", "c",
           "--pruner", "none", "--sampler", "random", "--budget", "10", "--quiet", "--out", str(tmp_path / "out")]
    driver = subprocess.Popen(cmd, cwd=driver_cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=env)  # HAND_NAS_HOME: the driver's own (the hand_home fixture's)
    killed = None
    try:
        deadline = time.time() + 150
        while time.time() < deadline and driver.poll() is None:
            try:
                done = [r for r in read_records("c", url) if r.state == "complete"]
            except HandNasError:
                done = []
            raylet = _raylet(node2)
            busy = [p for p in raylet.children() if " ".join(p.cmdline()).startswith("ray::_evaluate")]
            if any(node2_id in (r.node or "") for r in done) and busy:
                killed = busy[0].pid
                raylet.send_signal(signal.SIGKILL)  # node 2 lost with a trial running on it
                break
            time.sleep(0.1)
        out = driver.communicate(timeout=max(10.0, deadline - time.time()))[0].decode()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert killed, ("no trial was caught running on node 2 after one had finished there: "
                    + "; ".join(f"{r.number} {r.state} {r.node}" for r in read_records("c", url)))
    assert driver.returncode == 0, out[-3000:]
    records = read_records("c", url)
    print(f"\nnode 2 is {node2_id}; its raylet was killed while worker {killed} ran a trial")
    for r in records:
        print(f"trial {r.number}: {r.state:9s} node {r.node} {r.error or ''}")
    print(next(line for line in out.splitlines() if "finished trials" in line))
    assert len(records) == TRIALS and sorted(r.number for r in records) == list(range(TRIALS))
    assert "running" not in {r.state for r in records}
    failed = [r for r in records if r.state == "failed"]
    assert len(failed) == 1 and failed[0].error, [(r.state, r.error) for r in records]
    nodes = {r.node.split("/")[1] for r in records if r.state == "complete"}
    assert len(nodes) == 2 and node2_id in nodes, nodes  # trials completed on both nodes
    # every location a trial received lies under --storage-path
    for r in records:
        assert r.data.startswith(f"{storage}/data/"), r.data
    for r in (r for r in records if r.checkpoint):
        assert r.checkpoint == f"{storage}/c/trial_{r.number:04d}" and Path(r.checkpoint, "config.json").is_file()
        assert json.loads(Path(r.checkpoint, "config.json").read_text())["data"] == r.data
    assert not (tmp_path / "out").exists() and not any(driver_cwd.iterdir())
