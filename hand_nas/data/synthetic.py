"""The embedded default data set: two interacting procedural hands rendered to RGB crops.

Each sample draws, from a generator seeded by (seed, index) so any sample is reproducible alone:
anatomical poses for both hands, one person's shape, global orientations around a fingers-up prior
(palm or back to the camera, rolled in the image plane), a relative
placement at a sampled contact distance (the hands touch or nearly touch, and either may occlude
the other), a camera distance, a square crop around both hands as IntagHand makes it (side = extent
/ 0.8, jittered), a light, a skin tone and a dark studio backdrop as in InterHand2.6M. The camera frame is
the MANO frame. The set is easier than InterHand2.6M on purpose (see ``SYNTH_VERSION``): it is what
minutes-long proxies on a laptop train on, and they must learn something from it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hand_nas.data.render import Shading, render_hands
from hand_nas.errors import HandNasError
from hand_nas.hand import articulation
from hand_nas.hand.topology import faces_fingerprint

SYNTH_VERSION = 3  # bump when sampling or rendering changes: cached sets are keyed by it
# Version 3: every hand in the fingers-up prior with 0.2 rad of rotation noise (was: 15% uniformly random
# hands, 0.45 rad) on a dark capture-studio backdrop (was: random textures). Measured with a plain CNN as
# the control (experiments/learnability.py, 1000 steps at 64 px): version 2 ended at 0.97-1.16x the
# mean-shape constant, version 3's settings at 0.75x; minutes-long proxies learnt nothing on version 2.
ORIENTATION_NOISE = 0.2  # rad, std of the rotation vector around the fingers-up prior

SKIN_TONES = np.array([
    (0.96, 0.80, 0.69), (0.93, 0.76, 0.66), (0.90, 0.72, 0.60), (0.80, 0.60, 0.47),
    (0.76, 0.57, 0.45), (0.65, 0.46, 0.34), (0.48, 0.33, 0.24), (0.36, 0.24, 0.17),
])


@dataclass(frozen=True)
class SceneParams:
    """Everything random about one sample except the rendering noise.

    Attributes:
        pose_abs: (2, 45) absolute hand poses (left, right).
        betas: (2, 10).
        rot: (2, 3, 3) global rotations.
        contact: target closest distance between the hands, metres.
        direction: (3,) unit direction from the right hand to the left hand.
        depth: distance of the pair from the camera, metres.
        crop_scale, crop_shift: jitter of the IntagHand-style crop.
    """

    pose_abs: np.ndarray
    betas: np.ndarray
    rot: np.ndarray
    contact: float
    direction: np.ndarray
    depth: float
    crop_scale: float
    crop_shift: np.ndarray


def axis_rotation(axis: str, angle: float) -> np.ndarray:
    """The 3x3 rotation by ``angle`` (radians) about the ``y`` or ``z`` axis."""
    c, s = np.cos(angle), np.sin(angle)
    return {"y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]), "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])}[axis]


def hand_orientation(rng: np.random.Generator, roll: float) -> np.ndarray:
    """Fingers up, palm or back toward the camera, rolled in the image plane by ``roll``, perturbed.

    Hands in InterHand2.6M crops mostly enter from below; a uniform SO(3) per hand (version 2 drew
    15% of hands so) is harder than the real data and made minutes-long proxies learn nothing.
    """
    from scipy.spatial.transform import Rotation

    base = axis_rotation("z", np.pi + roll)  # MANO's +y fingers -> image up; its dorsal +z faces away
    if rng.random() < 0.5:
        base = base @ axis_rotation("y", np.pi)  # show the back of the hand instead
    return base @ Rotation.from_rotvec(rng.normal(0, ORIENTATION_NOISE, 3)).as_matrix()


def sample_scene(rng: np.random.Generator, axes: articulation.HandAxes, orientation=None) -> SceneParams:
    """One scene's parameters; ``orientation(rng, roll) -> 3x3`` draws each hand's (``hand_orientation``)."""
    orientation = orientation or hand_orientation
    angles = articulation.sample_angles(rng, 2)
    right_pose = articulation.angles_to_pose(angles, axes)  # both sampled as right hands
    pose_abs = np.stack([articulation.mirror_pose(right_pose[0]), right_pose[1]])
    person = rng.normal(0, 0.8, 10)
    betas = np.stack([person + rng.normal(0, 0.05, 10), person + rng.normal(0, 0.05, 10)])
    direction = rng.normal(size=3)
    direction[0] = -abs(direction[0]) - 0.3  # left hand mostly on the image's left
    direction /= np.linalg.norm(direction)
    return SceneParams(
        pose_abs=pose_abs, betas=betas,
        rot=np.stack([orientation(rng, roll + rng.normal(0, 0.3)) for roll in [rng.uniform(-1.0, 1.0)] * 2]),
        contact=float(rng.uniform(0.0, 0.02)), direction=direction, depth=float(rng.uniform(0.4, 0.8)),
        crop_scale=float(rng.uniform(0.95, 1.1)), crop_shift=rng.uniform(-0.03, 0.03, 2))


def place_hands(local_v: np.ndarray, local_j0: np.ndarray, scene: SceneParams) -> tuple[np.ndarray, np.ndarray]:
    """Wrist positions that put the hands at the scene's contact distance.

    Args:
        local_v: (2, 778, 3) posed vertices with zero global rotation and translation.
        local_j0: (2, 3) wrist joints of the same.

    Returns:
        rotated vertices relative to their wrists (2, 778, 3) and wrist positions (2, 3).
    """
    from scipy.spatial import cKDTree

    rel = np.einsum("hij,hvj->hvi", scene.rot, local_v - local_j0[:, None])
    sub = rel[:, ::3]
    right_tree = cKDTree(sub[1])
    # Bisection on the separation along `direction` for the sampled closest distance.
    lo, hi = 0.0, 0.35
    centre = sub.mean(1)
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        offset = centre[1] - centre[0] + mid * scene.direction
        if right_tree.query(sub[0] + offset, distance_upper_bound=scene.contact)[0].min() < scene.contact:
            lo = mid
        else:
            hi = mid
    wrist = np.stack([centre[1] - centre[0] + hi * scene.direction, np.zeros(3)])
    return rel, wrist


def crop_intrinsics(points: np.ndarray, size: int, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """IntagHand's crop as a pinhole camera: a square around the points, side = extent / 0.8.

    Args:
        points: (N, 3) camera-frame points that must fit.
        size: crop side in pixels.
        scale, shift: jitter (side multiplier; centre offset as a fraction of the side).

    Returns:
        (3, 3) intrinsics of the ``size`` x ``size`` crop (pixel centres at integer coordinates).
    """
    q = points[:, :2] / points[:, 2:3]
    lo, hi = q.min(0), q.max(0)
    side = (hi - lo).max() / 0.8 * scale
    centre = (lo + hi) / 2 + np.asarray(shift) * side
    f = size / side
    c = (side / 2 - centre) * f - 0.5
    return np.array([[f, 0, c[0]], [0, f, c[1]], [0, 0, 1.0]])


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (size, size, 3) uint8 backdrop as in InterHand2.6M's capture studio: dark, nearly uniform, a faint
    vertical gradient (version 2 drew random gradients, blobs, shapes or stripes; ``experiments/learnability.py``
    keeps that generator for its comparisons)."""
    base = rng.uniform(0.02, 0.15) * rng.uniform(0.8, 1.2, 3).astype(np.float32)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None] * np.float32(rng.uniform(-0.05, 0.05))
    return (np.clip(base + ramp + np.zeros((size, size, 1), np.float32), 0, 1) * 255).astype(np.uint8)


