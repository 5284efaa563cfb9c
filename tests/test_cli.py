from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "hand_nas.cli", *args], capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_synth_reports_throughput_and_show_writes_png(tmp_path, hand_home):
    r = run("data", "synth", "--n", "4", "--size", "64", "--out", str(tmp_path / "s"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "images/s" in r.stdout
    r = run("data", "show", str(tmp_path / "s"), "--out", str(tmp_path / "sheet.png"), "--count", "4")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sheet.png").stat().st_size > 1000


@pytest.mark.slow
def test_bad_input_is_one_line_and_nonzero(tmp_path, hand_home):
    r = run("hand", "info", "--mano", str(tmp_path / "missing"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hand-nas: error:") and str(tmp_path / "missing") in lines[0]
    r = run("data", "show", str(tmp_path), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "meta.json: missing" in r.stderr
    assert not (tmp_path / "x.png").exists()
