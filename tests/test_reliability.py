"""Issue 32, as a hostile or careless user would try it: nothing exposed, nothing overwritten, nothing accepted
unverified, and the last tracebacks as one line. Each test names the issue item it reproduces (``item N``) or
the traceback kind (``traceback_*``)."""
from __future__ import annotations

import errno
import json
import math
import os
import socket
import stat
from pathlib import Path

import pytest
import yaml

from hand_nas.errors import HandNasError
from model_configs import small_model
from test_safety import bundle, cli, refused  # noqa: F401 (bundle is a fixture)


def tree(folder: Path) -> list[str]:
    """Every name under ``folder`` (hidden ones too), to show nothing was written."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def checkpoint(folder: Path, cfg=None, data: Path | None = None, **info) -> Path:
    """A plain checkpoint folder (small model, untrained), in a fraction of a second."""
    from hand_nas.checkpoint import save_checkpoint
    from hand_nas.config import TrainCfg
    from hand_nas.models import build_model

    cfg = cfg or small_model()
    return save_checkpoint(folder, build_model(cfg), cfg, train=TrainCfg(resolution=64, batch=2).to_dict(),
                           data=str(data or folder.parent / "nodata"), **info)


def image(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (64, 64), (90, 60, 40)).save(path)
    return path


# --- item 1: a local Ray listens on loopback only; it is refused otherwise; a cluster join is left alone -----

@pytest.mark.ray
@pytest.mark.slow
def test_item1_local_ray_listens_on_loopback_only_with_hand_nas_token(hand_home):
    """A real local Ray (one CPU): every socket its process tree listens on is loopback, a task runs."""
    pytest.importorskip("ray")
    from hand_nas.search.executors import RayExecutor
    from hand_nas.search.ray_local import is_loopback, listeners

    before = listeners()
    env = {k: os.environ.get(k) for k in ("RAY_AUTH_TOKEN_PATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    ex = RayExecutor(1)
    try:
        opened = listeners() - before
        names = {name for _, name, _, _ in opened}
        assert "gcs_server" in names and "raylet" in names, opened
        assert all(is_loopback(ip) for _, _, ip, _ in opened), sorted(opened)
        assert os.environ["RAY_AUTH_TOKEN_PATH"] == str(hand_home / "ray" / "auth_token")
        key = ex.submit(lambda x: x * 2, 8.0)  # a lambda travels by value (no test module in the worker)
        got = []
        while not got:
            got = ex.wait(timeout=5.0)
        assert got == [(key, 16.0)]
    finally:
        ex.shutdown()
    # given back: a later `ray start --address` from this process's children would refuse the switch
    assert {k: os.environ.get(k) for k in env} == env


def test_item1_a_ray_socket_beyond_loopback_is_refused_with_the_reason(monkeypatch, hand_home):
    pytest.importorskip("ray")
    import ray

    from hand_nas.search import executors, ray_reaper

    calls = iter([set(), {(41, "gcs_server", "0.0.0.0", 6379), (42, "raylet", "127.0.0.1", 5000)}])
    stopped = []
    monkeypatch.setattr(executors, "listeners", lambda pid=None: next(calls))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: None)
    monkeypatch.setattr(ray, "shutdown", lambda: stopped.append(1))
    monkeypatch.setattr(ray_reaper, "start_reaper", lambda: None)
    with pytest.raises(HandNasError, match=r"gcs_server \(pid 41\) listens on 0.0.0.0:6379, not on loopback"):
        executors.RayExecutor(1)
    assert stopped == [1]  # the cluster it started is stopped before the refusal
    assert os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0"


def test_item1_joining_a_cluster_keeps_rays_own_address_setting(monkeypatch, hand_home):
    """--ray-address: no loopback switch (the driver would advertise 127.0.0.1), no _node_ip_address."""
    pytest.importorskip("ray")
    import ray
    from ray._private import ray_constants

    from hand_nas.search import ray_local
    from hand_nas.search.executors import RayExecutor

    seen = {}

    def fake_init(**kw):
        seen.update(kw, switch=os.environ.get(ray_local.CLUSTER_SWITCH), flag=ray_constants.ENABLE_RAY_CLUSTER)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.delenv(ray_local.CLUSTER_SWITCH, raising=False)
    ray_local.loopback_only()  # a local search ran earlier in this process ...
    assert os.environ[ray_local.CLUSTER_SWITCH] == "0" and ray_constants.ENABLE_RAY_CLUSTER is False
    RayExecutor(2, address="10.0.0.5:6379")  # ... then this one joins a cluster
    assert seen["address"] == "10.0.0.5:6379" and "_node_ip_address" not in seen
    assert seen["switch"] is None and seen["flag"] is True  # Ray's own default on Linux is back


def test_item1_listeners_tell_loopback_from_every_interface():
    from hand_nas.search.ray_local import exposed, is_loopback, listeners

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")
    before = listeners()
    with socket.socket() as lo, socket.socket() as wide:
        lo.bind(("127.0.0.1", 0))
        wide.bind(("0.0.0.0", 0))
        lo.listen()
        wide.listen()
        bad, port = exposed(listeners() - before), wide.getsockname()[1]
    assert [row[2:] for row in bad] == [("0.0.0.0", port)]


# --- item 2: Ray's token lives in a 0600 file of hand-nas' own --------------------------------------------

def test_item2_token_file_is_0600_in_a_0700_folder_and_a_readable_one_is_replaced(tmp_path, monkeypatch):
    from hand_nas.search.ray_local import token_file

    monkeypatch.setenv("HAND_NAS_HOME", str(tmp_path / "home"))
    path = token_file()
    assert path == tmp_path / "home" / "ray" / "auth_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    token = path.read_text()
    assert len(token) == 64 and token_file() == path and path.read_text() == token  # kept while private
    path.chmod(0o644)  # someone made it readable: it may have leaked, so a new token replaces it
    token_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() != token
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(HandNasError, match="auth_token: not a regular file"):
        token_file()


# --- item 3: the dashboard stays on loopback unless the user says so, and then says what is exposed --------

@pytest.fixture
def study_db(tmp_path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=url)
    return url


def test_item3_dashboard_non_loopback_host_refused_unless_allowed_then_warned(capsys, monkeypatch, study_db):
    import optuna_dashboard

    served = []
    monkeypatch.setattr(optuna_dashboard, "run_server", lambda storage, host, port: served.append((host, port)))
    line = refused(capsys, "dashboard", "--study", "s", "--storage", study_db, "--host", "0.0.0.0",
                   match="--host 0.0.0.0: not a loopback address")
    assert "unauthenticated" in line and "--allow-remote" in line and served == []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, out, err = cli(capsys, "dashboard", "--study", "s", "--storage", study_db, "--host", "0.0.0.0",
                       "--port", port, "--allow-remote")
    assert rc == 0 and served == [("0.0.0.0", port)]
    assert err.count("\n") == 1 and "hand-nas: warning: the optuna-dashboard API is unauthenticated" in err
    assert "read every study" in err and "delete" in err
    rc, _, err = cli(capsys, "dashboard", "--study", "s", "--storage", study_db, "--host", "localhost", "--port", port)
    assert rc == 0 and err == "" and served[-1] == ("localhost", port)


# --- item 4: one output-folder rule: new or ours, never inside (or around) what is read ---------------------

def test_item4_predict_never_writes_into_a_foreign_folder_or_the_bundle(bundle, capsys, tmp_path):  # noqa: F811
    folder, _ = bundle
    img = image(tmp_path / "hand.png")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "overlay.png").write_bytes(b"my own figure")
    refused(capsys, "predict", img, "--checkpoint", folder, "--out", mine, match="was not written by hand-nas")
    assert (mine / "overlay.png").read_bytes() == b"my own figure"
    before = tree(folder)
    refused(capsys, "predict", img, "--checkpoint", folder, "--out", folder, match="or lies inside it")
    refused(capsys, "predict", img, "--checkpoint", folder, "--out", folder / "pred", match="or lies inside it")
    refused(capsys, "predict", img, "--checkpoint", folder, "--out", tmp_path, match="holds the input")
    assert tree(folder) == before
    for _ in range(2):  # a folder of its own making is replaced as a whole
        rc, out, err = cli(capsys, "predict", img, "--checkpoint", folder, "--out", tmp_path / "pred")
        assert rc == 0, err
    assert tree(tmp_path / "pred") == [".hand-nas", "left.obj", "overlay.png", "right.obj"]


def test_item4_compress_out_inside_its_checkpoint_refused_nothing_written(capsys, tmp_path):
    ck = checkpoint(tmp_path / "ck")
    before = tree(ck)
    refused(capsys, "compress", "--checkpoint", ck, "--out", ck / "compressed", match="or lies inside it")
    refused(capsys, "compress", "--checkpoint", ck, "--out", ck, match="or lies inside it")
    mine = tmp_path / "mine"
    (mine / "figs").mkdir(parents=True)
    refused(capsys, "compress", "--checkpoint", ck, "--out", mine, match="was not written by hand-nas")
    assert tree(ck) == before and tree(mine) == ["figs"]


def test_item4_other_writers_never_write_inside_what_they_read(capsys, tmp_path, synth_dir):
    """data prepare, supernet train and supernet export follow the same rule, before any work."""
    root = tmp_path / "ih26m"
    (root / "images").mkdir(parents=True)
    refused(capsys, "data", "prepare", "--root", root, "--split", "test", "--out", root / "prepared",
            match="or lies inside it")
    refused(capsys, "supernet", "train", "--space", "tiny", "--recipe", "smoke", "--data", synth_dir,
            "--out", synth_dir / "sn", match="or lies inside it")
    sn = tmp_path / "sn"
    sn.mkdir()
    (sn / "supernet.json").write_text("{}")
    refused(capsys, "supernet", "export", sn, "--out", sn / "ship", match="or lies inside it")
    assert list(root.iterdir()) == [root / "images"] and not (synth_dir / "sn").exists()


# --- item 5: heartbeat intervals bounded, and a trial judged by its own driver's interval -----------------

@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "1e6", "0.2"])
def test_item5_heartbeat_interval_bounded_where_parsed(capsys, tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    refused(capsys, "search", "--space", "tiny", "--local", "--heartbeat-s", value,
            match=f"--heartbeat-s: {float(value)!r}, expected a finite number of seconds in 1..3600")
    assert list(tmp_path.iterdir()) == []


def test_item5_staleness_is_judged_by_the_interval_the_trials_own_driver_declared(tmp_path):
    import time

    from hand_nas.search.space import load_space
    from hand_nas.search.storage import HEARTBEAT, StudyStore, read_records

    space = load_space("tiny")
    url = f"sqlite:///{tmp_path}/hb.db"
    with pytest.raises(HandNasError, match="heartbeat_s: 0"):
        StudyStore("s", url, space, heartbeat_s=0)
    a = StudyStore("s", url, space, heartbeat_s=60)
    slow, zero, dead = (a.ask().number for _ in range(3))
    a._live.clear()  # A stops beating; what each trial's beat says decides
    now = time.time()
    for number, beat in ((slow, [now - 100, 60.0, "a"]),    # 100 s < 3 x its own 60 s: alive
                         (zero, [now - 0.5, 0.0, "old"]),   # an interval of 0 is held to 1 s: 0.5 s is fine
                         (dead, [now - 200, 60.0, "a"])):   # 200 s > 180 s: its driver is gone
        a.storage.set_trial_system_attr(a._trial_id(number), HEARTBEAT, beat)
    b = StudyStore("s", url, space, heartbeat_s=1)  # a driver with a short interval of its own
    assert b.fail_stale() == 1
    states = {r.number: r.state for r in read_records("s", url)}
    assert states[dead] == "failed" and states[slow] == states[zero] == "running"
    a.close(), b.close()


# --- item 6: compress verifies a bundle as every other command does -----------------------------------------

def test_item6_compress_refuses_a_bundle_with_one_flipped_weight_byte(bundle, capsys, tmp_path):  # noqa: F811
    folder, _ = bundle
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01
    weights.write_bytes(bytes(data))
    out = tmp_path / "relaundered"
    refused(capsys, "compress", "--checkpoint", folder, "--out", out, "--finetune-steps", 0, "--qat-steps", 0,
            match="model.safetensors: sha256 differs from manifest.json")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".relaundered")]


# --- item 7: a shapes record cannot set attributes or sizes ----------------------------------------------------

@pytest.mark.parametrize("edit,match", [
    (lambda r: r["tensors"].update({k: [1_000_000] * len(v) for k, v in list(r["tensors"].items())[:1]}),
     "at most the configured"),
    (lambda r: r["modules"].update({"": {"forward": 3}}), "shapes.modules.''.'forward': not a width"),
    (lambda r: r["modules"].update({next(iter(r["modules"])): {"training": 1}}), "not a width of this module"),
    (lambda r: [a.update({k: 10 ** 9 for k in a}) for a in list(r["modules"].values())[:1]], "at most the configured"),
    (lambda r: r["tensors"].update({next(iter(r["tensors"])): [2.5]}), "shaped like"),
    (lambda r: r.update({"exec": 1}), "shapes: expected"),
])
def test_item7_shapes_record_is_read_through_an_allow_list_with_bounded_sizes(tmp_path, edit, match):
    from hand_nas.checkpoint import load_checkpoint, shape_record
    from hand_nas.models import build_model

    cfg = small_model()
    ck = checkpoint(tmp_path / "ck", cfg, shapes=shape_record(build_model(cfg)))
    load_checkpoint(ck)  # as written: fine
    config = json.loads((ck / "config.json").read_text())
    edit(config["shapes"])
    (ck / "config.json").write_text(json.dumps(config))
    with pytest.raises(HandNasError, match=match) as info:
        load_checkpoint(ck)
    assert "config.json: shapes" in str(info.value)


# --- item 8: non-finite weights are refused on load -----------------------------------------------------------

def test_item8_nan_weights_refused_naming_file_and_tensor(capsys, tmp_path):
    from safetensors.torch import load_file, save_file

    ck = checkpoint(tmp_path / "ck")
    state = load_file(str(ck / "model.safetensors"))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[key][0] = float("nan")
    save_file(state, str(ck / "model.safetensors"))
    match = f"model.safetensors: tensor {key}: 1 non-finite value(s)"
    refused(capsys, "evaluate", "--checkpoint", ck, "--data", tmp_path, match=match)
    refused(capsys, "predict", image(tmp_path / "x.png"), "--checkpoint", ck, "--out", tmp_path / "p", match=match)
    assert not (tmp_path / "p").exists()


# --- item 9: numbers bounded where they are parsed -----------------------------------------------------------

@pytest.mark.parametrize("argv,match", [
    (["search", "--space", "tiny", "--trials", "-1"], "--trials: -1, expected an integer in 1.."),
    (["search", "--space", "tiny", "--trials", "0", "--local"], "--trials: 0"),
    (["search", "--space", "tiny", "--workers", "0"], "--workers: 0, expected an integer in 1.."),
    (["search", "--space", "tiny", "--workers", "10000", "--trials", "20"], "--workers 10000: this machine holds"),
    (["search", "--space", "tiny", "--gpus-per-trial", "-1"], "--gpus-per-trial: -1.0, expected a finite number"),
    (["search", "--space", "tiny", "--gpus-per-trial", "nan"], "--gpus-per-trial: nan"),
    (["search", "--space", "tiny", "--cpus-per-trial", "0"], "--cpus-per-trial: 0.0"),
    (["data", "synth", "--n", "4", "--size", "7", "--out", "s"], "--size: 7, expected an integer in 32..1024"),
    (["data", "synth", "--n", "4", "--size", "100", "--out", "s"], "--size: 100, expected a multiple of 32"),
    (["data", "synth", "--n", "-3", "--out", "s"], "--n: -3, expected an integer in 1.."),
    (["data", "synth", "--n", "4", "--workers", "0", "--out", "s"], "--workers: 0"),
])
def test_item9_numbers_refused_before_anything_runs(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    refused(capsys, *argv, match=match)
    assert list(tmp_path.iterdir()) == []


def test_item9_workers_cap_names_what_the_machine_holds_and_gpus_it_lacks(capsys, tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    cpus = len(os.sched_getaffinity(0))
    line = refused(capsys, "search", "--space", "tiny", "--workers", cpus + 1, match=f"--workers {cpus + 1}: ")
    assert "CPU(s) at --cpus-per-trial 1" in line or "GiB available" in line
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    refused(capsys, "search", "--space", "tiny", "--gpus-per-trial", "1",
            match="--gpus-per-trial 1: this machine has 0 GPU")
    assert list(tmp_path.iterdir()) == []


# --- item 10: read-only commands create nothing ----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["trial", "show", "s", "0"], ["report", "--study", "s", "--out", "r"], ["dashboard", "--study", "s"],
    ["compress", "--study", "s", "--out", "b"], ["retrain", "--study", "s", "--recipe", "demo", "--out", "r"],
])
@pytest.mark.parametrize("url", ["sqlite:///no/such/deep/dir/x.db", "journal:///{tmp}/no/such/x.journal"])
def test_item10_read_only_commands_create_no_database_or_folder(capsys, tmp_path, monkeypatch, argv, url):
    monkeypatch.chdir(tmp_path)
    url = url.format(tmp=tmp_path)
    refused(capsys, *argv, "--storage", url, match="not found (a command that only reads a study creates no database")
    assert list(tmp_path.iterdir()) == []


# --- the tracebacks of the issue, each one line now --------------------------------------------------------------

def test_traceback_corrupt_sqlite_page_header_is_one_line(capsys, tmp_path, study_db):
    import optuna

    optuna.load_study(study_name="s", storage=study_db).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    path = Path(study_db[len("sqlite:///"):])
    data = bytearray(path.read_bytes())
    data[4096] ^= 0xFF  # the b-tree page type byte of page 2's header
    path.write_bytes(bytes(data))
    refused(capsys, "trial", "show", "s", "0", "--storage", study_db, match="malformed")


def test_traceback_storage_path_under_a_file_is_one_line(capsys, tmp_path, synth_dir):
    (tmp_path / "file").write_text("x")
    url = f"sqlite:///{tmp_path / 'file' / 'x.db'}"
    refused(capsys, "search", "--space", "tiny", "--local", "--pruner", "none", "--data", synth_dir,
            "--out", tmp_path / "runs", "--storage", url, match=f"{tmp_path / 'file'} is a file, not a folder")
    refused(capsys, "trial", "show", "s", "0", "--storage", url, match="not found")


def test_traceback_disk_full_during_search_is_one_line_naming_the_storage(capsys, tmp_path, synth_dir, monkeypatch):
    """SQLite's own 'database or disk is full' (its page limit reached mid-search), trials stubbed to fail fast."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from hand_nas.search import runner
    from hand_nas.search.storage import read_records

    monkeypatch.setattr(runner, "_evaluate", lambda *a, **k: {"state": "failed", "error": "stub: not trained"})
    url = f"sqlite:///{tmp_path / 'full.db'}"
    argv = ["search", "--space", "tiny", "--local", "--pruner", "none", "--data", synth_dir, "--out", tmp_path / "runs",
            "--storage", url, "--sampler", "random", "--study", "s", "--budget", 10, "--quiet"]
    assert cli(capsys, *argv, "--trials", 1)[0] == 0  # the study exists; then the disk fills

    def no_growth(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(Engine, "connect", no_growth)
    try:
        line = refused(capsys, *argv, "--trials", 500, match=f"storage {url}: disk full (database or disk is full)")
    finally:
        event.remove(Engine, "connect", no_growth)
    assert "nothing half-written" in line
    assert 1 < len(read_records("s", url)) < 500  # the study still opens, with what was written before


def test_traceback_disk_full_during_train_is_one_line_naming_the_folder(capsys, tmp_path, synth_dir, monkeypatch):
    import safetensors.torch

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump({"model": small_model().to_dict()}))
    out = tmp_path / "ck"
    refused(capsys, "train", cfg, "--data", synth_dir, "--steps", 1, "--batch", 2, "--resolution", 64,
            "--eval-every", 0, "--out", out, "--quiet", match=f"{out}: disk full while writing it")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".ck.")]


