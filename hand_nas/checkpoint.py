"""Checkpoints: ``model.safetensors`` (weights, no pickle) + ``config.json`` (architecture and provenance).

A checkpoint directory can always be rebuilt from its files alone: the config gives the
architecture, the weights must match it exactly (missing, unexpected or mis-shaped tensors are an
error naming them).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from hand_nas.config import ModelCfg
from hand_nas.errors import HandNasError

WEIGHTS, CONFIG = "model.safetensors", "config.json"


def save_checkpoint(folder: str | Path, model: torch.nn.Module, cfg: ModelCfg, **info) -> Path:
    """Write weights and config (atomically, as one directory); ``info`` goes into config.json."""
    from safetensors.torch import save_file

    from hand_nas.atomic import atomic_dir

    folder = Path(folder)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_dir(folder, overwrite=True) as tmp:
        save_file(state, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps({"model": cfg.to_dict(), **info}, indent=2, default=str))
    return folder


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

    data = read_config(folder)
    cfg = ModelCfg.from_dict(data["model"])
    model = build_model(cfg, mano_dir)
    load_weights(model, Path(folder) / WEIGHTS)
    return model.eval(), data
