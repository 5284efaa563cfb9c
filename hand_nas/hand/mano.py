"""MANO hand models through smplx: the only module in hand-nas that imports smplx.

``HandModel`` holds both hands. It loads ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` from a folder (a
real MANO release after conversion, or the procedural pair hand-nas generates), applies the known
fix for the official left model's ``shapedirs`` and regresses the 21 evaluation joints.

The official pickles hold chumpy objects, and chumpy does not install on Python 3.11 with numpy 2.
``convert_mano`` rewrites them once into plain numpy pickles without importing chumpy
(``hand-nas hand convert-mano SRC DST``); smplx then loads the converted files.
"""
from __future__ import annotations

import contextlib
import functools
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hand_nas.errors import HandNasError
from hand_nas.hand.topology import HANDS, NUM_VERTS, joint_regressor_21

MANO_FILES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}


def default_mano_dir() -> Path:
    """The procedural MANO pair, generated on first use into the hand-nas cache."""
    from hand_nas.hand import procedural
    from hand_nas.paths import home

    folder = home() / f"mano_procedural_v{procedural.GENERATOR_VERSION}"
    if not all((folder / f).exists() for f in MANO_FILES.values()):
        procedural.write_mano_pair(folder)
    return folder


def resolve_mano_dir(spec: str | Path | None) -> Path:
    """'procedural' or None -> the generated pair; anything else is a folder with both pickles."""
    if spec is None or str(spec) == "procedural":
        return default_mano_dir()
    folder = Path(spec)
    if not folder.is_dir():
        raise HandNasError(f"{folder}: MANO folder not found (expected a folder with MANO_RIGHT.pkl and MANO_LEFT.pkl)")
    for name in MANO_FILES.values():
        if not (folder / name).is_file():
            raise HandNasError(f"{folder / name}: missing (a MANO folder holds MANO_RIGHT.pkl and MANO_LEFT.pkl)")
    return folder


def _check_loadable(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh, encoding="latin1")
    except ModuleNotFoundError as exc:
        if "chumpy" in str(exc):
            raise HandNasError(
                f"{path}: holds chumpy objects; convert it once with 'hand-nas hand convert-mano "
                f"{path.parent} OUT_DIR' and point --mano at OUT_DIR") from None
        raise HandNasError(f"{path}: cannot be unpickled ({exc})") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise HandNasError(f"{path}: not a MANO pickle ({exc})") from None
    if not isinstance(data, dict) or "v_template" not in data:
        raise HandNasError(f"{path}: not a MANO model (no 'v_template' key)")
    shape = np.shape(data["v_template"])
    if shape != (NUM_VERTS, 3):
        raise HandNasError(f"{path}: field 'v_template' has shape {shape}, expected (778, 3)")


