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
from hand_nas.errors import HandNasError

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


def apply_shape_record(model: nn.Module, record: dict, source: str = "config.json") -> nn.Module:
    """Resize ``model``'s layers in place to the recorded widths (weights are loaded afterwards)."""
    mods = dict(model.named_modules())
    for name, attrs in record.get("modules", {}).items():
        if name not in mods:
            raise HandNasError(f"{source}: shapes.modules.{name}: no such module in the configured model")
        for k, v in attrs.items():
            setattr(mods[name], k, tuple(v) if isinstance(v, list) else v)
    for key, shape in record.get("tensors", {}).items():
        owner_name, _, attr = key.rpartition(".")
        owner = mods.get(owner_name)
        old = getattr(owner, attr, None) if owner is not None else None
        if not isinstance(old, torch.Tensor):
            raise HandNasError(f"{source}: shapes.tensors.{key}: no such tensor in the configured model")
        if list(old.shape) != list(shape):
            new = torch.zeros(shape, dtype=old.dtype)
            if isinstance(old, nn.Parameter):
                setattr(owner, attr, nn.Parameter(new, requires_grad=old.requires_grad))
            else:
                owner._buffers[attr] = new
    return model


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
    """Load safetensors weights into ``model``, refusing any mismatch."""
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
