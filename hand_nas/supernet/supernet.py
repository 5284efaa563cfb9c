"""The supernet: one set of shared tensors that runs every configuration of a search space.

``Supernet(space)`` holds, per sharing key (``hand_nas.supernet.sharing``), one tensor large enough for
every configuration of the space. Its *active path* for a configuration is the ordinary ``TwoHandNet``
of that configuration run with slices of the shared tensors (``torch.func.functional_call``), so the
gradients of a step land in the shared tensors; ``extract(cfg)`` returns that same network as a plain
module with the slices copied in: what ``build_model(cfg)`` builds, the same outputs as the active path,
and nothing downstream (cost, compression, export) knows where its weights came from (OFA's
``get_active_subnet``).

The shared shapes are found by building the space's configurations that reach every extreme: each
numeric field at its maximum with the categorical ones at their first choice, every single-field
variation of that, the sandwich's largest and smallest, and ``cover_samples`` random draws. They are
stored with the weights, so a loaded supernet does not search them again; a configuration outside them
is a one-line error naming the tensor.

On disk (``save``/``load``): ``supernet.safetensors`` (tensors by key, fp32 or fp16),
``supernet.json`` (the shared layout, which keys are buffers, provenance) and ``space.yaml`` (the space
it was built for, copied: the supernet keeps meaning the same space if the shipped file changes).
"""
from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hand_nas.config import ModelCfg
from hand_nas.errors import HandNasError
from hand_nas.search.space import SearchSpace, load_space
from hand_nas.supernet.manifest import LAYOUT, SPACE, TENSORS, verify_supernet
from hand_nas.supernet.sharing import (SharedShape, TensorSpec, add_to_table, check_fits, shape_key, take,
                                       tensor_specs)

FORMAT = 2  # 2: grid position embeddings per bridge.image_tokens (1: one shared, sliced by rows)


def cfg_key(cfg: ModelCfg) -> str:
    return json.dumps({**cfg.to_dict(), "name": ""}, sort_keys=True)


def cover_configs(space: SearchSpace, samples: int, seed: int = 0) -> list[ModelCfg]:
    """Configurations whose union of tensor shapes is the supernet's (see the module docstring)."""
    from hand_nas.supernet.sandwich import extremes, numeric_max

    from hand_nas.supernet.sandwich import is_categorical
    from hand_nas.supernet.sharing import CONTEXT

    top = {p.label: numeric_max(space, p) for p in space.all_params()}
    drafts = [top] + [{**top, p.label: v} for p in space.all_params() for v in space.corner_values(p)]
    # a field in a key's context (one tensor per value) meets every op choice: a grid embedding of each size
    # exists only where the bridge attention has a grid
    context = {f for _, fields in CONTEXT for f in fields}
    for a in (p for p in space.all_params() if p.label in context):
        for b in (p for p in space.all_params() if p is not a and (is_categorical(space, p) or p.label in context)):
            drafts += [{**top, a.label: va, b.label: vb} for va in space.corner_values(a)
                       for vb in space.corner_values(b)]
    drafts += list(extremes(space))
    rng = np.random.default_rng(seed)
    drafts += [space.random_params(rng) for _ in range(samples)]
    out, seen = [], set()
    for params in drafts:
        try:
            cfg = space.build(params)
        except HandNasError:  # an invalid combination: no network has it
            continue
        if (k := cfg_key(cfg)) not in seen:
            seen.add(k)
            out.append(cfg)
    return out


