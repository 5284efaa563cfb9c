"""Checkpoints: ``model.safetensors`` (weights, no pickle) + ``config.json`` (architecture and provenance).

A checkpoint directory can always be rebuilt from its files alone: the config gives the
architecture, the weights must match it exactly (missing, unexpected or mis-shaped tensors are an
error naming them). A structurally pruned model also stores its ``shapes`` (``shape_record``): the
widths of every layer after pruning, as plain JSON, applied to the freshly built model before its
weights are loaded.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from hand_nas.config import ModelCfg
from hand_nas.errors import HandNasError, short

WEIGHTS, CONFIG = "model.safetensors", "config.json"
SHAPE_ATTRS = ("in_features", "out_features", "in_channels", "out_channels", "groups", "num_features",
               "normalized_shape", "heads")


def shape_record(model: nn.Module) -> dict:
    """{'modules': {name: {attr: value}}, 'tensors': {state key: shape}}: what a pruned model looks like."""
    modules = {}
    for name, m in model.named_modules():
        attrs = {k: list(v) if isinstance(v, tuple) else v for k in SHAPE_ATTRS
                 if isinstance(v := getattr(m, k, None), (int, tuple)) and not isinstance(v, bool)}
        if attrs:
            modules[name] = attrs
    return {"modules": modules, "tensors": {k: list(v.shape) for k, v in model.state_dict().items()}}


def _widths(value) -> list | None:
    """A recorded width as a list of ints (an int or a list of at most 8 ints), else None."""
    items = value if isinstance(value, list) and len(value) <= 8 else [value]
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in items)
    return list(items) if ok else None


def _no_wider(field: str, new, old) -> None:
    """``new`` has ``old``'s form and no entry above it: pruning only removes channels, heads and rows."""
    got, was = _widths(new), _widths(list(old) if isinstance(old, (tuple, torch.Size)) else old)
    same_form = isinstance(new, list) == isinstance(old, (tuple, torch.Size))
    if got is None or was is None or len(got) != len(was) or not same_form:
        raise HandNasError(f"{field}: {short(new)}, expected {'a list of' if isinstance(old, tuple) else 'an'} "
                           f"integer(s) shaped like the configured model's {short(old)}")
    if any(not (min(1, w) <= g <= w) for g, w in zip(got, was)):
        raise HandNasError(f"{field}: {short(new)}, expected at least 1 and at most the configured model's "
                           f"{short(list(was) if len(was) > 1 else was[0])} (pruning only makes layers narrower)")


def apply_shape_record(model: nn.Module, record: dict, source: str = "config.json") -> nn.Module:
    """Resize ``model``'s layers in place to the recorded widths (weights are loaded afterwards).

    The record is data from a file, so it is read through an allow-list: only the ``SHAPE_ATTRS`` a
    module already has as integers, and only tensors the configured model has, may change, each to
    the same form and never above the configured size (a pruned model is never wider). Anything else
    is a one-line error naming the field; nothing is allocated beyond the configured model.
    """
    if not isinstance(record, dict) or set(record) - {"modules", "tensors"}:
        raise HandNasError(f"{source}: shapes: expected {{'modules': ..., 'tensors': ...}}, got keys "
                           f"{short(sorted(record) if isinstance(record, dict) else record)}")
    mods = dict(model.named_modules())
    modules, tensors = record.get("modules", {}), record.get("tensors", {})
    if not isinstance(modules, dict) or not isinstance(tensors, dict):
        raise HandNasError(f"{source}: shapes.modules and shapes.tensors must be objects")
    for name, attrs in modules.items():
        if name not in mods:
            raise HandNasError(f"{source}: shapes.modules.{short(name)}: no such module in the configured model")
        if not isinstance(attrs, dict):
            raise HandNasError(f"{source}: shapes.modules.{short(name)}: expected an object of widths")
        for k, v in attrs.items():
            old = getattr(mods[name], k, None) if k in SHAPE_ATTRS else None
            if not isinstance(old, (int, tuple)) or isinstance(old, bool):
                raise HandNasError(f"{source}: shapes.modules.{short(name)}.{short(k)}: not a width of this module "
                                   f"(allowed: {', '.join(SHAPE_ATTRS)})")
            _no_wider(f"{source}: shapes.modules.{name}.{k}", v, old)
    resized = []
    for key, shape in tensors.items():
        owner_name, _, attr = str(key).rpartition(".")
        owner = mods.get(owner_name)
        old = owner._parameters.get(attr, owner._buffers.get(attr)) if owner is not None else None
        if not isinstance(old, torch.Tensor):
            raise HandNasError(f"{source}: shapes.tensors.{short(key)}: no such tensor in the configured model")
        if not isinstance(shape, list):
            raise HandNasError(f"{source}: shapes.tensors.{key}: {short(shape)}, expected a list of sizes")
        _no_wider(f"{source}: shapes.tensors.{key}", shape, tuple(old.shape))
        resized.append((owner, attr, old, shape))
    # every field checked: only now is the model changed
    for name, attrs in modules.items():
        for k, v in attrs.items():
            setattr(mods[name], k, tuple(v) if isinstance(v, list) else v)
    for owner, attr, old, shape in resized:
        if list(old.shape) != list(shape):
            new = torch.zeros(shape, dtype=old.dtype)
            if isinstance(old, nn.Parameter):
                setattr(owner, attr, nn.Parameter(new, requires_grad=old.requires_grad))
            else:
                owner._buffers[attr] = new
    for name in modules:
        if why := _inconsistent(mods[name]):
            raise HandNasError(f"{source}: shapes.modules.{name}: {why}")
    return model


