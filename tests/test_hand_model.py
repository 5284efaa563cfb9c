from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from hand_nas.errors import HandNasError
from hand_nas.hand import articulation, procedural
from hand_nas.hand.mano import HandModel, convert_mano
from hand_nas.hand.topology import FINGERTIP_VERTS, JOINT_NAMES_21, ROOT_JOINT

MANO_SHAPES = {
    "v_template": (778, 3), "f": (1538, 3), "J_regressor": (16, 778), "kintree_table": (2, 16),
    "weights": (778, 16), "shapedirs": (778, 3, 10), "posedirs": (778, 3, 135), "hands_components": (45, 45),
    "hands_mean": (45,), "J": (16, 3),
}


def test_generated_files_have_manos_keys_and_shapes(mano_dir):
    import scipy.sparse

    for name in ("MANO_RIGHT.pkl", "MANO_LEFT.pkl"):
        with open(mano_dir / name, "rb") as fh:
            data = pickle.load(fh, encoding="latin1")
        for key, shape in MANO_SHAPES.items():
            assert np.shape(data[key]) == shape, key
        assert scipy.sparse.issparse(data["J_regressor"])  # as in the official files
        assert data["kintree_table"][0, 0] == 4294967295


def test_smplx_loads_generated_files_unchanged(mano_dir):
    import smplx

    for side in ("RIGHT", "LEFT"):
        layer = smplx.MANO(model_path=str(mano_dir / f"MANO_{side}.pkl"), is_rhand=side == "RIGHT", use_pca=False)
        out = layer(hand_pose=torch.zeros(1, 45), global_orient=torch.zeros(1, 3), betas=torch.zeros(1, 10))
        assert out.vertices.shape == (1, 778, 3)
        assert layer.faces.shape == (1538, 3)


def test_mesh_is_closed_except_a_16_vertex_wrist():
    f = procedural.build_pair()["right"]["f"].astype(int)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert set(counts.tolist()) == {1, 2} and (counts == 1).sum() == 16


def test_21_joints_in_documented_order(hand_model):
    v, j = _forward(hand_model, np.zeros(45))  # flat hand
    assert j.shape == (1, 2, 21, 3) and len(JOINT_NAMES_21) == 21
    # fingertips are the tip vertices; joint 9 is the middle MCP (MANO joint 4)
    for k, jid in enumerate((4, 8, 12, 16, 20)):
        assert torch.allclose(j[0, :, jid], v[0, :, FINGERTIP_VERTS[k]])
    mano16 = torch.einsum("jv,bhvc->bhjc", hand_model.layers["right"].J_regressor, v)
    assert torch.allclose(j[0, :, ROOT_JOINT], mano16[0, :, 4], atol=1e-6)
    bone = (j[0, :, 9] - j[0, :, 0]).norm(dim=-1)
    assert torch.all((bone > 0.08) & (bone < 0.11))
    # in the flat hand each finger's MCP -> tip chain moves away from the wrist
    for f in range(5):
        d = (j[0, 1, 1 + 4 * f:5 + 4 * f] - j[0, 1, 0]).norm(dim=-1)
        assert torch.all(d[1:] > d[:-1] - 1e-4)


def _forward(model, pose45_right, betas=None):
    pose = torch.zeros(1, 2, 48)
    pose[0, 1, 3:] = torch.tensor(pose45_right - model.hands_mean["right"], dtype=torch.float32)
    pose[0, 0, 3:] = torch.tensor(articulation.mirror_pose(pose45_right) - model.hands_mean["left"], dtype=torch.float32)
    b = torch.zeros(1, 2, 10) if betas is None else betas
    with torch.no_grad():
        return model(pose, b)


def test_left_hand_mirrors_the_right(hand_model):
    rng = np.random.default_rng(0)
    axes = articulation.HandAxes.from_rest(
        hand_model.layers["right"].J_regressor.numpy() @ hand_model.layers["right"].v_template.numpy(),
        {f: hand_model.layers["right"].v_template.numpy()[v] for f, v in articulation.FINGER_TIP_VERT.items()})
    pose = articulation.angles_to_pose(articulation.sample_angles(rng, 1)[0], axes)
    betas = torch.tensor(rng.normal(0, 1, 10), dtype=torch.float32).expand(1, 2, 10)
    v, _ = _forward(hand_model, pose, betas)
    mirrored = v[0, 1] * torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(v[0, 0], mirrored, atol=1e-5)


