"""Architectures and runs as data: frozen dataclasses, filled from dicts/YAML, unknown keys rejected.

``ModelCfg`` describes every network of the family: an image part (encoder, image decoders, fusion
into per-level feature maps) and a pose part (graph decoder with image->graph bridges and
cross-hand attention, or InterNet's 3D-heatmap head). Presets in ``hand_nas.models.presets`` are
plain ``ModelCfg`` values; search spaces vary their fields.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field

from hand_nas.errors import HandNasError

# Where studies live unless told otherwise (relative to the working folder, like optuna's examples).
DEFAULT_STORAGE = "sqlite:///runs/studies.db"


@dataclass(frozen=True)
class StageCfg:
    """One encoder stage at a new stride.

    Attributes:
        width: output channels.
        depth: blocks in the stage (the first one strides).
        stride: 1 or 2.
        expansion: inverted-bottleneck expansion ratio.
        attn_dim: MobileViT stages: transformer width (0 = plain convolution stage).
        attn_layers: MobileViT stages: transformer layers.
    """

    width: int
    depth: int = 1
    stride: int = 2
    expansion: float = 4.0
    attn_dim: int = 0
    attn_layers: int = 0


@dataclass(frozen=True)
class EncoderCfg:
    """Image encoder.

    Attributes:
        type: registered encoder name: resnet50, mobilenet_v2, mobile_former, mobilevit_v3.
        stem: stem convolution width (ignored by resnet50).
        stages: stages after the stem, strides 4, 8, 16, 32 at the end.
        tokens: Mobile-Former global tokens M (1..6).
        token_dim: Mobile-Former token width d.
        former_to_mobile: Mobile-Former's second bridge (tokens back into the feature map).
        bridge_heads: heads of the Mobile<->Former cross attention.
        attention: MobileViT blocks' attention: separable (linear) or softmax.
        head_channels: final 1x1 expansion of the last stage (0 = none).
    """

    type: str = "mobile_former"
    stem: int = 16
    stages: tuple[StageCfg, ...] = ()
    tokens: int = 6
    token_dim: int = 192
    former_to_mobile: bool = False
    bridge_heads: int = 2
    attention: str = "separable"
    head_channels: int = 0


@dataclass(frozen=True)
class DecoderCfg:
    """An image decoder (upsampling head) from the deepest feature map to stride 4.

    Attributes:
        kind: heatmap2d (21 per hand), heatmap25d (2D heatmap + relative depth per joint) or
            segmentation (2 masks + 6 dense-correspondence channels).
        channels: width of every stage.
        separable: depthwise-separable 3x3 convolutions instead of full ones.
    """

    kind: str = "heatmap2d"
    channels: int = 128
    separable: bool = False


@dataclass(frozen=True)
class FusionCfg:
    """Per-level image features for the graph decoder (IntagHand's mid model).

    Attributes:
        channels: output channels at strides 32, 16, 8 (one per bridge level used).
        with_encoder: also concatenate the encoder's map at that stride (IntagHand does, past level 0).
        global_dim: width the global feature is projected to (0 = keep the encoder's).
    """

    channels: tuple[int, ...] = (256, 256, 256)
    with_encoder: bool = True
    global_dim: int = 0


@dataclass(frozen=True)
class BridgeCfg:
    """Image -> graph bridges of the pyramid.

    Attributes:
        levels: pyramid levels over the 63/126/252-node sub-meshes (1..3).
        blocks: graph (Chebyshev residual) blocks per level.
        attention: local -> global attention: mhsa (IntagHand's PIFA: grid tokens + joint
            self-attention), light_cross (Mobile->Former attention with only W^Q into M global
            tokens, then fused with the vertices) or none.
        image_tokens: grid tokens per bridge (a square number).
        grid_dims: mhsa: per-level width of the grid tokens.
    """

    levels: int = 3
    blocks: int = 4
    attention: str = "mhsa"
    image_tokens: int = 64
    grid_dims: tuple[int, ...] = (256, 128, 64)


@dataclass(frozen=True)
class GraphCfg:
    """Graph decoder over the mesh hierarchy.

    Attributes:
        dims: vertex feature widths: the input width, then one output width per level.
        cheb_order: Chebyshev order K (1 = per-vertex linear, 2 = IntagHand's).
        cross_hand: softmax (IntagHand), separable (MobileViTv2-style linear), elementwise (LAGCHand's
            learned alpha/beta mixing) or none.
        heads: attention heads.
        dropout: dropout in graph blocks and attention.
        direct: also regress the 252 coarse offsets per hand linearly from the global image feature
            (zero-initialised, added to the graph's per-node offsets; 2 x global_dim x 756 MACs). A
            global pose change moves every vertex by a vertex-specific linear function of it, which
            one Linear expresses at once and a per-node graph head learns only slowly.
    """

    dims: tuple[int, ...] = (512, 256, 128, 64)
    cheb_order: int = 2
    cross_hand: str = "softmax"
    heads: int = 4
    dropout: float = 0.05
    direct: bool = False


@dataclass(frozen=True)
class PoseNetCfg:
    """InterNet's pose head: deconvolutions to 3D joint heatmaps.

    Attributes:
        channels: deconvolution width.
        deconvs: number of stride-2 deconvolutions.
        depth_bins: heatmap depth resolution (also the root-depth bins).
    """

    channels: int = 256
    deconvs: int = 3
    depth_bins: int = 64


@dataclass(frozen=True)
class ModelCfg:
    """A whole two-hand network.

    Attributes:
        name: free-form label (a preset name or a trial id).
        head: graph (mesh via the graph decoder) or posenet (InterNet: joints only).
    """

    name: str = "custom"
    head: str = "graph"
    encoder: EncoderCfg = field(default_factory=EncoderCfg)
    decoders: tuple[DecoderCfg, ...] = (DecoderCfg("heatmap2d"), DecoderCfg("segmentation"))
    fusion: FusionCfg = field(default_factory=FusionCfg)
    bridge: BridgeCfg = field(default_factory=BridgeCfg)
    graph: GraphCfg = field(default_factory=GraphCfg)
    posenet: PoseNetCfg = field(default_factory=PoseNetCfg)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelCfg:
        return from_dict(cls, d)


@dataclass(frozen=True)
class TrainCfg:
    """A proxy training run.

    Attributes:
        resolution: training input size (a multiple of 32); cost is always reported at 256.
        steps: optimisation steps.
        batch: batch size.
        lr: peak learning rate (Adam).
        warmup: linear warm-up steps.
        decay_step: 0 (default): cosine decay to 5% of ``lr`` at ``steps``; > 0: IntagHand's step schedule,
            ``lr`` until this step, then 0.1 x ``lr``.
        weight_decay: Adam weight decay.
        eval_every: steps between held-out evaluations (0 = only at the end).
        val_fraction: held-out share of the data set.
        augment: IntagHand's augmentations on the training split.
        seed: initialisation, data order and augmentation seed.
        workers: DataLoader worker processes.
        losses: which of IntagHand's loss terms train (``hand_nas.losses.LOSS_SETS``): ``intaghand`` (all,
            its weights), ``3d`` (joints, vertices, coarse mesh, relative root), ``joints`` (joints, relative root).
        ema: weight averaging: > 0 evaluates (and checkpoints) an exponential moving average of the weights
            and buffers with this decay per step (``torch.optim.swa_utils``); 0 (default) the weights as trained.
    """

    resolution: int = 128
    steps: int = 300
    batch: int = 16
    lr: float = 1e-3
    warmup: int = 20
    decay_step: int = 0
    weight_decay: float = 0.0
    eval_every: int = 100
    val_fraction: float = 0.1
    augment: bool = True
    seed: int = 0
    workers: int = 0
    losses: str = "intaghand"
    ema: float = 0.0

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainCfg:
        return from_dict(cls, d)


def to_dict(cfg) -> dict:
    """Nested plain dict (tuples become lists) of a config dataclass."""
    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        return v
    return conv(cfg)


def arch_key(config: dict | None) -> str:
    """One string per architecture: a ``ModelCfg`` dict without its name (trials, cached programs)."""
    return json.dumps({k: v for k, v in (config or {}).items() if k != "name"}, sort_keys=True)


def from_dict(cls, d, path: str = ""):
    """Build a config dataclass from a dict; unknown keys and wrong types are errors naming the field."""
    if dataclasses.is_dataclass(d):
        return d
    where = path or cls.__name__
    if not isinstance(d, dict):
        raise HandNasError(f"{where}: expected a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise HandNasError(f"{where}.{unknown[0]}: unknown field (known: {', '.join(sorted(names))})")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in d.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise HandNasError(f"{where}: {exc}") from None


def _coerce(tp, v, path: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, v, path)
    if origin is tuple:
        if not isinstance(v, (list, tuple)):
            raise HandNasError(f"{path}: expected a list, got {type(v).__name__}")
        args = typing.get_args(tp)
        inner = args[0]
        return tuple(_coerce(inner, x, f"{path}[{i}]") for i, x in enumerate(v))
    if origin in (typing.Union, types.UnionType):
        return v
    if tp is bool:
        if not isinstance(v, bool):
            raise HandNasError(f"{path}: expected true/false, got {v!r}")
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise HandNasError(f"{path}: expected an integer, got {v!r}")
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise HandNasError(f"{path}: expected a number, got {v!r}")
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise HandNasError(f"{path}: expected a string, got {v!r}")
        return v
    return v


def replace(cfg, **changes):
    """``dataclasses.replace`` with dotted keys for nested fields: replace(cfg, **{"graph.heads": 2})."""
    direct, nested = {}, {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = replace(getattr(cfg, head), **sub)
    return dataclasses.replace(cfg, **direct)


@dataclass(frozen=True)
class StudyCfg:
    """A search run.

    Attributes:
        space: search-space YAML file.
        study: study name (re-running with the same name resumes it).
        storage: study storage URL: sqlite:///FILE (default), journal:///FILE, postgresql://...
        backend: optuna or nni.
        sampler: optuna: tpe, nsga2, random; nni: evolution, random ('' = the backend's default).
        pruner: noise (multi-fidelity: stop a trial only when it is behind by more than ``noise_factor``
            times the proxy's measured seed noise; single- and multi-objective), median or none.
        noise: where the proxy's noise comes from: a ``hand-nas proxy check`` result JSON, or a figure
            in mm; '' = OUT/proxy_check/SPACE.json when it exists, else no early stopping.
        noise_factor: the margin, in units of the measured noise.
        trials: finished trials the study should reach (earlier runs count).
        workers: trials in parallel.
        executor: ray or local (in-process, one at a time).
        ray_address: join an existing Ray cluster instead of starting a local one.
        cpus_per_trial, gpus_per_trial: Ray resources per trial.
        budget_gmacs: override the space's budget (None = the space's).
        data: 'synthetic' (the cached embedded set) or a sample directory.
        out: folder for checkpoints (one per trial) when ``storage_path`` is empty.
        storage_path: what trials read and write: a folder every node mounts at the same path or a
            pyarrow URI (s3://bucket/prefix); the data set is published under it once (STORAGE/data/NAME)
            and checkpoints go to STORAGE/STUDY/trial_NNNN. '' = checkpoints in ``out``, data read in place.
        seed: sampler seed.
        latency: also measure torch latency of every trained trial.
        heartbeat_s: seconds between this driver's heartbeats; a RUNNING trial silent for three
            intervals is taken as killed and marked failed.
        latency_predictor: the ``hand-nas latency calibrate`` file a space with a latency objective or
            budget is predicted with ('' = this CPU's default calibration).
        device: where trials train: auto (the GPU Ray assigned with ``gpus_per_trial``, else CPU), cpu, cuda[:N].
        precision: trial training precision, fp32, bf16 or fp16 (see ``hand_nas.device.resolve_precision``).
        evaluator: how a trial is scored: ``train`` (the space's proxy training) or ``supernet`` (extracted from
            the trained supernet ``supernet``, BatchNorm recalibrated, scored on held-out images in seconds).
        supernet: the supernet folder (``hand-nas supernet train`` / ``export``) with evaluator ``supernet``.
        eval_images: supernet evaluator: held-out images scored per trial (0 = the whole split).
    """

    space: str
    study: str = "hand-nas"
    storage: str = DEFAULT_STORAGE
    backend: str = "optuna"
    sampler: str = ""
    pruner: str = "noise"
    noise: str = ""
    noise_factor: float = 2.0
    trials: int = 20
    workers: int = 1
    executor: str = "ray"
    ray_address: str = ""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    budget_gmacs: float | None = None
    data: str = "synthetic"
    out: str = "runs"
    storage_path: str = ""
    seed: int = 0
    latency: bool = False
    heartbeat_s: float = 30.0
    latency_predictor: str = ""
    device: str = "auto"
    precision: str = "fp32"
    evaluator: str = "train"
    supernet: str = ""
    eval_images: int = 0


@dataclass(frozen=True)
class LossWeights:
    """IntagHand's defaults. ``edge`` starts at ``edge_from`` (a fraction of training; IntagHand: epoch 50 of 200)."""

    verts: float = 100.0
    joints: float = 100.0
    verts2d: float = 50.0
    normal: float = 10.0
    edge: float = 2000.0
    edge_from: float = 0.25
    coarse: float = 100.0
    mask: float = 500.0
    heatmap: float = 100.0
    rel_root: float = 100.0


# TrainCfg.losses: named subsets of the terms (a weight of 0 drops a term; the rest keep IntagHand's weights).
LOSS_SETS = {
    "intaghand": LossWeights(),
    "3d": LossWeights(verts2d=0, normal=0, edge=0, mask=0, heatmap=0),
    "joints": LossWeights(verts=0, verts2d=0, normal=0, edge=0, coarse=0, mask=0, heatmap=0),
}
