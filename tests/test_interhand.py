from __future__ import annotations

import json

import numpy as np
import pytest

from hand_nas.data.interhand import prepare, select_records
from hand_nas.data.samples import open_samples
from hand_nas.data.interhand_mock import BLOB_JOINTS
from hand_nas.errors import HandNasError
from hand_nas.hand.geometry import project


@pytest.fixture(scope="module")
def prepared(interhand_tree, tmp_path_factory):
    root, info = interhand_tree
    out = tmp_path_factory.mktemp("ihcache") / "test"
    counts = prepare(root, out, split="test", progress=False)
    return out, counts, info


def test_selection_follows_intaghand(prepared, interhand_tree):
    out, counts, info = prepared
    # 2 captures x 2 frames x 2 cameras interacting; the single-hand and invalid ones are skipped,
    # the dark one is selected but dropped.
    assert {k: counts[k] for k in ("selected", "written", "dropped_dark")} == {"selected": 9, "written": 8,
                                                                                "dropped_dark": 1}
    single = select_records(interhand_tree[0], "test", hands="single")
    assert len(single) == 1 and single[0].valid.tolist() == [False, True]


def test_labels_match_the_known_geometry(prepared):
    out, _, info = prepared
    s = open_samples(out)
    ids = json.loads((out / "source_ids.json").read_text())
    for i, sid in enumerate(ids):
        t = info["truth"][sid]
        cam = (t["joints_world_m"] - t["campos_mm"] / 1000.0) @ t["R"].T
        assert np.abs(cam - s["joints"][i]).max() < 1e-5  # camera-frame joints, metres


def test_crops_put_projected_joints_within_one_pixel(prepared):
    out, _, _ = prepared
    s = open_samples(out)
    errors = []
    for i in range(len(s)):
        img = s["images"][i][..., 0].astype(np.float64) - 90.0  # the blobs sit on a grey background
        K = s["K"][i].astype(np.float64)
        for h in range(2):
            for jid in BLOB_JOINTS:
                u, v = project(s["joints"][i][h][jid:jid + 1].astype(np.float64), K)[0]
                x0, y0 = int(round(u)) - 4, int(round(v)) - 4
                if x0 < 0 or y0 < 0 or x0 + 9 > img.shape[1] or y0 + 9 > img.shape[0]:
                    continue
                win = np.clip(img[y0:y0 + 9, x0:x0 + 9], 0, None)
                ys, xs = np.mgrid[y0:y0 + 9, x0:x0 + 9]
                if win.sum() < 50:  # another blob may sit on top; the test only needs most
                    continue
                cu, cv = (win * xs).sum() / win.sum(), (win * ys).sum() / win.sum()
                errors.append(np.hypot(cu - u, cv - v))
    assert len(errors) >= 16
    assert np.max(errors) < 1.0, errors