def test_pose_bends_fingers_and_shape_changes_size(hand_model):
    flat = np.zeros(45)
    v0, j0 = _forward(hand_model, flat)
    bent = np.zeros(45)
    axes_flex = articulation.HandAxes.from_rest(
        hand_model.layers["right"].J_regressor.numpy() @ hand_model.layers["right"].v_template.numpy(),
        {f: hand_model.layers["right"].v_template.numpy()[v] for f, v in articulation.FINGER_TIP_VERT.items()}).flex
    bent[3 * 1:3 * 2] = 1.5 * axes_flex[1]  # index PIP (MANO joint 2) by 86 degrees
    v1, j1 = _forward(hand_model, bent)
    tip_move = (j1[0, 1, 8] - j0[0, 1, 8]).norm()
    assert tip_move > 0.02  # the index tip moves by centimetres
    assert (j1[0, 1, 12] - j0[0, 1, 12]).norm() < 1e-6  # the middle finger does not
    big, _ = _forward(hand_model, flat, torch.tensor([2.0] + [0] * 9).expand(1, 2, 10))
    ext = lambda v: (v[0, 1].max(0).values - v[0, 1].min(0).values).norm()  # noqa: E731
    assert ext(big) > 1.05 * ext(v0)
    longer, _ = _forward(hand_model, flat, torch.tensor([0, 2.0] + [0] * 8).expand(1, 2, 10))
    assert (longer[0, 1, 444] - longer[0, 1, 0]).norm() > (v0[0, 1, 444] - v0[0, 1, 0]).norm() + 0.004


def test_left_shapedirs_fix_applies_only_to_the_official_bug(tmp_path, mano_dir):
    import shutil

    shutil.copy(mano_dir / "MANO_RIGHT.pkl", tmp_path / "MANO_RIGHT.pkl")
    with open(mano_dir / "MANO_LEFT.pkl", "rb") as fh:
        left = pickle.load(fh, encoding="latin1")
    with open(mano_dir / "MANO_RIGHT.pkl", "rb") as fh:
        right = pickle.load(fh, encoding="latin1")
    left["shapedirs"] = left["shapedirs"].copy()
    left["shapedirs"][:, 0, :] = right["shapedirs"][:, 0, :]  # the official left file's bug
    with open(tmp_path / "MANO_LEFT.pkl", "wb") as fh:
        pickle.dump(left, fh, protocol=2)
    fixed = HandModel(tmp_path)
    good = HandModel(mano_dir)
    assert torch.allclose(fixed.layers["left"].shapedirs, good.layers["left"].shapedirs)


def test_chumpy_pickles_convert_without_chumpy(tmp_path, mano_dir):
    import sys
    import types

    # Pickle the shape directions as a chumpy.ch.Ch object, as the official files do.
    fake = types.ModuleType("chumpy.ch")

    class Ch:  # noqa: D401 - stands for chumpy.ch.Ch
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    fake.Ch = Ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), fake
    try:
        src = tmp_path / "official"
        src.mkdir()
        for name in ("MANO_RIGHT.pkl", "MANO_LEFT.pkl"):
            with open(mano_dir / name, "rb") as fh:
                data = pickle.load(fh, encoding="latin1")
            data["shapedirs"] = Ch(data["shapedirs"])
            with open(src / name, "wb") as fh:
                pickle.dump(data, fh, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    with pytest.raises(HandNasError, match="chumpy"):
        HandModel(src)
    convert_mano(src, tmp_path / "clean")
    model = HandModel(tmp_path / "clean")
    assert torch.allclose(model.layers["right"].shapedirs, HandModel(mano_dir).layers["right"].shapedirs)


def test_missing_mano_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(HandNasError, match="MANO folder not found") as err:
        HandModel(tmp_path / "nope")
    assert "\n" not in str(err.value) and str(tmp_path / "nope") in str(err.value)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "MANO_RIGHT.pkl").write_bytes(b"x")
    with pytest.raises(HandNasError, match="MANO_LEFT.pkl: missing"):
        HandModel(tmp_path / "half")
