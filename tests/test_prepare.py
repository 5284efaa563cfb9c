"""`data prepare` at scale: same bytes for any worker count, resume after SIGKILL, dark rule, permissions, memory."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hand_nas.data.interhand import is_dark, prepare
from hand_nas.data.resumable import LOG, partial_dir
from hand_nas.data.samples import SampleWriter, field_specs, open_samples
from hand_nas.errors import HandNasError


def folder_digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def tree24(tmp_path_factory, hand_home):
    """24 interacting images (3 of them dark) plus the mock's extra annotations (one more dark)."""
    from hand_nas.data.interhand_mock import write_mock_interhand

    root = tmp_path_factory.mktemp("ih24")
    info = write_mock_interhand(root, split="test", captures=2, frames=3, cameras=4, seed=1, dark_every=8)
    return root, info


@pytest.fixture(scope="module")
def reference(tree24, tmp_path_factory):
    """An uninterrupted one-worker run, the bytes every other run must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "test"
    counts = prepare(tree24[0], out, split="test", progress=False, chunk=5)
    return out, counts


def test_reference_run_drops_the_dark_images(reference, tree24):
    out, counts = reference
    assert (counts["selected"], counts["written"], counts["dropped_dark"]) == (25, 21, 4)
    ids = json.loads((out / "source_ids.json").read_text())
    assert not set(ids) & set(tree24[1]["dark"]) and len(ids) == 21
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{k}.npy" for k in field_specs(1, 1)] + ["meta.json", "source_ids.json"])  # no build files left
    assert not partial_dir(out).exists()


@pytest.mark.slow
def test_two_workers_and_other_chunks_write_the_same_bytes(reference, tree24, tmp_path):
    ref, _ = reference
    prepare(tree24[0], tmp_path / "w2", split="test", progress=False, chunk=5, workers=2)
    prepare(tree24[0], tmp_path / "c64", split="test", progress=False, chunk=64)
    assert folder_digest(tmp_path / "w2") == folder_digest(ref)
    assert folder_digest(tmp_path / "c64") == folder_digest(ref)


def _write_lines(log: Path) -> int:
    try:
        return sum('"write"' in line for line in log.read_text().splitlines())
    except FileNotFoundError:
        return 0


def test_sigkill_mid_run_then_resume_gives_identical_files(reference, tree24, tmp_path):
    import hand_nas

    ref, _ = reference
    out = tmp_path / "killed"
    log = partial_dir(out) / LOG
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(hand_nas.__file__).parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    code = ("import sys; from hand_nas.data.interhand import prepare; "
            "prepare(sys.argv[1], sys.argv[2], split='test', progress=False, chunk=1)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tree24[0]), str(out)], env=env)
    deadline = time.monotonic() + 60
    while _write_lines(log) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = _write_lines(log)
    assert 3 <= done < 21, f"the kill should land mid-run, after {done} of 21 chunks"
    assert not out.exists()  # nothing half-written at the destination
    counts = prepare(tree24[0], out, split="test", progress=False, chunk=1)
    assert counts["resumed"] and counts["written"] == 21
    assert folder_digest(out) == folder_digest(ref)


def test_resume_refuses_other_inputs_and_no_resume_starts_over(tree24, tmp_path):
    out = tmp_path / "o"
    build = partial_dir(out)
    build.mkdir()
    (build / "build-state.json").write_text(json.dumps({"builder": "interhand-prepare/1", "size": 128}))
    with pytest.raises(HandNasError, match="--no-resume"):
        prepare(tree24[0], out, split="test", progress=False, limit=4)
    prepare(tree24[0], out, split="test", progress=False, limit=4, resume=False)
    assert len(open_samples(out)) == 4 and not build.exists()


def test_dark_rule_is_the_mean_over_all_channels(interhand_tree, tmp_path):
    from PIL import Image

    green = np.zeros((8, 8, 3), np.uint8)
    green[..., 1] = 20  # grey level 0.587 * 20 = 11.7 (kept by a grey rule), channel mean 6.7: dark
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 2] = 40  # grey level 4.6 (dropped by a grey rule), channel mean 13.3: kept
    assert is_dark(green) and not is_dark(blue)
    assert is_dark(np.full((4, 4, 3), 9.9)) and not is_dark(np.full((4, 4, 3), 10.0))

    root = tmp_path / "ih"
    shutil.copytree(interhand_tree[0], root)
    images = sorted((root / "images" / "test").rglob("image*.jpg"))
    images = [p for p in images if "_" not in p.stem]  # the 8 plain interacting images
    for path, colour in ((images[0], (0, 20, 0)), (images[1], (0, 0, 40))):
        Image.fromarray(np.full((512, 334, 3), colour, np.uint8)).save(path, quality=97)
    counts = prepare(root, tmp_path / "out", split="test", progress=False)
    ids = json.loads((tmp_path / "out" / "source_ids.json").read_text())
    assert counts["dropped_dark"] == 2  # the mock's dark copy and the green frame
    assert not any(str(images[0].relative_to(root / "images")) == sid for sid in ids)
    assert any(str(images[1].relative_to(root / "images")) == sid for sid in ids)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_permissions_follow_the_umask(interhand_tree, tmp_path, umask):
    old = os.umask(umask)
    try:
        out = tmp_path / "out"
        prepare(interhand_tree[0], out, split="test", progress=False, limit=2)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path.name


def test_writer_close_keeps_a_prefix_without_copying(tmp_path):
    import tracemalloc

    n, size = 120, 256  # images.npy alone is 23.6 MB
    writer = SampleWriter(tmp_path, n, size)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        writer.put(i, source_id=str(i), images=images[i])
    tracemalloc.start()
    writer.close({"source": "test"}, count=100)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000, peak  # the old np.array(arr[:count]) copy was ~20 MB here
    s = open_samples(tmp_path)
    assert len(s) == 100 and np.array_equal(s["images"], images[:100])
    np.save(tmp_path / "ref.npy", images[:100])
    assert (tmp_path / "images.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


@pytest.mark.slow
def test_a_dropped_image_costs_no_memory(tmp_path_factory, hand_home):
    """Traced peak over 97 images with the dark one is the peak over the 96 without it.

    The old writer copied every field into memory when an image was dropped (+9.4 MB here, i.e.
    0.35 of the 27 MB of arrays); per-image temporaries (~15 MB at 256 px) hide that copy on
    smaller trees, hence 96 images.
    """
    import tracemalloc

    from hand_nas.data.interhand_mock import write_mock_interhand

    root = tmp_path_factory.mktemp("ih96")
    write_mock_interhand(root, split="test", captures=2, frames=6, cameras=8, seed=2)  # + 1 dark, last
    out = tmp_path_factory.mktemp("mem")
    prepare(root, out / "warm", split="test", progress=False, limit=1)  # imports, outside the trace
    peaks = {}
    for limit in (96, None):
        tracemalloc.start()
        counts = prepare(root, out / f"l{limit}", split="test", progress=False, limit=limit, chunk=4)
        peaks[limit] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert counts["dropped_dark"] == (limit is None)
    arrays = sum(p.stat().st_size for p in (out / "lNone").glob("*.npy"))
    assert peaks[None] - peaks[96] < 0.1 * arrays, (peaks, arrays)


def test_resumable_build_keeps_work_except_on_bad_inputs(tmp_path):
    from hand_nas.data.resumable import ResumableBuild

    target = tmp_path / "t"
    with pytest.raises(KeyboardInterrupt), ResumableBuild(target, {"a": 1}) as build:
        build.commit("write", 0)
        build.commit("write", 1)
        raise KeyboardInterrupt
    with open(partial_dir(target) / LOG, "a") as fh:
        fh.write('{"phase": "write", "chu')  # the append a SIGKILL cut short
    with pytest.raises(HandNasError, match="bad input"), ResumableBuild(target, {"a": 1}) as build:
        assert build.resumed and set(build.committed("write")) == {0, 1}
        build.commit("write", 2)
        raise HandNasError("bad input")
    assert not partial_dir(target).exists() and not target.exists()
    with ResumableBuild(target, {"a": 1}) as build:
        assert not build.resumed
        (build.folder / "x.npy").write_bytes(b"x")
        build.finish()
    assert sorted(p.name for p in target.iterdir()) == ["x.npy"] and not partial_dir(target).exists()