def test_traceback_disk_full_during_compress_is_one_line(capsys, tmp_path, synth_dir, monkeypatch):
    from compress import onnx_export

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(onnx_export, "export_fp32", full)
    ck = checkpoint(tmp_path / "ck", data=synth_dir)
    out = tmp_path / "bundle"
    refused(capsys, "compress", "--checkpoint", ck, "--out", out, "--size", 64, match=f"{out} (or the files beside "
            "it): disk full ([Errno 28] No space left on device)")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle.")]


def test_traceback_synth_n_0_predict_out_under_a_file_home_a_file(capsys, tmp_path, monkeypatch, bundle):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    refused(capsys, "data", "synth", "--n", 0, "--out", "s", match="--n: 0, expected an integer in 1..")
    (tmp_path / "notes.txt").write_text("x")
    img = image(tmp_path / "hand.png")
    refused(capsys, "predict", img, "--checkpoint", bundle[0], "--out", tmp_path / "notes.txt" / "pred",
            match=f"{tmp_path / 'notes.txt'} is a file, not a folder")
    monkeypatch.setenv("HAND_NAS_HOME", str(tmp_path / "notes.txt"))
    refused(capsys, "hand", "info", match="HAND_NAS_HOME")
    refused(capsys, "data", "synth", "--n", 4, "--size", 64, "--out", "s2", match="HAND_NAS_HOME")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "hand.png", "notes.txt"]


def test_environment_errors_map_to_one_line_and_bugs_keep_their_traceback():
    from argparse import Namespace

    from hand_nas.cli import environment_error

    args = Namespace(storage="sqlite:///s.db", out="o")
    assert environment_error(OSError(errno.ENOSPC, "No space left on device"), args).startswith("o (or the files")
    under_a_file = NotADirectoryError(errno.ENOTDIR, "Not a directory", "/a/b")
    assert environment_error(under_a_file, args) == "/a/b: Not a directory"
    assert environment_error(ValueError("a bug"), args) is None and environment_error(KeyError("x"), args) is None
