"""Issue 14, as a hostile or careless user would try it: folders never lost, bundles never unverified,
bounded inputs, one-line errors. Each test names the issue item it reproduces (``item N``)."""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from hand_nas.atomic import MARKER, atomic_dir, atomic_file, clean_stale, confined, scratch_dir
from hand_nas.errors import HandNasError, short
from model_configs import small_model

REPO = Path(__file__).resolve().parent.parent


def cli(capsys, *argv) -> tuple[int, str, str]:
    from hand_nas.cli import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def refused(capsys, *argv, match: str = "") -> str:
    """Run the CLI; it must exit 2 with exactly one stderr line (containing ``match``); returns that line."""
    rc, _, err = cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("hand-nas: error: "), (rc, err)
    assert match in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def model_yaml(path: Path, cfg, **changes) -> Path:
    """A model config file: ``cfg`` with dotted-path changes applied."""
    d = cfg.to_dict()
    for key, value in changes.items():
        cur = d
        *head, last = key.split(".")
        for part in head:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        cur[int(last) if isinstance(cur, list) else last] = value
    path.write_text(yaml.safe_dump({"model": d}))
    return path


def space_file(path: Path, **over) -> Path:
    """A search space around lwa_hand (tiny proxy) with top-level fields replaced by ``over``."""
    raw = {"name": "s", "base": "lwa_hand", "budget": {"gmacs": 0.47},
           "proxy": {"resolution": 64, "steps": 2, "batch": 2, "eval_every": 0},
           "params": {"encoder.tokens": {"choices": [2, 4]}}}
    raw.update(over)
    path.write_text(json.dumps(raw) if path.suffix == ".json" else yaml.safe_dump(raw))
    return path


# --- item 3: a user's folder is never replaced; paths stay in their root; leftovers are cleaned -----------

def test_item3_train_out_existing_folder_with_files_refused_and_untouched(capsys, tmp_path):
    out = tmp_path / "my_thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work")
    (out / "figs").mkdir()
    (out / "figs" / "a.png").write_bytes(b"\x89PNG")
    before = snapshot(out)
    refused(capsys, "train", "lwa_hand", "--out", out, "--steps", 1, match="was not written by hand-nas")
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["my_thesis"]  # no temporary folder either