def test_truncated_annotation_is_a_clear_error(interhand_tree, tmp_path):
    import shutil

    root = tmp_path / "ih"
    shutil.copytree(interhand_tree[0], root)
    path = root / "annotations" / "test" / "InterHand2.6M_test_camera.json"
    path.write_text(path.read_text()[:200])
    with pytest.raises(HandNasError, match="InterHand2.6M_test_camera.json: not valid JSON"):
        prepare(root, tmp_path / "out", split="test", progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_image_is_a_clear_error_and_leaves_nothing(interhand_tree, tmp_path):
    import shutil

    root = tmp_path / "ih"
    shutil.copytree(interhand_tree[0], root)
    victim = sorted((root / "images").rglob("image3.jpg"))[0]
    victim.unlink()
    with pytest.raises(HandNasError, match="image missing") as err:
        prepare(root, tmp_path / "out", split="test", progress=False)
    assert str(victim) in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_subset_needs_the_v0_folders(interhand_tree):
    with pytest.raises(HandNasError, match="human_annot"):
        select_records(interhand_tree[0], "test", subset="H")


def _annotations_only(root, n: int, cameras: int = 10) -> int:
    """InterHand2.6M annotation files (no images) for ``n`` interacting images; returns data.json's size."""
    folder = root / "annotations" / "test"
    folder.mkdir(parents=True)
    cams = [str(400000 + k) for k in range(cameras)]
    data = {"images": [], "annotations": []}
    for i in range(n):
        frame, cam = i // cameras, cams[i % cameras]
        data["images"].append({"id": i, "file_name": f"Capture0/seq/cam{cam}/image{frame}.jpg", "width": 334,
                               "height": 512, "capture": 0, "subject": 0, "seq_name": "seq", "camera": cam,
                               "frame_idx": frame})
        data["annotations"].append({"id": i, "image_id": i, "bbox": [0, 0, 334, 512], "joint_valid": [[1]] * 42,
                                    "hand_type": "interacting", "hand_type_valid": 1})
    hand = {"pose": [0.1] * 48, "shape": [0.0] * 10, "trans": [0.0, 0.0, 0.5]}
    mano = {"0": {str(f): {"left": hand, "right": hand} for f in range(-(-n // cameras))}}
    camera = {"0": {"campos": {c: [0, 0, -700] for c in cams}, "camrot": {c: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] for c in cams},
                    "focal": {c: [1200, 1200] for c in cams}, "princpt": {c: [167, 256] for c in cams}}}
    for kind, obj in (("data", data), ("camera", camera), ("joint_3d", {}), ("MANO_NeuralAnnot", mano)):
        (folder / f"InterHand2.6M_test_{kind}.json").write_text(json.dumps(obj))
    return (folder / "InterHand2.6M_test_data.json").stat().st_size


def test_selection_memory_does_not_grow_with_the_annotation_files(tmp_path, monkeypatch):
    """Python's allocations while selecting: a few bytes per image, not the JSON text or its objects."""
    import tracemalloc

    import hand_nas.json_stream as js

    monkeypatch.setattr(js, "BUF_SIZE", 8192)  # a 64 KiB block's events (~1 MB) would outweigh these small files
    peaks, sizes = {}, {}
    for n in (200, 2000):
        sizes[n] = _annotations_only(tmp_path / str(n), n)
        tracemalloc.start()
        selection = select_records(tmp_path / str(n), "test", folder=tmp_path / f"index{n}")
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(selection) == n and selection[n - 1].source_id == f"test/Capture0/seq/cam400009/image{(n - 1) // 10}.jpg"
    # allow 100 bytes per image of growth, and a fraction of what json.loads of the same file takes (measured
    # here: the parser's own constant overhead differs between ijson releases, 3.6's yajl2_c ~290 KB here)
    assert peaks[2000] - peaks[200] < 100 * 1800, (peaks, sizes)
    tracemalloc.start()
    json.loads((tmp_path / "2000" / "annotations" / "test" / "InterHand2.6M_test_data.json").read_text())
    whole = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peaks[2000] < whole / 3, (peaks, sizes, whole)


def test_annotation_files_of_the_wrong_shape_say_what_was_expected(tmp_path):
    _annotations_only(tmp_path / "ih", 20)
    folder = tmp_path / "ih" / "annotations" / "test"
    data, mano = folder / "InterHand2.6M_test_data.json", folder / "InterHand2.6M_test_MANO_NeuralAnnot.json"
    good_data, good_mano = data.read_text(), mano.read_text()
    for path, text, message in (
            (data, json.dumps({"images": []}), f"{data}: the top level has no field 'annotations'"),
            (data, json.dumps([1, 2]), f"{data}: the top level has no field 'annotations'"),
            (data, json.dumps({"annotations": {"0": 1}}), f"{data}: the top-level field 'annotations' is not a list"),
            (data, good_data[:-1], f"{data}: not valid JSON (premature EOF)"),
            (mano, json.dumps([]), f"{mano}: expected {{capture: {{frame: {{left, right}}}}}}, found something else at the top level"),
            (mano, json.dumps({"0": [1]}), f"{mano}: expected {{capture: {{frame: {{left, right}}}}}}, found something else at 0")):
        data.write_text(good_data), mano.write_text(good_mano)
        path.write_text(text)
        with pytest.raises(HandNasError) as err:
            select_records(tmp_path / "ih", "test", folder=tmp_path / "index")
        assert str(err.value) == message


def test_records_are_read_back_from_the_index_by_row(interhand_tree, tmp_path):
    selection = select_records(interhand_tree[0], "test", folder=tmp_path / "index")
    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == ["names.bin", "rows.bin"]
    every = list(selection)
    assert [r.source_id for r in every[2:5]] == [r.source_id for r in selection[2:5]] == \
        [selection[i].source_id for i in range(2, 5)]
    assert len({r.source_id for r in every}) == len(every)