def _shading(rng: np.random.Generator) -> Shading:
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.1, 3)
    skin = np.clip(np.stack([tone * rng.uniform(0.97, 1.03, 3), tone * rng.uniform(0.97, 1.03, 3)]), 0, 1)
    light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), -1.0])
    return Shading(skin=skin, light_dir=light / np.linalg.norm(light), ambient=float(rng.uniform(0.25, 0.5)),
                   specular=float(rng.uniform(0.0, 0.15)))


class SyntheticRenderer:
    """Renders synthetic samples with a hand model (procedural by default).

    Args:
        mano_dir: passed to ``HandModel``.
        size: image side in pixels.
        orientation: ``(rng, roll) -> 3x3`` rotation of each hand (default ``hand_orientation``).
        backdrop: ``(rng, size) -> (size, size, 3) uint8`` image behind the hands (default ``background``).
    """

    def __init__(self, mano_dir=None, size: int = 256, orientation=None, backdrop=None) -> None:
        import torch

        from hand_nas.hand.mano import HandModel

        self.size = size
        self.orientation, self.backdrop = orientation or hand_orientation, backdrop or background
        self.model = HandModel(mano_dir).eval()
        right = self.model.layers["right"]
        vt = right.v_template.detach().numpy().astype(np.float64)
        jreg = right.J_regressor.detach().numpy().astype(np.float64)
        tips = {f: vt[articulation.FINGER_TIP_VERT[f]] for f in articulation.FINGER_JOINTS}
        self.axes = articulation.HandAxes.from_rest(jreg @ vt, tips)
        self.hands_mean = self.model.hands_mean
        self.faces = np.stack([self.model.faces["left"], self.model.faces["right"]])
        self._torch = torch

    def render_range(self, seed: int, start: int, stop: int):
        """Yield (index, fields) for samples ``start`` .. ``stop - 1`` of the set with ``seed``."""
        torch = self._torch
        scenes, rngs = [], []
        for i in range(start, stop):
            rng = np.random.default_rng([seed, i])
            scenes.append(sample_scene(rng, self.axes, self.orientation))
            rngs.append(rng)
        n = len(scenes)
        pose = np.zeros((n, 2, 48))
        for k, s in enumerate(scenes):
            pose[k, 0, 3:] = s.pose_abs[0] - self.hands_mean["left"]
            pose[k, 1, 3:] = s.pose_abs[1] - self.hands_mean["right"]
        betas = np.stack([s.betas for s in scenes])
        with torch.no_grad():
            v, _ = self.model(torch.tensor(pose, dtype=torch.float32), torch.tensor(betas, dtype=torch.float32))
            # Wrist (MANO joint 0) of the shaped template: the centre of the global rotation.
            j0 = torch.stack([
                torch.einsum("v,bvc->bc", self.model.layers[side].J_regressor[0],
                             self.model.layers[side].v_template + torch.einsum(
                                 "vcl,bl->bvc", self.model.layers[side].shapedirs,
                                 torch.tensor(betas[:, h], dtype=torch.float32)))
                for h, side in enumerate(("left", "right"))], 1)
        v, j0 = v.numpy().astype(np.float64), j0.numpy().astype(np.float64)
        for k, (s, rng) in enumerate(zip(scenes, rngs)):
            rel, wrist = place_hands(v[k], j0[k], s)
            verts = rel + wrist[:, None]
            centre = verts.reshape(-1, 3).mean(0)
            lateral = rng.uniform(-0.05, 0.05, 2)
            shift = np.array([lateral[0], lateral[1], s.depth]) - centre
            verts = verts + shift
            wrist = wrist + shift
            K = crop_intrinsics(verts.reshape(-1, 3), self.size, s.crop_scale, s.crop_shift)
            image, mask = render_hands(verts, self.faces, K, (self.size, self.size), _shading(rng),
                                       self.backdrop(rng, self.size))
            # Sensor noise, shared by the three channels (cheap, and enough to break flat colours).
            noise = rng.standard_normal((self.size, self.size, 1), dtype=np.float32) * 2.5
            image = np.clip(image + noise, 0, 255).astype(np.uint8)
            full_pose = pose[k].copy()
            for h in range(2):
                from scipy.spatial.transform import Rotation

                full_pose[h, :3] = Rotation.from_matrix(s.rot[h]).as_rotvec()
            joints = np.einsum("jv,hvc->hjc", self.model.joint_regressor.numpy().astype(np.float64), verts)
            yield start + k, dict(
                images=image, masks=mask, verts=verts, joints=joints, K=K, pose=full_pose, betas=betas[k],
                transl=wrist - j0[k], cam_R=np.eye(3), cam_t=np.zeros(3), valid=np.ones(2, bool))


