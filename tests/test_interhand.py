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
