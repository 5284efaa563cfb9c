"""Miniature InterHand2.6M trees in the official layout and JSON formats, for tests and demos.

No InterHand2.6M images are reachable where hand-nas is developed, so the reader is exercised on
trees written here: real file names and keys, cameras with InterHand2.6M's conventions (campos in
mm, camrot world -> camera, focal/princpt in pixels), MANO NeuralAnnot parameters of the given hand
model (metres, world frame), joint_3d in mm in InterHand2.6M's joint order, and images. Each image
is grey with a small bright blob drawn at the true projection of some joints, so a test can check
that crops put them where the geometry says.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hand_nas.hand.topology import HANDS, IH26M_FROM_OURS

WIDTH, HEIGHT = 334, 512
BLOB_JOINTS = (0, 12)  # wrist and middle fingertip of each hand carry a blob


def look_at(campos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> camera rotation (rows x, y, z) for a camera at ``campos`` looking at ``target``."""
    z = target - campos
    z = z / np.linalg.norm(z)
    x = np.cross(np.array([0.0, -1.0, 0.0]), z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def _blob(img: np.ndarray, u: float, v: float, sigma: float = 1.5, radius: int = 12) -> None:
    # Only a window around the centre: beyond 8 sigma the Gaussian adds < 1e-12 grey levels, and
    # the full-frame version made trees of 10,000 images slow to write.
    if not (np.isfinite(u) and np.isfinite(v)):
        return
    x0, y0 = max(int(u) - radius, 0), max(int(v) - radius, 0)
    x1, y1 = min(int(u) + radius + 1, img.shape[1]), min(int(v) + radius + 1, img.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1]
    img[y0:y1, x0:x1] += 200.0 * np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma**2))