def _tile(src: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """``src`` repeated along every axis until it covers ``shape``, then cropped: the init of a grown tensor
    stays in its layer's distribution (ones stay ones, N(0, s) stays N(0, s))."""
    reps = [-(-n // max(s, 1)) for n, s in zip(shape, src.shape)]
    out = src.detach().repeat(*reps)
    for axis, n in enumerate(shape):
        out = out.narrow(axis, 0, n)
    return out.clone()


class Supernet(nn.Module):
    """Shared tensors for every configuration of ``space``.

    Args:
        space: the search space.
        mano_dir: the hand model's folder (default: the procedural hand).
        cover_samples: random configurations added to the shape cover.
        state: (layout, tensors, buffer keys) of a saved supernet, instead of building them.
    """

    def __init__(self, space: SearchSpace, mano_dir=None, cover_samples: int = 256, seed: int = 0,
                 state: tuple[dict, dict, set] | None = None, cache: int = 8) -> None:
        super().__init__()
        if len(space.base) > 1:
            raise HandNasError(f"{space.source}: a supernet over several base presets ({', '.join(space.base)}) is not "
                               "supported: their families would share tensors that mean different things")
        self.space, self.mano_dir = space, mano_dir
        self._modules_cache: collections.OrderedDict = collections.OrderedDict()
        self._specs_cache: dict = {}
        self._cache_size = cache
        if state is None:
            layout, tensors, buffer_keys = self._initial(cover_samples, seed)
        else:
            layout, tensors, buffer_keys = state
        self.layout: dict[str, SharedShape] = layout
        self.keys = sorted(layout)
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.buffer_keys = set(buffer_keys)
        self.shared = nn.ParameterList()
        for k in self.keys:
            t = tensors[k].float()
            if tuple(t.shape) != tuple(layout[k].shape):
                raise HandNasError(f"supernet: tensor {k} {tuple(t.shape)} does not match its layout {layout[k].shape}")
            grad = k not in self.buffer_keys and t.is_floating_point() and not k.startswith("pose.upsample.")
            self.shared.append(nn.Parameter(t, requires_grad=grad))

    # -- construction -------------------------------------------------------------------------------------------
    def _initial(self, cover_samples: int, seed: int):
        from hand_nas.models import build_model
        from hand_nas.supernet.sharing import shared_tensors

        layout: dict[str, SharedShape] = {}
        largest: dict[str, torch.Tensor] = {}
        buffer_keys = set()
        torch.manual_seed(seed)
        for cfg in cover_configs(self.space, cover_samples, seed):
            model = build_model(cfg, self.mano_dir)
            specs = tensor_specs(model, cfg)
            add_to_table(layout, specs)
            params = dict(model.named_parameters())
            for name, t in shared_tensors(model).items():
                key = shape_key(specs[name])
                if name not in params:
                    buffer_keys.add(key)
                if key not in largest or t.numel() > largest[key].numel():
                    largest[key] = t.detach().clone()
        tensors = {k: _tile(largest[k], layout[k].shape) for k in layout}
        return layout, tensors, buffer_keys

    # -- the active path ----------------------------------------------------------------------------------------
    def skeleton(self, cfg: ModelCfg) -> nn.Module:
        """The plain module of ``cfg`` whose tensors the active path replaces (cached, on this supernet's device)."""
        from hand_nas.models import build_model

        key = cfg_key(cfg)
        model = self._modules_cache.get(key)
        if model is None:
            with torch.random.fork_rng(devices=[]):  # its throw-away init must not move the dropout stream
                model = build_model(cfg, self.mano_dir).to(self.shared[0].device)
            for p in model.parameters():  # never trained: the shared tensors are
                p.requires_grad_(False)
            self._modules_cache[key] = model
            self._specs_cache[key] = {name: (spec, shape_key(spec)) for name, spec in
                                      tensor_specs(model, cfg).items()}
            while len(self._modules_cache) > self._cache_size:
                old, _ = self._modules_cache.popitem(last=False)
                self._specs_cache.pop(old, None)
        else:
            self._modules_cache.move_to_end(key)
        return model

    def tensors(self, cfg: ModelCfg) -> dict[str, torch.Tensor]:
        """Name -> the slice of the shared tensors that is this subnet's tensor (views where possible)."""
        self.skeleton(cfg)
        return self._slices({name: spec for name, (spec, _) in self._specs_cache[cfg_key(cfg)].items()})

    def _slices(self, specs: dict[str, TensorSpec]) -> dict[str, torch.Tensor]:
        out = {}
        for name, spec in specs.items():
            key = shape_key(spec)
            layout = check_fits(spec, key, self.layout)  # first: a key outside the space is a one-line error
            out[name] = take(self.shared[self.index[key]], layout, spec)
        return out

    def _apply(self, fn, *args, **kwargs):  # .to() / .cuda(): the cached skeletons hold the old device's buffers
        self.reset_cache()
        return super()._apply(fn, *args, **kwargs)

    def forward(self, images: torch.Tensor, cfg: ModelCfg):
        """``cfg``'s network on ``images`` with the shared tensors: (B, 3, H, W) -> ``HandOutput``."""
        model = self.skeleton(cfg)
        model.train(self.training)
        return torch.func.functional_call(model, self.tensors(cfg), (images,))

    def extract(self, cfg: ModelCfg) -> nn.Module:
        """The ordinary ``build_model(cfg)`` network with its slices of the shared tensors loaded (CPU, eval)."""
        from hand_nas.models import build_model

        model = build_model(cfg, self.mano_dir)
        state = {k: v.detach().cpu().clone() for k, v in self._slices(tensor_specs(model, cfg)).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise HandNasError(f"supernet: extract left {missing[:1] or unexpected[:1]} unmatched")
        return model.eval()

    def set_shared(self, key: str, value: torch.Tensor) -> None:
        """Set a whole shared tensor (the mean-hand template, the relative-root bias) to ``value``."""
        if key not in self.index or tuple(self.layout[key].shape) != tuple(value.shape):
            raise HandNasError(f"supernet: no shared tensor {key} of shape {tuple(value.shape)}")
        with torch.no_grad():
            self.shared[self.index[key]].copy_(value)

    def reset_cache(self) -> None:
        """Forget the cached skeletons (after the supernet moved to another device)."""
        self._modules_cache.clear()
        self._specs_cache.clear()

    # -- files --------------------------------------------------------------------------------------------------
    def state_tensors(self, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        return {k: (p.detach().to(dtype) if dtype is not None and p.is_floating_point() else p.detach()).cpu()
                .contiguous() for k, p in zip(self.keys, self.shared)}

    def layout_record(self) -> dict:
        return {"format": FORMAT, "space": self.space.name, "buffers": sorted(self.buffer_keys),
                "layout": {k: self.layout[k].to_dict() for k in self.keys}}

    def save(self, folder: Path, dtype: torch.dtype | None = None, **info) -> None:
        """Write the three files into an existing (temporary) folder; ``info`` goes into supernet.json."""
        from safetensors.torch import save_file

        save_file(self.state_tensors(dtype), str(folder / TENSORS))
        (folder / LAYOUT).write_text(json.dumps({**self.layout_record(), **info}, indent=1))
        shutil.copyfile(self.space.source, folder / SPACE)

    def load_tensors(self, tensors: dict[str, torch.Tensor], source: str) -> None:
        """Copy saved shared tensors in (a snapshot being resumed); every key and shape must match."""
        if set(tensors) != set(self.keys):
            raise HandNasError(f"{source}: supernet tensors do not match the layout ({len(tensors)} vs {len(self.keys)})")
        with torch.no_grad():
            for k, p in zip(self.keys, self.shared):
                p.copy_(tensors[k])


def load_supernet(folder: str | Path, mano_dir=None) -> tuple[Supernet, dict]:
    """(supernet, its supernet.json + 'sha256' of its weights) from a folder written by ``Supernet.save`` or
    ``export_supernet`` (then checked against its manifest); non-finite values are refused."""
    from safetensors.torch import load_file

    from hand_nas.files import read_json

    folder = Path(folder)
    for name in (TENSORS, LAYOUT, SPACE):
        if not (folder / name).is_file():
            raise HandNasError(f"{folder}: not a supernet folder ({name} missing)")
    sha = verify_supernet(folder)  # a shipped copy must match its manifest
    record = read_json(folder / LAYOUT, "supernet layout")
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("layout"), dict):
        raise HandNasError(f"{folder / LAYOUT}: format {record.get('format') if isinstance(record, dict) else None}, "
                           f"expected a supernet layout of format {FORMAT} (an older sharing rule: train it again)")
    space = load_space(folder / SPACE)
    try:
        tensors = load_file(str(folder / TENSORS))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise HandNasError(f"{folder / TENSORS}: unreadable supernet weights ({exc})") from None
    layout = {k: SharedShape.from_dict(v) for k, v in record["layout"].items()}
    if set(tensors) != set(layout):
        raise HandNasError(f"{folder / TENSORS}: tensors do not match {LAYOUT}")
    for k, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise HandNasError(f"{folder / TENSORS}: tensor {k}: non-finite values; refused")
    net = Supernet(space, mano_dir, state=(layout, tensors, set(record.get("buffers", []))))
    return net, {**record, "sha256": sha, "folder": str(folder.resolve())}


__all__ = ["Supernet", "load_supernet", "cover_configs", "cfg_key", "TensorSpec"]
