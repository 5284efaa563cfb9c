"""A hand model's facts as plain data: mesh sizes, joint order, the wrist-to-middle-knuckle bone, extents, topology."""
from __future__ import annotations


def hand_facts(mano_dir=None) -> dict:
    """What ``hand-nas hand info`` prints for the MANO folder ``mano_dir`` (None or 'procedural': the generated hand).

    Both hands are posed flat (zero pose, zero shape); lengths are in metres, per hand (right, left).
    """
    import numpy as np
    import torch

    from hand_nas.hand.hierarchy import hierarchy_path
    from hand_nas.hand.mano import HandModel
    from hand_nas.hand.topology import JOINT_NAMES_21, ROOT_JOINT, faces_fingerprint

    model = HandModel(mano_dir)
    with torch.no_grad():
        v, j = model(torch.zeros(1, 2, 48), torch.zeros(1, 2, 10))  # (1, 2, V, 3), (1, 2, 21, 3)
    faces = model.faces["right"]
    return {
        "mano_dir": str(model.mano_dir), "vertices": int(v.shape[2]), "faces": int(faces.shape[0]),
        "joints": int(j.shape[2]), "joint_order": list(JOINT_NAMES_21), "root_joint": ROOT_JOINT,
        "bone_j0_j9_m": [round(float((j[0, h, ROOT_JOINT] - j[0, h, 0]).norm()), 4) for h in range(2)],
        "hand_extent_m": [np.round((v[0, h].max(0).values - v[0, h].min(0).values).numpy(), 4).tolist() for h in range(2)],
        "topology_sha256": faces_fingerprint(faces), "hierarchy_file": str(hierarchy_path(faces_fingerprint(faces))),
    }