def write_mock_interhand(root: str | Path, split: str = "test", captures: int = 2, frames: int = 2,
                         cameras: int = 2, mano_dir=None, seed: int = 0, dark_image: bool = True,
                         dark_every: int = 0) -> dict:
    """Write the tree; returns the ground truth the reader should reproduce.

    Args:
        dark_image: also write a dark copy of the first image, annotated as interacting.
        dark_every: if > 0, every ``dark_every``-th interacting image is written dark (mean < 10)
            in place, as a scale test wants a realistic share of dropped images.

    Returns:
        "truth": {source_id: {"joints_world_m": (2, 21, 3), "K": (3, 3), "R": (3, 3), "campos_mm": (3,)}}
        for every interacting image, "extra": the additional annotations (which the interacting
        selection must skip or drop), "dark": source ids of the images written dark in place.
    """
    import torch
    from PIL import Image

    from hand_nas.hand import articulation
    from hand_nas.hand.geometry import project
    from hand_nas.hand.mano import HandModel

    root = Path(root)
    rng = np.random.default_rng(seed)
    model = HandModel(mano_dir).eval()
    right = model.layers["right"]
    vt = right.v_template.detach().numpy().astype(np.float64)
    jreg = right.J_regressor.detach().numpy().astype(np.float64)
    axes = articulation.HandAxes.from_rest(jreg @ vt, {f: vt[v] for f, v in articulation.FINGER_TIP_VERT.items()})

    data = {"images": [], "annotations": []}
    camera_json, joint_json, mano_json, truth = {}, {}, {}, {}
    image_id = ann_id = 0
    darkened = []
    for c in range(captures):
        cap = str(c)
        camera_json[cap] = {"campos": {}, "camrot": {}, "focal": {}, "princpt": {}}
        joint_json[cap], mano_json[cap] = {}, {}
        cams = []
        for k in range(cameras):
            name = str(400262 + k)
            ang = rng.uniform(-0.6, 0.6)
            campos = np.array([np.sin(ang) * 700.0, rng.uniform(-150, 150), -np.cos(ang) * 700.0])
            rot = look_at(campos / 1000.0, np.zeros(3))
            camera_json[cap]["campos"][name] = campos.tolist()
            camera_json[cap]["camrot"][name] = rot.tolist()
            camera_json[cap]["focal"][name] = [1200.0 + rng.uniform(-20, 20), 1200.0 + rng.uniform(-20, 20)]
            camera_json[cap]["princpt"][name] = [WIDTH / 2 + rng.uniform(-5, 5), HEIGHT / 2 + rng.uniform(-5, 5)]
            cams.append(name)
        for f in range(frames):
            frame = str(f * 3)
            angles = articulation.sample_angles(rng, 2)
            poses = articulation.angles_to_pose(angles, axes)
            hand_pose = np.stack([articulation.mirror_pose(poses[0]) - model.hands_mean["left"],
                                  poses[1] - model.hands_mean["right"]])
            glob = rng.normal(0, 0.4, (2, 3))
            betas = rng.normal(0, 0.5, (2, 10))
            transl = np.array([[-0.05, 0.0, 0.0], [0.05, 0.0, 0.0]]) + rng.normal(0, 0.01, (2, 3))
            pose48 = np.concatenate([glob, hand_pose], 1)
            with torch.no_grad():
                _, j = model(torch.tensor(pose48[None], dtype=torch.float32), torch.tensor(betas[None], dtype=torch.float32),
                             torch.tensor(transl[None], dtype=torch.float32))
            joints = j[0].double().numpy()
            mano_json[cap][frame] = {side: {"pose": pose48[h].tolist(), "shape": betas[h].tolist(),
                                            "trans": transl[h].tolist()} for h, side in enumerate(HANDS)}
            world42 = np.zeros((42, 3))
            world42[np.array(IH26M_FROM_OURS)] = joints[1] * 1000.0  # right 0-20
            world42[21 + np.array(IH26M_FROM_OURS)] = joints[0] * 1000.0  # left 21-41
            joint_json[cap][frame] = {"world_coord": world42.tolist(), "joint_valid": [[1]] * 42,
                                      "hand_type": "interacting", "hand_type_valid": True}
            for name in cams:
                rot = np.array(camera_json[cap]["camrot"][name])
                campos = np.array(camera_json[cap]["campos"][name])
                fx, fy = camera_json[cap]["focal"][name]
                cx, cy = camera_json[cap]["princpt"][name]
                K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
                img = np.full((HEIGHT, WIDTH), 90.0)
                for h in range(2):
                    cam_pts = (joints[h] - campos / 1000.0) @ rot.T
                    for jid in BLOB_JOINTS:
                        u, v = project(cam_pts[jid:jid + 1], K)[0]
                        _blob(img, u, v)
                seq = "0000_neutral_relaxed"
                file_name = f"Capture{c}/{seq}/cam{name}/image{frame}.jpg"
                path = root / "images" / split / file_name
                path.parent.mkdir(parents=True, exist_ok=True)
                if dark_every > 0 and image_id % dark_every == dark_every - 1:
                    img *= 0.02
                    darkened.append(f"{split}/{file_name}")
                rgb = np.clip(np.stack([img] * 3, -1), 0, 255).astype(np.uint8)
                Image.fromarray(rgb).save(path, quality=97)
                data["images"].append({"id": image_id, "file_name": file_name, "width": WIDTH, "height": HEIGHT,
                                       "capture": c, "subject": 0, "seq_name": seq, "camera": name,
                                       "frame_idx": int(frame)})
                data["annotations"].append({"id": ann_id, "image_id": image_id, "bbox": [0, 0, WIDTH, HEIGHT],
                                            "joint_valid": [[1]] * 42, "hand_type": "interacting",
                                            "hand_type_valid": 1})
                truth[f"{split}/{file_name}"] = {"joints_world_m": joints, "K": K, "R": rot, "campos_mm": campos}
                image_id += 1
                ann_id += 1
    # Annotations the interacting selection must skip: a single hand, an invalid hand type and,
    # optionally, a dark image.
    extra = []
    first = data["images"][0]
    for kind in ("right", "invalid") + (("dark",) if dark_image else ()):
        im = dict(first, id=image_id, file_name=first["file_name"].replace(".jpg", f"_{kind}.jpg"))
        src = root / "images" / split / first["file_name"]
        img = Image.open(src)
        if kind == "dark":
            img = Image.fromarray((np.asarray(img) * 0.02).astype(np.uint8))
        img.save(root / "images" / split / im["file_name"], quality=97)
        data["images"].append(im)
        data["annotations"].append({"id": ann_id, "image_id": image_id, "bbox": [0, 0, WIDTH, HEIGHT],
                                    "joint_valid": [[1]] * 42, "hand_type": "right" if kind == "right" else "interacting",
                                    "hand_type_valid": 0 if kind == "invalid" else 1})
        extra.append(kind)
        image_id += 1
        ann_id += 1
    ann_dir = root / "annotations" / split
    ann_dir.mkdir(parents=True, exist_ok=True)
    for kind, obj in (("data", data), ("camera", camera_json), ("joint_3d", joint_json),
                      ("MANO_NeuralAnnot", mano_json)):
        (ann_dir / f"InterHand2.6M_{split}_{kind}.json").write_text(json.dumps(obj))
    return {"truth": truth, "extra": extra, "dark": darkened}
