"""The weight-sharing rule: which shared tensor, and which part of it, each subnet tensor is.

A subnet is the ordinary ``TwoHandNet`` that ``build_model(cfg)`` builds. Every one of its parameters
and persistent buffers (BatchNorm statistics, the mean-hand template) is a *slice* of one shared
tensor of the supernet, found by a *key*:

* The key is the tensor's name in the subnet, tagged with the registered classes on its module path
  (``pose.cross.0.norm_l.weight@SeparableCrossHand``): structurally different op choices (bridge
  attention, cross-hand attention, encoder type) keep their own weights, as single-path one-shot
  does; every other choice shares.
* ``CONTEXT`` adds config fields to the key where one name means different things: the coordinate and
  camera heads read the last pyramid level's features, so they get one head per ``bridge.levels``; a
  grid attention's position embedding gets one per ``bridge.image_tokens`` (row i is a different cell
  of a 2x2, 4x4 or 8x8 grid).
* A convolution's kernel size is part of its key (``#k3x3``): the spatial axes are never sliced, so
  shape-dependent parts (a patch convolution whose kernel is the map size over ``bridge.image_tokens``)
  keep their own weights per shape.

The slice is the leading part of every axis (OFA's and BigNAS's channel slicing: a width-w subnet uses
the first w channels, the first k tokens, the first b graph blocks by name), except on axes that
concatenate several inputs (``SEGMENTED``): a Chebyshev convolution's input is [x, L x, ...], a fusion
convolution's input is [decoder features..., encoder map]. There each segment is sliced on its own, so
``L x`` always meets the weights that were trained on ``L x``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hand_nas.config import ModelCfg
from hand_nas.errors import HandNasError
from hand_nas.layers.graph_conv import ChebConv
from hand_nas.registry import BRIDGES, CROSS_HAND, DECODERS, ENCODERS

# Patch convolutions (stride = kernel) whose kernel is the map size over the grid side: one kernel, the finest,
# shared by every grid; a coarser grid's kernel is it upsampled (nearest) and divided by f^2, which is the
# finest kernel applied to the map average-pooled by f (parameter-free pooling, exactly).
POOLED = re.compile(r"\.to_grid\.weight$")
# Names whose meaning depends on a config field beyond their shape: (name pattern, ModelCfg field paths).
CONTEXT = ((re.compile(r"^pose\.(coord|cam)\."), ("bridge.levels",)),
           # MobileViT blocks' attention (lagc.yaml's encoder.attention): separable and softmax are different ops
           (re.compile(r"^image\.encoder\.blocks\.\d+\.layers\.\d+\.attn\."), ("encoder.attention",)),
           # a grid's position embedding: row i is cell i of a g x g grid, a different place for every g
           (re.compile(r"\.grid_pos$"), ("bridge.image_tokens",)))
# BatchNorm statistics and the template are state of the shared network too; these buffers are not:
# they are rebuilt with every subnet (hand model, Laplacians) or count steps.
SKIPPED_BUFFERS = re.compile(r"(^|\.)num_batches_tracked$")


def registered_classes() -> dict[type, str]:
    """Every class registered as an op choice, by class (the tag of its keys)."""
    out = {}
    for reg in (ENCODERS, DECODERS, BRIDGES, CROSS_HAND):
        for name in reg.names():
            obj = reg.get(name)
            if isinstance(obj, type):
                out[obj] = obj.__name__
    return out


def _field(cfg: ModelCfg, path: str):
    value = cfg
    for part in path.split("."):
        value = value[int(part)] if part.isdigit() else getattr(value, part)
    return value


@dataclass(frozen=True)
class TensorSpec:
    """Where one subnet tensor lives: its key, its shape, and the segment sizes of concatenated axes."""

    key: str
    shape: tuple[int, ...]
    segments: tuple[tuple[int, tuple[int, ...]], ...] = ()  # ((axis, sizes), ...)
    pooled: bool = False  # a patch convolution's kernel (see POOLED)


def segment_sizes(model: nn.Module) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Tensors of ``model`` whose input axis concatenates several inputs: name -> (axis, segment sizes)."""
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, ChebConv) and mod.order > 1:
            cin = mod.fc.in_features // mod.order
            out[f"{name}.fc.weight"] = (1, (cin,) * mod.order)
    image = getattr(model, "image", None)
    if image is not None and len(getattr(image, "fusion", ())):
        cfg, chans = image.cfg, image.encoder.info.channels
        for lvl in range(len(image.fusion)):
            parts = [d.channels for d in cfg.decoders]
            if cfg.fusion.with_encoder and lvl > 0 or not cfg.decoders:
                parts.append(chans[3 - lvl])
            if len(parts) > 1:
                out[f"image.fusion.{lvl}.0.weight"] = (1, tuple(parts))
    return out