def _worker(folder: str, seed: int, start: int, stop: int, mano_dir, size: int, variant: tuple) -> int:
    import torch

    from hand_nas.data.samples import field_specs

    torch.set_num_threads(1)
    arrays = {name: np.load(Path(folder) / f"{name}.npy", mmap_mode="r+") for name in field_specs(0, size)}
    renderer = SyntheticRenderer(mano_dir, size, *variant)
    for i, fields in renderer.render_range(seed, start, stop):
        for name, value in fields.items():
            arrays[name][i] = value
    for arr in arrays.values():
        arr.flush()
    return stop - start


def synthesize(out: str | Path, n: int, seed: int = 0, mano_dir=None, size: int = 256, workers: int = 1,
               overwrite: bool = False, progress: bool = True, orientation=None, backdrop=None) -> dict:
    """Write ``n`` synthetic samples to the sample directory ``out`` (atomically).

    ``orientation`` / ``backdrop``: a variant of the generator (``SyntheticRenderer``; module-level functions,
    so worker processes can import them); their names go into the folder's metadata.

    Returns:
        timing figures: seconds, images_per_s, images_per_s_per_worker, workers.
    """
    from tqdm import tqdm

    from hand_nas.atomic import atomic_dir
    from hand_nas.data.samples import SampleWriter
    from hand_nas.hand.mano import resolve_mano_dir

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise HandNasError(f"n: {n!r}, expected an integer >= 1 (samples to write)")
    if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 1024 or size % 32:
        raise HandNasError(f"size: {size!r}, expected a multiple of 32 in 32..1024 (pixels)")
    mano_folder = resolve_mano_dir(mano_dir)
    renderer = SyntheticRenderer(mano_folder, size, orientation, backdrop)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        writer = SampleWriter(tmp, n, size)
        chunk = 32
        bar = tqdm(total=n, desc="synth", unit="img", disable=not progress)
        t0 = time.perf_counter()
        if workers <= 1:
            from hand_nas.threads import torch_threads

            with torch_threads(1):
                for s in range(0, n, chunk):
                    for i, fields in renderer.render_range(seed, s, min(n, s + chunk)):
                        writer.put(i, **fields)
                    bar.update(min(n, s + chunk) - s)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            for arr in writer.arrays.values():
                arr.flush()
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(_worker, str(tmp), seed, s, min(n, s + chunk), str(mano_folder), size,
                                       (orientation, backdrop))
                           for s in range(0, n, chunk)]
                for fut in futures:
                    bar.update(fut.result())
        seconds = time.perf_counter() - t0
        bar.close()
        writer.source_ids = [f"synthetic/seed{seed}/{i}" for i in range(n)]
        variant = {k: f"{fn.__module__}.{fn.__qualname__}" for k, fn in
                   (("orientation", orientation), ("backdrop", backdrop)) if fn is not None}
        writer.close({"source": "synthetic", "seed": seed, "generator_version": SYNTH_VERSION, "hand_model": {
            "mano_dir": str(mano_folder), "fingerprint": faces_fingerprint(renderer.faces[1])},
            **({"variant": variant} if variant else {})})
    rate = n / seconds
    return {"seconds": seconds, "images_per_s": rate, "images_per_s_per_worker": rate / max(workers, 1),
            "workers": max(workers, 1)}


def cached_synthetic(n: int, seed: int = 0, size: int = 256, progress: bool = True) -> Path:
    """The synthetic set ``--data synthetic`` means: generated once into the hand-nas cache."""
    import sys

    from hand_nas.paths import home

    folder = home() / "synthetic" / f"n{n}_seed{seed}_s{size}_v{SYNTH_VERSION}"
    if not (folder / "meta.json").exists():
        # one process per core, at most two: the samples are the same whatever the count (each is drawn from its
        # index); on 2 cores 8000 images take 1.4x less wall time than with one process (not 2x: the two share caches)
        from hand_nas.threads import usable_cpus

        workers = min(2, usable_cpus()) if n >= 1000 else 1
        print(f"generating the synthetic set ({n} samples, {workers} processes) into {folder}", file=sys.stderr)
        synthesize(folder, n, seed=seed, size=size, workers=workers, overwrite=True, progress=progress)
    return folder
