"""Joint orders, fingertip vertex ids and the 21-joint regressor of a MANO hand.

Orders used across hand-nas (facts from IntagHand's evaluation code and the InterHand2.6M release):

* MANO's 16 skinning joints: 0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring, 13-15 thumb,
  each proximal to distal.
* hand-nas' 21 joints (IntagHand order): wrist, then thumb, index, middle, ring, pinky, each
  MCP -> tip. Joint 9 is the middle MCP, the root of the evaluation protocol.
* InterHand2.6M's 42 joints: right 0-20, left 21-41; per hand thumb, index, middle, ring, pinky,
  each tip -> MCP, then the wrist (20 / 41).

Hands are always stacked left first: index 0 is the left hand, index 1 the right hand.
"""
from __future__ import annotations

import hashlib

import numpy as np

HANDS: tuple[str, str] = ("left", "right")
NUM_VERTS = 778
NUM_FACES = 1538
NUM_MANO_JOINTS = 16
NUM_JOINTS = 21
ROOT_JOINT = 9  # middle-finger MCP in the 21-joint order
WRIST_JOINT = 0

# MANO's kinematic tree: parent of each of the 16 joints (root has none).
MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

# Fingertip vertices appended as joints 16..20 (thumb, index, middle, ring, pinky).
FINGERTIP_VERTS: tuple[int, ...] = (745, 317, 444, 556, 673)

# Rows of [J_regressor(16); tips(5)] that give the 21-joint order.
JOINT_ORDER_21: tuple[int, ...] = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)

JOINT_NAMES_21: tuple[str, ...] = (
    "wrist",
    "thumb1", "thumb2", "thumb3", "thumb4",
    "index1", "index2", "index3", "index4",
    "middle1", "middle2", "middle3", "middle4",
    "ring1", "ring2", "ring3", "ring4",
    "pinky1", "pinky2", "pinky3", "pinky4",
)

# Bones of the 21-joint skeleton as (parent, child), for drawing and bone-length losses.
BONES_21: tuple[tuple[int, int], ...] = tuple(
    (0 if k == 0 else 1 + 4 * f + k - 1, 1 + 4 * f + k) for f in range(5) for k in range(4)
)

# InterHand2.6M joint index (within one hand, 0..20) for each of our 21 joints.
IH26M_FROM_OURS: tuple[int, ...] = (20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16)


def joint_regressor_21(j_regressor: np.ndarray) -> np.ndarray:
    """The 21x778 regressor: MANO's 16 rows plus one-hot fingertip rows, in hand-nas' order.

    Args:
        j_regressor: MANO's (16, 778) joint regressor (dense).

    Returns:
        (21, 778) float32 matrix; ``R @ verts`` gives the 21 joints.
    """
    j_regressor = np.asarray(j_regressor, dtype=np.float32)
    if j_regressor.shape != (NUM_MANO_JOINTS, NUM_VERTS):
        raise ValueError(f"J_regressor: expected shape (16, 778), got {j_regressor.shape}")
    tips = np.zeros((5, NUM_VERTS), dtype=np.float32)
    tips[np.arange(5), FINGERTIP_VERTS] = 1.0
    return np.concatenate([j_regressor, tips], 0)[list(JOINT_ORDER_21)]


def faces_fingerprint(faces: np.ndarray) -> str:
    """sha256 of a face array: identifies a mesh topology (and so its mesh hierarchy)."""
    return hashlib.sha256(np.ascontiguousarray(np.asarray(faces, dtype=np.int64)).tobytes()).hexdigest()