class HandModel(torch.nn.Module):
    """Both MANO hands (left first) and the 21-joint regressor.

    Args:
        mano_dir: 'procedural' (default) or a folder with MANO_RIGHT.pkl / MANO_LEFT.pkl.
    """

    def __init__(self, mano_dir: str | Path | None = None) -> None:
        super().__init__()
        import smplx

        folder = resolve_mano_dir(mano_dir)
        self.mano_dir = folder
        layers = {}
        for side in HANDS:
            _check_loadable(folder / MANO_FILES[side])
            # smplx prints a note about MANO having 10 shape coefficients to stdout; keep stdout clean.
            with contextlib.redirect_stdout(io.StringIO()):
                layers[side] = smplx.MANO(
                    model_path=str(folder / MANO_FILES[side]), is_rhand=side == "right",
                    use_pca=False, flat_hand_mean=False, batch_size=1)
        fix_left_shapedirs(layers["left"], layers["right"])
        self.layers = torch.nn.ModuleDict(layers)
        jreg = layers["right"].J_regressor.detach().cpu().numpy()
        self.register_buffer("joint_regressor", torch.from_numpy(joint_regressor_21(jreg)), persistent=False)

    @property
    def faces(self) -> dict[str, np.ndarray]:
        """Per-hand (1538, 3) int64 faces."""
        return {s: np.asarray(self.layers[s].faces, dtype=np.int64) for s in HANDS}

    @property
    def hands_mean(self) -> dict[str, np.ndarray]:
        """Per-hand (45,) mean hand pose that smplx adds to the given pose (flat_hand_mean=False)."""
        return {s: self.layers[s].hand_mean.detach().cpu().numpy().astype(np.float64) for s in HANDS}

    def forward(self, pose: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Meshes and joints of both hands in the MANO (world) frame, metres.

        Args:
            pose: (B, 2, 48) axis-angle, global orientation first, hand pose relative to the mean.
            betas: (B, 2, 10) shape.
            transl: (B, 2, 3) translation, or None.

        Returns:
            vertices (B, 2, 778, 3) and joints (B, 2, 21, 3), left hand first.
        """
        b = pose.shape[0]
        if transl is None:
            transl = pose.new_zeros(b, 2, 3)
        verts = []
        for i, side in enumerate(HANDS):
            out = self.layers[side](global_orient=pose[:, i, :3], hand_pose=pose[:, i, 3:], betas=betas[:, i],
                                    transl=transl[:, i], return_verts=True)
            verts.append(out.vertices)
        verts = torch.stack(verts, 1)
        return verts, self.joints(verts)

    def joints(self, verts: torch.Tensor) -> torch.Tensor:
        """(..., 778, 3) -> (..., 21, 3) with the hand-nas joint order."""
        return torch.einsum("jv,...vc->...jc", self.joint_regressor.to(verts.dtype), verts)


def fix_left_shapedirs(left, right) -> bool:
    """The official MANO_LEFT.pkl carries the right hand's x shape directions; negate them.

    Applied only when the two are (nearly) equal, so a correctly mirrored left model is untouched.
    Returns whether the fix was applied.
    """
    diff = torch.sum(torch.abs(left.shapedirs[:, 0, :] - right.shapedirs[:, 0, :]))
    if diff < 1:
        with torch.no_grad():
            left.shapedirs[:, 0, :] *= -1
        return True
    return False


class _ChumpyStub:
    """Stands in for chumpy classes while unpickling; keeps the pickled state."""

    def __init__(self, *args, **kwargs) -> None:
        self._state = {}

    def __setstate__(self, state) -> None:
        self._state = state if isinstance(state, dict) else {"state": state}


class _NoChumpyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "chumpy":
            return _ChumpyStub
        return super().find_class(module, name)


def convert_mano(src: str | Path, dst: str | Path) -> list[Path]:
    """Rewrite official (chumpy) MANO pickles from ``src`` as plain numpy pickles in ``dst``.

    Chumpy arrays are read from their pickled ``x`` field; chumpy itself is never imported.
    """
    from hand_nas.atomic import atomic_file

    src, dst = Path(src), Path(dst)
    written = []
    for name in MANO_FILES.values():
        path = src / name
        if not path.is_file():
            raise HandNasError(f"{path}: missing (expected the official MANO_RIGHT.pkl and MANO_LEFT.pkl)")
        try:
            with open(path, "rb") as fh:
                data = _NoChumpyUnpickler(fh, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise HandNasError(f"{path}: not a MANO pickle ({exc})") from None
        out = {}
        for key, value in data.items():
            if isinstance(value, _ChumpyStub):
                if "x" not in value._state:
                    raise HandNasError(f"{path}: field {key!r} is a chumpy expression without stored values")
                value = np.asarray(value._state["x"])
            out[key] = value
        with atomic_file(dst / name) as fh:
            pickle.dump(out, fh, protocol=2)
        written.append(dst / name)
    return written


@dataclass(frozen=True)
class HandTopology:
    """What networks need of a hand model, without smplx: the right hand's mesh facts.

    Attributes:
        faces: (1538, 3) int64.
        template: (778, 3) rest vertices, metres.
        joint_regressor: (21, 778) float32 in hand-nas' joint order.
    """

    faces: np.ndarray
    template: np.ndarray
    joint_regressor: np.ndarray


@functools.lru_cache(maxsize=4)
def _topology(folder: str) -> HandTopology:
    path = Path(folder) / MANO_FILES["right"]
    _check_loadable(path)
    with open(path, "rb") as fh:
        data = pickle.load(fh, encoding="latin1")
    jreg = data["J_regressor"]
    jreg = jreg.toarray() if hasattr(jreg, "toarray") else np.asarray(jreg)
    return HandTopology(np.asarray(data["f"], dtype=np.int64), np.asarray(data["v_template"], dtype=np.float64),
                        joint_regressor_21(jreg))


def hand_topology(mano_dir: str | Path | None = None) -> HandTopology:
    """The topology of a MANO folder ('procedural' by default), read once per process."""
    return _topology(str(resolve_mano_dir(mano_dir)))