def _inconsistent(m: nn.Module) -> str:
    """What a layer's recorded widths contradict in its own tensors ('' when nothing)."""
    w = getattr(m, "weight", None)
    if isinstance(m, nn.Linear) and tuple(w.shape) != (m.out_features, m.in_features):
        return f"in/out_features {m.in_features}/{m.out_features} do not match its weight {tuple(w.shape)}"
    if isinstance(m, nn.modules.conv._ConvNd) and (m.in_channels % m.groups or m.out_channels % m.groups or (
            tuple(w.shape[:2]) != ((m.in_channels, m.out_channels // m.groups) if m.transposed
                                   else (m.out_channels, m.in_channels // m.groups)))):
        return (f"in/out_channels {m.in_channels}/{m.out_channels} in {m.groups} groups do not match its weight "
                f"{tuple(w.shape)}")
    if isinstance(m, nn.modules.batchnorm._NormBase) and any(
            t is not None and t.shape != (m.num_features,) for t in (w, m.running_mean)):
        return f"num_features {m.num_features} does not match its tensors"
    if isinstance(m, nn.LayerNorm) and w is not None and tuple(w.shape) != tuple(m.normalized_shape):
        return f"normalized_shape {tuple(m.normalized_shape)} does not match its weight {tuple(w.shape)}"
    heads = getattr(m, "heads", None)
    if isinstance(heads, int) and any(isinstance(c, nn.Linear) and c.out_features % heads
                                      for n, c in m.named_children() if n in ("q", "k", "v", "qkv")):
        return f"{heads} heads do not divide its q/k/v widths"
    return ""


def save_checkpoint(folder: str | Path, model: torch.nn.Module, cfg: ModelCfg, **info) -> Path:
    """Write weights and config (atomically, as one directory); ``info`` goes into config.json.

    An existing checkpoint folder (one hand-nas wrote: it holds the ``.hand-nas`` marker) is replaced
    as a whole; an existing non-empty folder without the marker is refused before anything is touched.
    """
    from hand_nas.atomic import atomic_dir

    folder = Path(folder)
    with atomic_dir(folder, overwrite=True) as tmp:
        write_checkpoint_files(tmp, model, cfg, **info)
    return folder


def write_checkpoint_files(folder: Path, model: torch.nn.Module, cfg: ModelCfg, **info) -> None:
    """model.safetensors + config.json into an existing (temporary) folder; bundles add files beside them."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
    (folder / CONFIG).write_text(json.dumps({"model": cfg.to_dict(), **info}, indent=2, default=str))


def read_config(folder: str | Path) -> dict:
    from hand_nas.files import read_json

    path = Path(folder) / CONFIG
    data = read_json(path, "hand-nas checkpoint config")
    if not isinstance(data, dict) or "model" not in data:
        raise HandNasError(f"{path}: no 'model' field")
    return data


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load safetensors weights into ``model``, refusing any mismatch and any non-finite value."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise HandNasError(f"{path}: missing")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise HandNasError(f"{path}: unreadable weights ({exc})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(set(own) & set(state))
              if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[0]})")
        raise HandNasError(f"{path}: weights do not match the config: {'; '.join(parts)}")
    for key, t in state.items():  # a NaN weight gives NaN millimetres and NaN meshes, silently
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise HandNasError(f"{path}: tensor {key}: {bad} non-finite value(s) (NaN or inf); refused")
    model.load_state_dict(state, strict=True)


def load_checkpoint(folder: str | Path, mano_dir=None):
    """(model in eval mode, config dict) from a checkpoint directory."""
    from hand_nas.models import build_model
    from hand_nas.models.validate import check

    data = read_config(folder)
    source = str(Path(folder) / CONFIG)
    try:
        cfg = ModelCfg.from_dict(data["model"])
    except HandNasError as exc:
        raise HandNasError(f"{source}: {exc}") from None
    check(source, cfg)  # before building: a hostile config must not allocate or loop for minutes
    model = build_model(cfg, mano_dir)
    if data.get("shapes"):
        apply_shape_record(model, data["shapes"], str(Path(folder) / CONFIG))
    load_weights(model, Path(folder) / WEIGHTS)
    return model.eval(), data
