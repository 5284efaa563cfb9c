"""Anatomical hand poses: joint limits, a correlated pose sampler and named poses.

Poses are sampled as (flexion, abduction) angles per MANO joint and turned into MANO's 45-d
axis-angle hand pose using axes derived from the rest joints of any right-hand MANO model, so the
same sampler drives the procedural hand and a real MANO model. Left-hand poses are mirrors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# MANO joints per finger, proximal -> distal, and the fingertip vertex that ends each chain.
FINGER_JOINTS: dict[str, tuple[int, int, int]] = {
    "thumb": (13, 14, 15), "index": (1, 2, 3), "middle": (4, 5, 6), "ring": (10, 11, 12), "pinky": (7, 8, 9),
}
FINGER_TIP_VERT: dict[str, int] = {"thumb": 745, "index": 317, "middle": 444, "ring": 556, "pinky": 673}

# (flexion lo, hi, abduction lo, hi) in radians, per joint position within a finger.
_FINGER_LIMITS = ((-0.3, 1.6, -0.35, 0.35), (0.0, 1.9, 0.0, 0.0), (0.0, 1.3, 0.0, 0.0))
_THUMB_LIMITS = ((-0.3, 0.8, -0.4, 0.6), (-0.2, 0.9, -0.15, 0.15), (-0.3, 1.3, 0.0, 0.0))
# Open-hand spread (abduction) per finger, radians: fingers fan out when the hand opens.
_SPREAD = {"thumb": 0.3, "index": -0.15, "middle": 0.0, "ring": 0.12, "pinky": 0.25}


def joint_limits() -> np.ndarray:
    """(15, 4) limits (flex lo, flex hi, abd lo, abd hi) for MANO joints 1..15."""
    lim = np.zeros((15, 4))
    for finger, joints in FINGER_JOINTS.items():
        table = _THUMB_LIMITS if finger == "thumb" else _FINGER_LIMITS
        for k, j in enumerate(joints):
            lim[j - 1] = table[k]
    return lim


@dataclass(frozen=True)
class HandAxes:
    """Per-joint rotation axes of a right hand in its rest frame.

    Attributes:
        flex: (15, 3) unit axes; +angle about it flexes the joint toward the palm.
        abd: (15, 3) unit axes; +angle spreads the finger toward the pinky side.
    """

    flex: np.ndarray
    abd: np.ndarray

    @classmethod
    def from_rest(cls, joints16: np.ndarray, tips: dict[str, np.ndarray]) -> HandAxes:
        """Derive axes from rest joints (16, 3) and fingertip positions of a right hand."""
        j = np.asarray(joints16, dtype=np.float64)
        wrist, index_mcp, pinky_mcp = j[0], j[1], j[7]
        dorsal = _unit(np.cross(pinky_mcp - wrist, index_mcp - wrist))
        palm_centre = (wrist + index_mcp + pinky_mcp) / 3 - 0.02 * dorsal
        flex, abd = np.zeros((15, 3)), np.zeros((15, 3))
        for finger, chain in FINGER_JOINTS.items():
            points = [j[c] for c in chain] + [tips[finger]]
            for k, jid in enumerate(chain):
                d = _unit(points[k + 1] - points[k])
                if finger == "thumb":
                    f = _unit(np.cross(d, palm_centre - points[k]))
                    a = _unit(np.cross(f, d))
                else:
                    f = _unit(np.cross(dorsal, d))
                    a = dorsal
                flex[jid - 1], abd[jid - 1] = f, a
        return cls(flex=flex, abd=abd)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def sample_angles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Correlated, limit-respecting joint angles.

    A per-hand grasp level drives every finger's curl (fists, open hands and everything between),
    with per-finger and per-joint noise so fingers also move independently (pointing, pinching).

    Returns:
        (n, 15, 2) flexion and abduction angles in radians for MANO joints 1..15.
    """
    lim = joint_limits()
    out = np.zeros((n, 15, 2))
    grasp = rng.beta(0.7, 0.7, size=n)
    for finger, chain in FINGER_JOINTS.items():
        curl = np.clip(grasp + rng.normal(0, 0.35, n), 0, 1)
        point = rng.random(n) < 0.12  # occasionally one finger stays straight
        curl = np.where(point, rng.uniform(0, 0.15, n), curl)
        for k, jid in enumerate(chain):
            lo, hi, alo, ahi = lim[jid - 1]
            frac = np.clip(curl + rng.normal(0, 0.12, n), 0, 1)
            out[:, jid - 1, 0] = lo + (hi - lo) * frac
            spread = _SPREAD[finger] * (1 - curl) if k == 0 else 0.0
            out[:, jid - 1, 1] = np.clip(spread + rng.normal(0, 0.08, n), alo, ahi)
    return out


def angles_to_pose(angles: np.ndarray, axes: HandAxes) -> np.ndarray:
    """(..., 15, 2) angles -> (..., 45) MANO axis-angle hand pose (absolute, not mean-relative).

    The flexion and abduction rotations are composed (abduction first, in the parent frame),
    then converted back to one axis-angle vector per joint.
    """
    from scipy.spatial.transform import Rotation

    shape = angles.shape[:-2]
    a = angles.reshape(-1, 15, 2)
    out = np.zeros((a.shape[0], 15, 3))
    for j in range(15):
        r_flex = Rotation.from_rotvec(a[:, j, :1] * axes.flex[j])
        r_abd = Rotation.from_rotvec(a[:, j, 1:] * axes.abd[j])
        out[:, j] = (r_abd * r_flex).as_rotvec()
    return out.reshape(*shape, 45)


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror axis-angle poses across the x=0 plane (right <-> left): (x, y, z) -> (x, -y, -z)."""
    p = np.array(pose, dtype=np.float64, copy=True)
    p = p.reshape(*p.shape[:-1], -1, 3)
    p[..., 1:] *= -1
    return p.reshape(*pose.shape)


# Named poses as (grasp level per finger: thumb, index, middle, ring, pinky).
NAMED_POSES: dict[str, tuple[float, float, float, float, float]] = {
    "flat": (0.0, 0.0, 0.0, 0.0, 0.0),
    "fist": (0.8, 1.0, 1.0, 1.0, 1.0),
    "point": (0.7, 0.0, 1.0, 1.0, 1.0),
    "pinch": (0.55, 0.55, 0.05, 0.05, 0.05),
    "victory": (0.8, 0.0, 0.0, 1.0, 1.0),
    "claw": (0.4, 0.55, 0.55, 0.55, 0.55),
}


def named_angles(name: str) -> np.ndarray:
    """(15, 2) angles of a named pose (see NAMED_POSES)."""
    if name not in NAMED_POSES:
        raise KeyError(f"unknown pose {name!r}; known: {sorted(NAMED_POSES)}")
    lim = joint_limits()
    out = np.zeros((15, 2))
    for curl, (finger, chain) in zip(NAMED_POSES[name], FINGER_JOINTS.items()):
        for jid in chain:
            lo, hi, alo, ahi = lim[jid - 1]
            out[jid - 1, 0] = max(lo, 0.0) + (hi - max(lo, 0.0)) * curl
            if jid == chain[0]:
                out[jid - 1, 1] = np.clip(_SPREAD[finger] * (1 - curl), alo, ahi)
    return out

