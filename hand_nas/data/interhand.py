"""InterHand2.6M reader: the official release layout -> a hand-nas sample directory.

Layout (v1.0; v0.0's ``annotations/{all,human_annot,machine_annot}/`` is read for H / M subsets)::

    ROOT/images/<split>/Capture<N>/<seq>/cam<id>/image<frame>.jpg
    ROOT/annotations/<split>/InterHand2.6M_<split>_{data,camera,joint_3d,MANO_NeuralAnnot}.json

Selection follows IntagHand's preprocessing: annotations with ``hand_type == 'interacting'``,
``hand_type_valid`` and NeuralAnnot MANO parameters for both hands (``hands='single'`` keeps
single-hand images instead; ``'all'`` keeps both kinds); images darker than mean 10 are dropped.
Meshes come from the hand model (MANO, metres, world frame), move to the camera with
X_cam = R (X - campos / 1000) and project with the focal length and principal point. The crop is
IntagHand's: a square around the projected vertices of the annotated hands, side = extent / 0.8,
resampled to ``size`` x ``size``; the crop's intrinsics are stored with it, and masks are
rendered from the meshes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hand_nas.errors import HandNasError
from hand_nas.files import read_json
from hand_nas.hand.topology import HANDS

SPLITS = ("train", "val", "test")
SUBSET_DIRS = {"H": "human_annot", "M": "machine_annot", "HM": "all"}
KINDS = ("data", "camera", "joint_3d", "MANO_NeuralAnnot")


def annotation_paths(root: Path, split: str, subset: str = "HM") -> dict[str, Path]:
    """The four annotation files of a split, for the v1.0 or v0.0 layout."""
    if split not in SPLITS:
        raise HandNasError(f"split {split!r}: expected one of {SPLITS}")
    if subset not in SUBSET_DIRS:
        raise HandNasError(f"subset {subset!r}: expected one of {sorted(SUBSET_DIRS)}")
    v1 = root / "annotations" / split
    v0 = root / "annotations" / SUBSET_DIRS[subset]
    if subset == "HM" and v1.is_dir():
        folder = v1
    elif v0.is_dir():
        folder = v0
    elif subset != "HM" and v1.is_dir():
        raise HandNasError(f"{v0}: missing; the v1.0 layout ({v1}) mixes human and machine annotations, so "
                           f"subset {subset!r} needs v0.0's {SUBSET_DIRS[subset]}/ folder")
    else:
        raise HandNasError(f"{v1}: missing (expected InterHand2.6M's annotations/<split>/ folder)")
    return {k: folder / f"InterHand2.6M_{split}_{k}.json" for k in KINDS}


def _field(obj: dict, key: str, path: Path, where: str):
    try:
        return obj[key]
    except (KeyError, TypeError):
        raise HandNasError(f"{path}: {where} has no field {key!r}") from None


@dataclass(frozen=True)
class Record:
    """One selected image: where it is and everything needed to build its sample."""

    image_path: Path
    ann_id: int
    pose: np.ndarray  # (2, 48), left first
    betas: np.ndarray  # (2, 10)
    transl: np.ndarray  # (2, 3)
    valid: np.ndarray  # (2,) bool
    cam_R: np.ndarray  # (3, 3)
    cam_t: np.ndarray  # (3,) metres
    K: np.ndarray  # (3, 3) of the full image
    source_id: str


def select_records(root: str | Path, split: str, subset: str = "HM", hands: str = "interacting") -> list[Record]:
    """Read the annotation files and select images as IntagHand does (see module docstring)."""
    if hands not in ("interacting", "single", "all"):
        raise HandNasError(f"hands {hands!r}: expected 'interacting', 'single' or 'all'")
    root = Path(root)
    paths = annotation_paths(root, split, subset)
    data = read_json(paths["data"])
    cameras = read_json(paths["camera"])
    mano = read_json(paths["MANO_NeuralAnnot"])
    if not paths["joint_3d"].is_file():
        raise HandNasError(f"{paths['joint_3d']}: missing")
    images = {int(_field(im, "id", paths["data"], "an images[] entry")): im
              for im in _field(data, "images", paths["data"], "the top level")}
    records = []
    for ann in _field(data, "annotations", paths["data"], "the top level"):
        where = f"annotation {ann.get('id')}"
        hand_type = _field(ann, "hand_type", paths["data"], where)
        if not _field(ann, "hand_type_valid", paths["data"], where):
            continue
        if hands == "interacting" and hand_type != "interacting":
            continue
        if hands == "single" and hand_type not in ("left", "right"):
            continue
        image_id = int(_field(ann, "image_id", paths["data"], where))
        if image_id not in images:
            raise HandNasError(f"{paths['data']}: {where} refers to image_id {image_id}, which is not in images[]")
        im = images[image_id]
        capture, frame = str(_field(im, "capture", paths["data"], f"image {image_id}")), str(
            _field(im, "frame_idx", paths["data"], f"image {image_id}"))
        cam = str(_field(im, "camera", paths["data"], f"image {image_id}"))
        params = mano.get(capture, {}).get(frame)
        if params is None:
            continue
        wanted = ("left", "right") if hand_type == "interacting" else (hand_type,)
        if any(params.get(side) is None for side in wanted):
            continue
        pose, betas, transl = np.zeros((2, 48)), np.zeros((2, 10)), np.zeros((2, 3))
        valid = np.zeros(2, bool)
        for h, side in enumerate(HANDS):
            p = params.get(side)
            if side not in wanted or p is None:
                continue
            mwhere = f"capture {capture} frame {frame} hand {side!r}"
            pose[h] = _array(_field(p, "pose", paths["MANO_NeuralAnnot"], mwhere), (48,), paths["MANO_NeuralAnnot"], mwhere + " pose")
            betas[h] = _array(_field(p, "shape", paths["MANO_NeuralAnnot"], mwhere), (10,), paths["MANO_NeuralAnnot"], mwhere + " shape")
            transl[h] = _array(_field(p, "trans", paths["MANO_NeuralAnnot"], mwhere), (3,), paths["MANO_NeuralAnnot"], mwhere + " trans")
            valid[h] = True
        cap_cam = cameras.get(capture)
        if cap_cam is None:
            raise HandNasError(f"{paths['camera']}: no capture {capture!r} (needed by image {image_id})")
        cwhere = f"capture {capture}"
        campos = _array(_field(_field(cap_cam, "campos", paths["camera"], cwhere), cam, paths["camera"], cwhere + " campos"), (3,), paths["camera"], f"campos[{cam}]")
        camrot = _array(_field(_field(cap_cam, "camrot", paths["camera"], cwhere), cam, paths["camera"], cwhere + " camrot"), (3, 3), paths["camera"], f"camrot[{cam}]")
        focal = _array(_field(_field(cap_cam, "focal", paths["camera"], cwhere), cam, paths["camera"], cwhere + " focal"), (2,), paths["camera"], f"focal[{cam}]")
        princpt = _array(_field(_field(cap_cam, "princpt", paths["camera"], cwhere), cam, paths["camera"], cwhere + " princpt"), (2,), paths["camera"], f"princpt[{cam}]")
        K = np.array([[focal[0], 0, princpt[0]], [0, focal[1], princpt[1]], [0, 0, 1.0]])
        file_name = _field(im, "file_name", paths["data"], f"image {image_id}")
        records.append(Record(
            image_path=root / "images" / split / file_name, ann_id=int(ann.get("id", -1)), pose=pose, betas=betas,
            transl=transl, valid=valid, cam_R=camrot, cam_t=-camrot @ campos / 1000.0, K=K,
            source_id=f"{split}/{file_name}"))
    return records


def _array(value, shape, path: Path, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise HandNasError(f"{path}: {where} is not numeric") from None
    if arr.shape != shape:
        raise HandNasError(f"{path}: {where} has shape {arr.shape}, expected {shape}")
    return arr


def crop_transform(points2d: np.ndarray, size: int) -> tuple[np.ndarray, float, np.ndarray]:
    """IntagHand's square crop around 2D points: (3x3 pixel map full -> crop, side, centre)."""
    lo, hi = points2d.min(0), points2d.max(0)
    side = float((hi - lo).max() / 0.8)
    centre = (lo + hi) / 2
    s = size / side
    # Pixel centres sit at integer coordinates: the crop's [-0.5, size - 0.5] spans the square.
    a = np.array([[s, 0, (side / 2 - centre[0]) * s - 0.5], [0, s, (side / 2 - centre[1]) * s - 0.5], [0, 0, 1.0]])
    return a, side, centre