def shared_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors of a subnet that the supernet shares: parameters and persistent buffers."""
    out = dict(model.named_parameters())
    for mod_name, mod in model.named_modules():
        for b_name, buf in mod.named_buffers(recurse=False):
            full = f"{mod_name}.{b_name}" if mod_name else b_name
            if b_name not in mod._non_persistent_buffers_set and not SKIPPED_BUFFERS.search(full):
                out[full] = buf
    return out


def tensor_specs(model: nn.Module, cfg: ModelCfg) -> dict[str, TensorSpec]:
    """Name -> ``TensorSpec`` for every shared tensor of the subnet ``model`` (built from ``cfg``)."""
    tags = registered_classes()
    chain: dict[str, str] = {}
    for name, mod in model.named_modules():
        parent = chain.get(name.rpartition(".")[0], "") if name else ""
        tag = tags.get(type(mod))
        chain[name] = parent + (f"@{tag}" if tag else "")
    segs = segment_sizes(model)
    specs = {}
    for name, t in shared_tensors(model).items():
        key = name + chain.get(name.rpartition(".")[0], "")
        for pattern, fields in CONTEXT:
            if pattern.search(name):
                key += "".join(f"[{f}={_field(cfg, f)}]" for f in fields)
        specs[name] = TensorSpec(key, tuple(t.shape), (segs[name],) if name in segs else (),
                                 bool(POOLED.search(name)) and t.dim() == 4)
    return specs


@dataclass
class SharedShape:
    """The shared tensor of one key: its shape and, per segmented axis, each segment's size."""

    shape: list[int]
    segments: dict[int, list[int]]

    def fits(self, spec: TensorSpec) -> bool:
        if len(spec.shape) != len(self.shape):
            return False
        seg_axes = {a: s for a, s in spec.segments}
        for axis, size in enumerate(spec.shape):
            if spec.pooled and axis >= 2:
                if size % self.shape[axis]:
                    return False
            elif axis in seg_axes:
                mine = self.segments.get(axis)
                if mine is None or len(mine) != len(seg_axes[axis]) or any(
                        a > b for a, b in zip(seg_axes[axis], mine)):
                    return False
            elif size > self.shape[axis]:
                return False
        return True

    def grow(self, spec: TensorSpec) -> None:
        for axis, sizes in spec.segments:  # concatenations of another structure would mix unrelated inputs
            if axis in self.segments and len(self.segments[axis]) != len(sizes):
                raise HandNasError(f"supernet: {spec.key} concatenates {len(sizes)} inputs in one configuration and "
                                   f"{len(self.segments[axis])} in another; they cannot share one tensor")
        self.shape = [min(a, b) if spec.pooled and axis >= 2 else max(a, b)
                      for axis, (a, b) in enumerate(zip(self.shape, spec.shape))]
        for axis, sizes in spec.segments:
            old = self.segments.get(axis, [0] * len(sizes))
            self.segments[axis] = [max(a, b) for a, b in zip(old, sizes)]
            self.shape[axis] = sum(self.segments[axis])

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "segments": {str(a): list(s) for a, s in self.segments.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> SharedShape:
        return cls([int(x) for x in d["shape"]], {int(a): [int(x) for x in s] for a, s in d["segments"].items()})


def shape_key(spec: TensorSpec) -> str:
    """The key under which ``spec`` is stored: a convolution kernel's spatial size is never sliced (a 3x3 is
    no 1x1 with more weights, and a patch convolution's kernel is its map size over the grid side), so
    every kernel size has its tensor of its own."""
    if len(spec.shape) == 4 and not spec.pooled:
        return f"{spec.key}#k{spec.shape[2]}x{spec.shape[3]}"
    return spec.key


def add_to_table(table: dict[str, SharedShape], specs: dict[str, TensorSpec]) -> None:
    """Grow ``table`` so that every tensor of ``specs`` fits its shared tensor."""
    for spec in specs.values():
        key = shape_key(spec)
        if key not in table:
            table[key] = SharedShape(list(spec.shape), {a: list(s) for a, s in spec.segments})
        else:
            table[key].grow(spec)


def take(shared: torch.Tensor, layout: SharedShape, spec: TensorSpec) -> torch.Tensor:
    """The slice of ``shared`` (laid out as ``layout``) that is the subnet tensor ``spec`` (a view where it can be)."""
    seg_axes = dict(spec.segments)
    out = shared
    for axis, size in enumerate(spec.shape):
        if axis in seg_axes:
            starts = np.cumsum([0] + layout.segments[axis][:-1])
            parts = [out.narrow(axis, int(s), n) for s, n in zip(starts, seg_axes[axis])]
            out = torch.cat(parts, axis)
        elif spec.pooled and axis >= 2:
            continue
        elif size != out.shape[axis]:
            out = out.narrow(axis, 0, size)
    if spec.pooled and tuple(out.shape[2:]) != tuple(spec.shape[2:]):
        fh, fw = spec.shape[2] // out.shape[2], spec.shape[3] // out.shape[3]
        out = out.repeat_interleave(fh, 2).repeat_interleave(fw, 3) / (fh * fw)
    return out


def check_fits(spec: TensorSpec, key: str, table: dict[str, SharedShape]) -> SharedShape:
    layout = table.get(key)
    if layout is None or not layout.fits(spec):
        have = "no such tensor" if layout is None else f"holds {tuple(layout.shape)}"
        raise HandNasError(f"supernet: {key} {spec.shape} does not fit the supernet ({have}); the configuration "
                           "lies outside the space the supernet was built for")
    return layout
