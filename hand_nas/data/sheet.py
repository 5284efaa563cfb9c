"""Pictures for trusting data: contact sheets with meshes and joints drawn over the images, and a
sheet of named poses of the hand model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hand_nas.hand.topology import BONES_21, HANDS

HAND_COLOURS = {"left": (60, 140, 255), "right": (255, 80, 60)}
FINGER_COLOURS = [(255, 255, 255), (255, 220, 0), (0, 230, 120), (0, 200, 255), (200, 80, 255), (255, 120, 200)]


def _edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], 0)
    return np.unique(np.sort(e, 1), axis=0)


def draw_overlay(image: np.ndarray, verts2d: np.ndarray, joints2d: np.ndarray, faces: dict[str, np.ndarray],
                 valid=(True, True), scale: int = 1, label: str | None = None):
    """Draw both hands' mesh edges (translucent) and skeletons over an image.

    Args:
        image: (H, W, 3) uint8.
        verts2d: (2, 778, 2), joints2d: (2, 21, 2) pixel coordinates, left first.
        faces: per-hand faces.
        valid: which hands to draw.
        scale: upsampling factor of the drawing (thin lines stay visible).
        label: optional caption.

    Returns:
        a PIL image.
    """
    from PIL import Image, ImageDraw

    base = Image.fromarray(image).convert("RGBA")
    if scale != 1:
        base = base.resize((base.width * scale, base.height * scale), Image.BILINEAR)
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    to_px = lambda p: ((p[0] + 0.5) * scale - 0.5, (p[1] + 0.5) * scale - 0.5)  # noqa: E731
    for h, side in enumerate(HANDS):
        if not valid[h]:
            continue
        col = HAND_COLOURS[side]
        for a, b in _edges(faces[side]):
            draw.line([to_px(verts2d[h, a]), to_px(verts2d[h, b])], fill=col + (70,), width=1)
    for h, side in enumerate(HANDS):
        if not valid[h]:
            continue
        for k, (a, b) in enumerate(BONES_21):
            draw.line([to_px(joints2d[h, a]), to_px(joints2d[h, b])], fill=FINGER_COLOURS[1 + k // 4] + (255,),
                      width=max(1, scale))
        r = 1.5 * scale
        for j in range(21):
            x, y = to_px(joints2d[h, j])
            draw.ellipse([x - r, y - r, x + r, y + r], fill=HAND_COLOURS[side] + (255,), outline=(255, 255, 255, 255))
    if label:
        draw.rectangle([0, 0, 8 * len(label) + 6, 14], fill=(0, 0, 0, 160))
        draw.text((3, 1), label, fill=(255, 255, 255, 255))
    return Image.alpha_composite(base, layer).convert("RGB")


def contact_sheet(folder: str | Path, out: str | Path, count: int = 16, cols: int = 4, scale: int = 2,
                  mano_dir=None) -> Path:
    """Tile ``count`` evenly spaced samples of a sample directory with their labels drawn on top."""
    from PIL import Image

    from hand_nas.atomic import atomic_file
    from hand_nas.data.samples import open_samples
    from hand_nas.hand.geometry import project
    from hand_nas.hand.mano import HandModel

    s = open_samples(folder)
    model_dir = mano_dir or s.meta.get("hand_model", {}).get("mano_dir")
    faces = HandModel(model_dir if model_dir and Path(model_dir).exists() else None).faces
    picks = np.unique(np.linspace(0, len(s) - 1, min(count, len(s))).round().astype(int))
    tiles = []
    for i in picks:
        K, valid = np.asarray(s["K"][i], np.float64), np.asarray(s["valid"][i])
        v2d = np.stack([project(np.asarray(s["verts"][i][h], np.float64), K) if valid[h] else np.zeros((778, 2))
                        for h in range(2)])
        j2d = np.stack([project(np.asarray(s["joints"][i][h], np.float64), K) if valid[h] else np.zeros((21, 2))
                        for h in range(2)])
        tiles.append(draw_overlay(np.asarray(s["images"][i]), v2d, j2d, faces, valid, scale, label=f"#{i}"))
    rows = (len(tiles) + cols - 1) // cols
    w, h = tiles[0].size
    sheet = Image.new("RGB", (cols * w, rows * h), (20, 20, 20))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % cols) * w, (k // cols) * h))
    with atomic_file(out) as fh:
        sheet.save(fh, format="PNG")
    return Path(out)


def pose_sheet(out: str | Path, mano_dir=None, size: int = 320) -> Path:
    """Render the named poses (both hands, 3/4 view) side by side with their names."""
    import torch
    from PIL import Image, ImageDraw
    from scipy.spatial.transform import Rotation

    from hand_nas.atomic import atomic_file
    from hand_nas.data.render import Shading, render_hands
    from hand_nas.data.synthetic import crop_intrinsics
    from hand_nas.hand import articulation
    from hand_nas.hand.mano import HandModel

    model = HandModel(mano_dir).eval()
    right = model.layers["right"]
    vt = right.v_template.detach().numpy().astype(np.float64)
    jreg = right.J_regressor.detach().numpy().astype(np.float64)
    axes = articulation.HandAxes.from_rest(jreg @ vt, {f: vt[v] for f, v in articulation.FINGER_TIP_VERT.items()})
    faces = np.stack([model.faces["left"], model.faces["right"]])
    view = Rotation.from_euler("xyz", [200, -25, 10], degrees=True).as_matrix()  # palms toward the camera
    tiles = []
    for name in articulation.NAMED_POSES:
        r_pose = articulation.angles_to_pose(articulation.named_angles(name), axes)
        pose = np.zeros((1, 2, 48))
        pose[0, 0, 3:] = articulation.mirror_pose(r_pose) - model.hands_mean["left"]
        pose[0, 1, 3:] = r_pose - model.hands_mean["right"]
        with torch.no_grad():
            v, _ = model(torch.tensor(pose, dtype=torch.float32), torch.zeros(1, 2, 10))
        v = v[0].double().numpy() @ view.T
        v[0] += np.array([-0.11, 0, 0])
        v[1] += np.array([0.11, 0, 0])
        v += np.array([0, 0, 0.6]) - v.reshape(-1, 3).mean(0)
        K = crop_intrinsics(v.reshape(-1, 3), size)
        light = np.array([0.3, -0.4, -1.0])
        shading = Shading(skin=np.array([[0.85, 0.66, 0.55]] * 2), light_dir=light / np.linalg.norm(light))
        img, _ = render_hands(v, faces, K, (size, size), shading, np.full((size, size, 3), 235, np.uint8))
        tile = Image.fromarray(img)
        ImageDraw.Draw(tile).text((8, 6), name, fill=(0, 0, 0))
        tiles.append(tile)
    sheet = Image.new("RGB", (3 * size, 2 * size), (255, 255, 255))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % 3) * size, (k // 3) * size))
    with atomic_file(out) as fh:
        sheet.save(fh, format="PNG")
    return Path(out)
