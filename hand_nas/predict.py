"""Single-image inference: both hands' meshes from one RGB image, written as OBJ files and an overlay PNG.

``predict_image`` is pure (image array in, arrays out); ``write_prediction`` does the IO. Meshes are
in metres, the left hand's root joint at the origin and the right hand placed by the predicted
relative root (the model's root-relative convention). The overlay uses the model's weak-perspective
projection (``verts2d``), so it shows what the network believes, not a camera fit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from hand_nas.errors import HandNasError
from hand_nas.hand.topology import HANDS


def load_image(path: str | Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the image centre-cropped to a square and resized (the network's input).

    16-bit images are scaled to 8 bits (Pillow's own conversion would clip them to white); images
    Pillow flags as decompression bombs, float images and unreadable files are one-line errors.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise HandNasError(f"{path}: image not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as src:
                img = to_rgb8(src, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise HandNasError(f"{path}: image too large to decode safely (more than {Image.MAX_IMAGE_PIXELS} "
                           "pixels; Pillow's decompression-bomb limit)") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise HandNasError(f"{path}: not a readable image ({exc})") from None
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    return np.asarray(img.crop((left, top, left + s, top + s)).resize((size, size), Image.BILINEAR))


def to_rgb8(img, path: str | Path = "image"):
    """An 8-bit RGB copy of a Pillow image; 16-bit grey levels are scaled (65535 -> 255), not clipped."""
    from PIL import Image

    if img.mode.startswith("I"):  # 'I;16', 'I;16B', ...: 16-bit grey; 'I': 32-bit integers (16-bit PNGs, TIFF)
        a = np.asarray(img).astype(np.int64)
        top = 255 if img.mode == "I" and a.size and a.max() <= 255 else 65535
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise HandNasError(f"{path}: {img.mode} image with values outside 0..65535; convert it to 8-bit RGB")
        return Image.fromarray(np.round(a * (255.0 / top)).astype(np.uint8), "L").convert("RGB")
    if img.mode == "F":
        raise HandNasError(f"{path}: floating-point image (mode F) has no fixed range; convert it to 8-bit RGB")
    return img.convert("RGB")


def predict_image(model: nn.Module, image: np.ndarray) -> dict[str, np.ndarray]:
    """Run ``model`` on one (S, S, 3) uint8 image.

    Returns:
        verts (2, 778, 3) and joints (2, 21, 3) metres, left root at the origin; verts2d (2, 778, 2)
        and joints2d (2, 21, 2) pixel coordinates in the input image.
    """
    size = image.shape[0]
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255).unsqueeze(0)
    model.eval()
    with torch.no_grad():
        out = model(x)
    if out.verts is None:
        raise HandNasError(f"model {getattr(model, 'cfg', None) and model.cfg.name}: predicts joints only "
                           "(no meshes to write)")
    verts, joints = out.verts[0].clone(), out.joints[0].clone()
    if out.rel_root is not None:
        verts[1] += out.rel_root[0]
        joints[1] += out.rel_root[0]
    cam = out.camera[0]  # (2, 3): uv = s * xy + t, [-1, 1] image coordinates (see HandOutput)
    from hand_nas.models.graph_decoder import COORD_SCALE

    def to_px(p):  # root-relative points (2, N, 3) of each hand -> pixels
        uv = (1.0 + cam[:, None, :1]) * p[..., :2] / COORD_SCALE * 0.5 + cam[:, None, 1:]
        return ((uv + 1) / 2 * size - 0.5).numpy()

    return {"verts": verts.numpy(), "joints": joints.numpy(), "verts2d": to_px(out.verts[0]),
            "joints2d": to_px(out.joints[0])}


def obj_text(verts: np.ndarray, faces: np.ndarray) -> str:
    """Wavefront OBJ of one mesh: verts (V, 3), faces (F, 3) zero-based."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in verts]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return "\n".join(lines) + "\n"


def write_prediction(pred: dict, image: np.ndarray, faces: dict[str, np.ndarray], out: str | Path) -> list[Path]:
    """left.obj, right.obj and overlay.png as the folder ``out``; returns their paths.

    The folder is written as a whole (``atomic_dir``): a previous prediction (it carries the
    ``.hand-nas`` marker) is replaced, a folder hand-nas did not write is refused.
    """
    from hand_nas.atomic import atomic_dir
    from hand_nas.data.sheet import draw_overlay

    out = Path(out)
    names = [f"{side}.obj" for side in HANDS] + ["overlay.png"]
    scale = max(1, 512 // image.shape[0])
    png = draw_overlay(image, pred["verts2d"], pred["joints2d"], faces, scale=scale, label="hand-nas predict")
    with atomic_dir(out, overwrite=True) as tmp:
        for h, side in enumerate(HANDS):
            (tmp / names[h]).write_text(obj_text(pred["verts"][h], faces[side]))
        png.convert("RGB").save(tmp / names[-1], format="PNG")
    return [out / n for n in names]