def test_item3_atomic_dir_replaces_only_marked_folders_and_only_with_overwrite(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(HandNasError, match="was not written by hand-nas"):
        with atomic_dir(foreign, overwrite=True):
            raise AssertionError("the block must not run")
    assert (foreign / "keep.txt").read_text() == "mine"

    ours = tmp_path / "ours"
    with atomic_dir(ours) as tmp:
        assert tmp.parent == tmp_path  # beside the destination, never the system temp dir
        (tmp / "a.txt").write_text("1")
    assert (ours / MARKER).is_file()
    with pytest.raises(HandNasError, match="pass --overwrite"):
        with atomic_dir(ours):
            pass
    with atomic_dir(ours, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in ours.iterdir()) == [MARKER, "b.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty) as tmp:  # an empty folder holds nothing to lose
        (tmp / "c.txt").write_text("3")
    assert (empty / "c.txt").is_file()

    link = tmp_path / "link"
    link.symlink_to(ours)
    with pytest.raises(HandNasError, match="symbolic link"):
        with atomic_dir(link, overwrite=True):
            pass
    with pytest.raises(HandNasError, match="is a folder"):
        with atomic_file(foreign):
            pass


def test_item3_checkpoints_carry_the_marker_and_a_foreign_folder_is_refused(tmp_path, hand_home):
    from hand_nas.checkpoint import load_checkpoint, save_checkpoint
    from hand_nas.models import build_model

    cfg = small_model()
    model = build_model(cfg)
    ck = save_checkpoint(tmp_path / "ck", model, cfg)
    assert (ck / MARKER).is_file()
    save_checkpoint(ck, model, cfg, note="again")  # our own checkpoint: replaced as a whole
    assert load_checkpoint(ck)[1]["note"] == "again"
    user = tmp_path / "user"
    user.mkdir()
    (user / "config.json").write_text("{}")
    with pytest.raises(HandNasError, match="was not written by hand-nas"):
        save_checkpoint(user, model, cfg)
    assert (user / "config.json").read_text() == "{}"


def test_item3_confined_refuses_dotdot_absolute_and_escaping_links(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    assert confined(root, "study", "trial_0001") == root / "study" / "trial_0001"
    for bad in ("../../x", "a/../../x", "..", "/etc", ""):
        with pytest.raises(HandNasError):
            confined(root, bad, "trial_0001")
    (root / "evil").symlink_to(tmp_path.parent)
    with pytest.raises(HandNasError, match="outside"):
        confined(root, "evil", "trial_0001")
    (root / "fine").symlink_to(root / "study", target_is_directory=True)  # a link that stays inside is allowed
    assert confined(root, "fine") == root / "fine"


def test_item3_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    from hand_nas.atomic import _host

    target = tmp_path / "bundle"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = [tmp_path / f".bundle.tmp-{_host()}-{dead}-1a2b3c4d", tmp_path / f".bundle.scratch-{_host()}-{dead}-ff00",
             tmp_path / ".bundle.tmp-k2j4h5g6"]  # the last: an older hand-nas's mkdtemp name
    live = [tmp_path / f".bundle.tmp-{_host()}-1-abcd", tmp_path / f".bundle.tmp-otherhost-{dead}-abcd"]
    unrelated = [tmp_path / ".bundle.tmp-notes.txt", tmp_path / ".bundles.tmp-x-1-a", tmp_path / "bundle.tmp-zz"]
    for p in stale + live + unrelated:
        p.mkdir()
        (p / "big.onnx").write_bytes(b"0" * 10)
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("x")
    left = {p.name for p in tmp_path.iterdir()}
    assert not {p.name for p in stale} & left
    assert {p.name for p in live + unrelated} <= left


# --- item 4: a bundle must carry its manifest; links, subfolders, unlisted files refused ---------------------

@pytest.fixture
def bundle(tmp_path, hand_home):
    """A bundle as compress writes it (checkpoint files, ONNX placeholders, report, manifest), in a second."""
    from compress.bundle import write_manifest
    from hand_nas.checkpoint import write_checkpoint_files
    from hand_nas.config import TrainCfg
    from hand_nas.models import build_model

    cfg = small_model()
    folder = tmp_path / "bundle"
    with atomic_dir(folder) as tmp:
        write_checkpoint_files(tmp, build_model(cfg), cfg, compress={"int8": "auto"}, input_size=128,
                               train=TrainCfg(resolution=128).to_dict(), data=str(tmp_path / "nodata"),
                               metrics={"mpjpe_mm": 40.0, "mpvpe_mm": 41.0})
        (tmp / "model.onnx").write_bytes(b"fp32 graph")
        (tmp / "model.int8.onnx").write_bytes(b"int8 graph")
        (tmp / "report.json").write_text(json.dumps({"rows": [{"model": "pruned", "mpjpe_mm": 40.0}]}))
        sha = write_manifest(tmp)
    return folder, sha


def test_item4_manifest_sha256_is_returned_and_checkable(bundle):
    from compress.bundle import manifest_sha256, open_bundle, sha256, verify_bundle

    folder, sha = bundle
    assert sha == sha256(folder / "manifest.json") == manifest_sha256(folder) and len(sha) == 64
    assert MARKER in json.loads((folder / "manifest.json").read_text())["files"]
    model, config, report = open_bundle(folder, expected_sha256=sha)
    assert config["compress"] == {"int8": "auto"} and report["rows"][0]["mpjpe_mm"] == 40.0
    with pytest.raises(HandNasError, match="is not the expected"):
        verify_bundle(folder, expected_sha256="0" * 64)


def test_item4_evaluate_and_predict_refuse_a_bundle_without_manifest(bundle, capsys, tmp_path):
    folder, _ = bundle
    (folder / "manifest.json").unlink()
    (folder / "report.json").write_text(json.dumps({"rows": [{"mpjpe_mm": 1.23}]}))  # the edit
    refused(capsys, "evaluate", "--checkpoint", folder, "--data", tmp_path, match="manifest.json: missing")
    img = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (64, 64)).save(img)
    refused(capsys, "predict", img, "--checkpoint", folder, match="manifest.json: missing")
    # stripped down to the checkpoint files, it still says it came from a compression run
    for name in ("report.json", "model.onnx", "model.int8.onnx"):
        (folder / name).unlink()
    refused(capsys, "evaluate", "--checkpoint", folder, "--data", tmp_path, match="manifest.json: missing")


def test_item4_symlinks_subfolders_unlisted_and_changed_files_refused(bundle, tmp_path):
    import shutil

    from compress.bundle import verify_bundle

    src, _ = bundle
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((src / "model.onnx").read_bytes())

    def fresh(name):
        f = tmp_path / name
        shutil.copytree(src, f)
        return f

    f = fresh("link")
    (f / "model.onnx").unlink()
    (f / "model.onnx").symlink_to(outside)  # same bytes, but outside the bundle
    with pytest.raises(HandNasError, match="symbolic link"):
        verify_bundle(f)
    f = fresh("sub")
    (f / "extra").mkdir()
    (f / "extra" / "payload.onnx").write_bytes(b"x")
    with pytest.raises(HandNasError, match="subfolder"):
        verify_bundle(f)
    f = fresh("unlisted")
    (f / "notes.txt").write_text("x")
    with pytest.raises(HandNasError, match="notes.txt: not listed"):
        verify_bundle(f)
    f = fresh("zeroed")
    weights = f / "model.safetensors"
    data = bytearray(weights.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    assert any(data[header:])
    data[header:] = bytes(len(data) - header)  # every weight zeroed, the header kept
    weights.write_bytes(bytes(data))
    with pytest.raises(HandNasError, match="model.safetensors: sha256 differs"):
        verify_bundle(f)
    f = fresh("escape")
    manifest = json.loads((f / "manifest.json").read_text())
    manifest["files"]["../outside.onnx"] = manifest["files"].pop("model.onnx")
    (f / "manifest.json").write_text(json.dumps(manifest))
    (f / "model.onnx").unlink()
    with pytest.raises(HandNasError, match="listed in manifest.json but missing"):
        verify_bundle(f)


# --- item 5: bounded inputs ----------------------------------------------------------------------------------

def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The issue's ~1 kB YAML: nested aliases that expand to width**levels list elements."""
    inner = "&a0 [" + ",".join(["4"] * width) + "]"
    for i in range(1, levels + 1):
        inner = f"&a{i} [{inner}" + f",*a{i - 1}" * (width - 1) + "]"
    return inner


def test_item5_yaml_alias_bomb_is_refused_fast_with_a_short_line(capsys, tmp_path):
    bomb = alias_bomb()
    path = tmp_path / "bomb.yaml"
    path.write_text("name: bomb\nbase: lwa_hand\nbudget: {gmacs: 0.47}\nparams:\n"
                    f"  encoder.tokens: {{choices: {bomb}}}\n")
    assert path.stat().st_size < 1200
    t0 = time.perf_counter()
    line = refused(capsys, "search", "--space", path, "--local", match="aliases (*name) are not allowed")
    assert time.perf_counter() - t0 < 5 and len(line) < 400
    name_bomb = tmp_path / "name.yaml"  # the same trick in `name`
    name_bomb.write_text(f"name: {bomb}\nbase: lwa_hand\nbudget: {{gmacs: 0.47}}\nparams: {{}}\n")
    refused(capsys, "search", "--space", name_bomb, "--local", match="aliases")


def test_item5_name_length_and_charset_bounded(tmp_path):
    from hand_nas.search.space import load_space

    with pytest.raises(HandNasError, match="name: 961 characters, at most 64"):
        load_space(space_file(tmp_path / "a.yaml", name="n" * 961))
    for bad in ("../../x", "a/b", ".hidden", "a b", ""):
        with pytest.raises(HandNasError, match="name: "):
            load_space(space_file(tmp_path / "b.yaml", name=bad))
    assert load_space(space_file(tmp_path / "c.yaml", name="lwa-v2_small.1")).name == "lwa-v2_small.1"


def test_item5_200000_choices_and_huge_ranges_refused_in_seconds(tmp_path):
    from hand_nas.search.space import load_space

    t0 = time.perf_counter()
    with pytest.raises(HandNasError, match="200000 choices, at most 1000"):
        load_space(space_file(tmp_path / "c.json", params={"encoder.tokens": {"choices": [2] * 200_000}}))
    with pytest.raises(HandNasError, match=r"bridge.blocks: value \d+ gives an invalid model .*"
                       r"bridge.blocks: \d+, expected an integer in 1\.\.16"):
        load_space(space_file(tmp_path / "r.yaml", params={"bridge.blocks": {"low": 1, "high": 100_000_000}}))
    with pytest.raises(HandNasError, match="encoder.stages"):
        load_space(space_file(tmp_path / "w.yaml", params={"encoder.stages.*.width": {"scale": [1e6]}}))
    with pytest.raises(HandNasError, match=r"\.round: expected an integer in 1\.\.1024"):
        load_space(space_file(tmp_path / "z.yaml", params={"encoder.stages.*.width": {"scale": [1.0], "round": 0}}))
    with pytest.raises(HandNasError, match="low/high must be finite"):
        load_space(space_file(tmp_path / "n.yaml", params={"graph.dropout": {"low": 0.0, "high": float("nan")}}))
    assert time.perf_counter() - t0 < 20


def test_item5_costing_and_validating_never_loop_on_huge_counts():
    from hand_nas.config import replace
    from hand_nas.cost import analytic
    from hand_nas.models.validate import problems

    t0 = time.perf_counter()
    for field, value in (("bridge.blocks", 100_000_000), ("graph.dims", (10 ** 9, 16, 16, 16)),
                         ("encoder.tokens", 10 ** 9), ("graph.heads", 0)):
        cfg = replace(small_model(), **{field: value})
        assert any(p.startswith(field) for p in problems(cfg)), field
        with pytest.raises(HandNasError, match=field.replace(".", r"\.")):
            analytic.model_macs(cfg)
    assert time.perf_counter() - t0 < 2


def test_item5_error_messages_are_bounded():
    huge = [[list(range(1000))] * 1000] * 1000  # 10^9 elements sharing a few lists, like an alias bomb
    t0 = time.perf_counter()
    assert len(short(huge)) < 220 and time.perf_counter() - t0 < 1
    assert len(short("x" * 10 ** 6)) < 250
    msg = str(HandNasError("f.yaml: field: " + "y" * 10 ** 6 + "\nsecond line"))
    assert len(msg) < 1100 and "\n" not in msg and msg.startswith("f.yaml: field: ")


# --- item 6: silent wrong results --------------------------------------------------------------------------------

def png_bytes(w: int, h: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_item6_16bit_png_is_scaled_not_white(tmp_path):
    from PIL import Image

    from hand_nas.predict import load_image

    grey = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    img = load_image(tmp_path / "g16.png", 64)
    assert img.dtype == np.uint8 and img.shape == (64, 64, 3)
    assert (img == 255).mean() < 0.01  # Pillow's own convert('RGB') makes ~100% of it 255
    np.testing.assert_allclose(img[..., 0], np.round(grey / 257.0), atol=2)
    rows = b"".join(b"\x00" + np.full((8, 3), 40000, dtype=">u2").tobytes() for _ in range(8))
    (tmp_path / "rgb16.png").write_bytes(png_bytes(8, 8, 16, 2, rows))  # 16-bit RGB
    assert abs(int(load_image(tmp_path / "rgb16.png", 8)[0, 0, 0]) - round(40000 / 257)) <= 1


def test_item6_decompression_bomb_png_is_one_line(tmp_path, capsys):
    from hand_nas.predict import load_image

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(15000, 15000, 1, 0, b""))  # the 15000^2, as a 100-byte header
    with pytest.raises(HandNasError, match="too large to decode safely"):
        load_image(bomb, 128)
    ck = tmp_path / "ck"
    from hand_nas.checkpoint import save_checkpoint
    from hand_nas.models import build_model

    save_checkpoint(ck, build_model(small_model()), small_model(), input_size=128)
    refused(capsys, "predict", bomb, "--checkpoint", ck, match="too large to decode safely")
    refused(capsys, "predict", bomb, "--checkpoint", ck, "--size", 0, match="--size: 0, expected an integer in 32..1024")


@pytest.mark.parametrize("steps", [-5, 0])
def test_item6_train_steps_below_one_refused(capsys, tmp_path, steps):
    out = tmp_path / "ck"
    refused(capsys, "train", "lwa_hand", "--steps", steps, "--out", out, match=f"--steps: {steps}, expected")
    assert not out.exists()


@pytest.mark.parametrize("arg, match", [("steps", "expected FIELD=VALUE"), ("stpes=10", "stpes: not a training field"),
                                        ("steps=-1", "steps")])
def test_proxy_check_variant_refused_before_any_run(capsys, tmp_path, hand_home, arg, match):
    out = tmp_path / "pc.json"
    refused(capsys, "proxy", "check", "--space", "tiny", "--proxy-set", arg, "--out", out, match=match)
    assert not out.exists()


# --- item 7: NaN, inf, zero budgets ---------------------------------------------------------------------------

@pytest.mark.parametrize("budget", [float("nan"), float("inf"), 0, -1.0])
def test_item7_non_finite_or_non_positive_budget_fails_validation(tmp_path, budget):
    from hand_nas.search.space import budget_problem, load_space

    with pytest.raises(HandNasError, match="budget.gmacs: expected a finite number of GMACs above 0"):
        load_space(space_file(tmp_path / "s.yaml", budget={"gmacs": budget}))
    assert budget_problem(budget, "--budget").startswith("--budget: expected a finite number")


def test_item7_cli_budget_nan_refused(capsys, tmp_path):
    refused(capsys, "search", "--space", space_file(tmp_path / "s.yaml"), "--budget", "nan", "--local",
            "--storage", f"sqlite:///{tmp_path / 'db.sqlite'}", match="--budget: expected a finite number")
    assert not (tmp_path / "db.sqlite").exists()


# --- item 8: one-line errors where there were tracebacks -----------------------------------------------------

def test_item8_non_utf8_yaml_and_json_are_one_line(capsys, tmp_path):
    for name in ("m.yaml", "m.json"):
        path = tmp_path / name
        path.write_bytes(b'{"model": {"name": "caf\xe9"}}')
        refused(capsys, "cost", path, match=f"{name}: not UTF-8 text (byte 0xe9 at offset 23)")
    space = tmp_path / "s.yaml"
    space.write_bytes(b"name: \xff\xfe\n")
    refused(capsys, "search", "--space", space, "--local", match="not UTF-8")


@pytest.mark.parametrize("field,value,match", [
    ("encoder.stages.1.width", -16, "encoder.stages[1].width: -16, expected an integer in 1..4096"),
    ("encoder.tokens", 0, "encoder.tokens: 0, Mobile-Former uses 1..6"),
    ("graph.dropout", float("nan"), "graph.dropout: nan, expected a finite number"),
    ("bridge.blocks", 100_000_000, "bridge.blocks: 100000000, expected an integer in 1..16"),
])
def test_item8_cost_and_train_validate_config_files(capsys, tmp_path, field, value, match):
    path = model_yaml(tmp_path / "m.yaml", small_model("mobile_former", "light_cross", "separable"), **{field: value})
    refused(capsys, "cost", path, match=match)
    refused(capsys, "train", path, "--steps", 1, match=match)


@pytest.mark.parametrize("argv,match", [
    (["cost", "lwa_hand", "--size", 100], "--size: 100, expected a multiple of 32"),
    (["cost", "lwa_hand", "--size", 0], "--size: 0, expected an integer in 32..1024"),
    (["cost", "lwa_hand", "--size", 100_000], "--size: 100000"),
    (["cost", "lwa_hand", "--threads", 0], "--threads: 0"),
    (["train", "lwa_hand", "--resolution", 100], "--resolution: 100, expected a multiple of 32"),
    (["train", "lagc_hand", "--resolution", 32], "--resolution: 32, expected a multiple of 64 (MobileViT"),
    (["train", "lwa_hand", "--batch", 0], "--batch: 0, expected an integer in 1..4096"),
    (["train", "lwa_hand", "--lr", "nan"], "--lr: nan"),
    (["train", "lwa_hand", "--eval-every", -1], "--eval-every: -1"),
])
def test_item8_cli_numbers_are_validated(capsys, argv, match):
    refused(capsys, *argv, match=match)


def test_item8_model_input_size_rules_match_what_the_network_accepts(hand_home):
    import torch

    from hand_nas.config import replace
    from hand_nas.models import build_model
    from hand_nas.models.validate import input_problems

    for cfg in (replace(small_model(), **{"bridge.image_tokens": 4}),
                small_model("mobilevit_v3", "light_cross", "separable")):
        model = build_model(cfg).eval()
        for size in (64, 96, 128):
            try:
                with torch.no_grad():
                    model(torch.zeros(1, 3, size, size))
                runs = True
            except Exception:  # noqa: BLE001 (any failure of the forward pass)
                runs = False
            assert runs == (not input_problems(cfg, size)), (cfg.name, size)


def test_item8_dashboard_on_a_busy_port_is_one_line_before_listening(capsys, tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the test's own set-up line is not the CLI's output
    optuna.create_study(study_name="s", storage=storage)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, out, err = cli(capsys, "dashboard", "--study", "s", "--storage", storage, "--port", port)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and f"127.0.0.1:{port}: cannot listen" in err


# --- item 9: kill -9 leaves nothing that the next run does not clean ----------------------------------------

def test_item9_kill9_leftovers_sit_beside_out_and_go_on_the_next_run(tmp_path):
    out = tmp_path / "bundle"
    code = ("import os, signal, sys; from hand_nas.atomic import atomic_dir, scratch_dir\n"
            f"with atomic_dir({str(out)!r}) as t, scratch_dir({str(out)!r}) as s:\n"
            "    (t / 'model.onnx').write_bytes(b'0' * 1000); (s / 'ort.onnx').write_bytes(b'0' * 1000)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path)
    assert r.returncode == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir())
    assert [n.split("-")[0] for n in left] == [".bundle.scratch", ".bundle.tmp"] and not out.exists()
    with scratch_dir(out) as s:  # what compress opens first
        assert s.parent == tmp_path
        assert sorted(p.name for p in tmp_path.iterdir()) == [s.name]
    assert list(tmp_path.iterdir()) == []
    assert clean_stale(out) == []


def test_item9_library_temporaries_inside_compress_land_in_the_scratch_beside_out(tmp_path):
    import tempfile

    from hand_nas.atomic import system_temp_in

    out = tmp_path / "bundle"
    system = tempfile.gettempdir()
    with scratch_dir(out) as scratch, system_temp_in(scratch):
        with tempfile.TemporaryDirectory() as t:  # as onnx_export's helpers create theirs (no dir=)
            assert Path(t).parent == scratch
        kept = tempfile.mkdtemp()  # one a library forgets: dies with the scratch
    assert tempfile.gettempdir() == system and not Path(kept).exists() and list(tmp_path.iterdir()) == []
    source = (REPO / "compress" / "pipeline.py").read_text()  # compress opens every scratch that way
    assert "tempfile" not in source and source.count("scratch_dir(out) as") == source.count("system_temp_in(") == 2


@pytest.mark.parametrize("option,value,expected", [
    ("--target-gmacs", "nan", "finite number"), ("--target-gmacs", "0", "finite number"),
    ("--ratio", "1.5", "finite number"), ("--bits", "0", "integer in 2..8"),
    ("--finetune-steps", "-3", "integer"), ("--size", "10", "integer in 32..4096")])
def test_item8_compress_numbers_refused_before_anything_runs(capsys, tmp_path, option, value, expected):
    out = tmp_path / "bundle"
    err = refused(capsys, "compress", "--checkpoint", tmp_path / "missing", "--out", out, option, value,
                  match=f"{option}: {value}")
    assert expected in err and not out.exists()


@pytest.mark.parametrize("argv,match", [
    (["search", "--space", "tiny", "--precision", "fp16", "--local"], "--precision fp16: needs a CUDA device"),
    (["search", "--space", "tiny", "--device", "tpu", "--local"], "--device 'tpu': expected auto, cpu"),
    (["search", "--space", "tiny", "--noise-factor", "-1", "--local"], "--noise-factor: -1"),
    (["compress", "--checkpoint", "x", "--out", "y", "--precision", "int4"], "--precision 'int4': expected one of"),
])
def test_training_options_of_search_and_compress_refused_before_anything_runs(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    refused(capsys, *argv, match=match)
    assert list(tmp_path.iterdir()) == []