def prepare(root: str | Path, out: str | Path, split: str = "test", subset: str = "HM", hands: str = "interacting",
            mano_dir=None, size: int = 256, limit: int | None = None, overwrite: bool = False,
            progress: bool = True) -> dict:
    """Write the preprocessed cache of one split (atomically). Returns counts."""
    import torch
    from PIL import Image
    from tqdm import tqdm

    from hand_nas.atomic import atomic_dir
    from hand_nas.data.render import hand_mask
    from hand_nas.data.samples import SampleWriter
    from hand_nas.data.transforms import warp
    from hand_nas.hand.geometry import project
    from hand_nas.hand.mano import HandModel
    from hand_nas.hand.topology import faces_fingerprint

    records = select_records(root, split, subset, hands)
    if limit is not None:
        records = records[:limit]
    if not records:
        raise HandNasError(f"{root}: no {hands} images with MANO parameters in split {split!r} (subset {subset})")
    model = HandModel(mano_dir).eval()
    faces = model.faces
    kept, dark = 0, 0
    with atomic_dir(out, overwrite=overwrite) as tmp:
        writer = SampleWriter(tmp, len(records), size)
        for rec in tqdm(records, desc=f"prepare {split}", unit="img", disable=not progress):
            if not rec.image_path.is_file():
                raise HandNasError(f"{rec.image_path}: image missing (annotation {rec.ann_id})")
            try:
                image = Image.open(rec.image_path)
                image.load()
            except OSError as exc:
                raise HandNasError(f"{rec.image_path}: unreadable image ({exc})") from None
            if np.asarray(image.convert("L")).mean() < 10:
                dark += 1
                continue
            with torch.no_grad():
                v, _ = model(torch.tensor(rec.pose[None], dtype=torch.float32),
                             torch.tensor(rec.betas[None], dtype=torch.float32),
                             torch.tensor(rec.transl[None], dtype=torch.float32))
            world = v[0].double().numpy()
            cam = world @ rec.cam_R.T + rec.cam_t
            pts = np.concatenate([project(cam[h], rec.K) for h in range(2) if rec.valid[h]], 0)
            a, _, _ = crop_transform(pts, size)
            K_crop = a @ rec.K
            crop = warp(np.asarray(image.convert("RGB")), a, size)
            mask = hand_mask(cam, [faces[side] for side in HANDS], K_crop, (size, size), rec.valid)
            joints = model.joints(torch.from_numpy(cam)).numpy()
            writer.put(kept, images=crop, masks=mask.reshape(size, size), verts=cam * rec.valid[:, None, None],
                       joints=joints * rec.valid[:, None, None], K=K_crop, pose=rec.pose, betas=rec.betas,
                       transl=rec.transl, cam_R=rec.cam_R, cam_t=rec.cam_t, valid=rec.valid, source_id=rec.source_id)
            kept += 1
        if kept == 0:
            raise HandNasError(f"{root}: every selected image is darker than mean 10; nothing to write")
        writer.close({"source": "interhand2.6m", "split": split, "subset": subset, "hands": hands,
                      "root": str(root), "dropped_dark": dark,
                      "hand_model": {"mano_dir": str(model.mano_dir), "fingerprint": faces_fingerprint(faces["right"])}},
                     count=kept)
    return {"selected": len(records), "written": kept, "dropped_dark": dark}

