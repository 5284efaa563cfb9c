"""BigNAS's sandwich rule: which subnets a supernet step trains, and the in-place distillation loss.

Each step trains the largest subnet on the labels, and the smallest and ``n_random`` uniformly drawn
ones on the labels plus the largest's detached outputs; the losses are summed into one backward pass.

*Largest* and *smallest*: every numeric field at its maximum (minimum). The largest keeps the base
model's categorical choices (bridge attention, cross-hand attention, direct head, ...): the teacher is
the hand design the space is built around, at its widest. The smallest takes the combination with the
fewest GMACs, counted analytically with the numeric fields at their minimum. A tuple-valued choice
(the graph's widths per level) is ordered by its sum.

Why the base's choices and not the most-GMACs ones: the first lwa.yaml supernet (layout 1) trained its
teacher with ``graph.direct`` on, an additive linear head that learns the coarse offsets from the global
feature. The shared graph path co-adapted to it and became a residual: every direct-off subnet of more
than one pyramid level scored at the mean-shape constant (lwa_hand 47.48 mm; the same with direct on
43.24), whatever its attention choices. An optional branch belongs off in the teacher.
"""
from __future__ import annotations

import itertools
import numbers

import numpy as np
import torch

from hand_nas.errors import HandNasError
from hand_nas.models.output import HandOutput
from hand_nas.search.space import ParamSpec, SearchSpace


def _order(value) -> float | None:
    """A value's size for 'largest' / 'smallest', or None for a categorical one."""
    if isinstance(value, bool) or isinstance(value, str):
        return None
    if isinstance(value, numbers.Number):
        return float(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, numbers.Number) and not isinstance(v, bool)
                                                           for v in value):
        return float(sum(value))
    return None


def is_categorical(space: SearchSpace, p: ParamSpec) -> bool:
    return p.kind in ("choices",) and any(_order(v) is None for v in space.corner_values(p))


def numeric_max(space: SearchSpace, p: ParamSpec, smallest: bool = False):
    """The field's largest (smallest) value; a categorical field's first choice."""
    values = space.corner_values(p)
    if is_categorical(space, p):
        return values[0]
    pick = min if smallest else max
    return pick(values, key=_order)


def extremes(space: SearchSpace) -> tuple[dict, dict]:
    """(largest, smallest) parameter dicts of ``space`` (see the module docstring)."""
    from hand_nas.cost.gate import estimate_gmacs

    cats = [p for p in space.all_params() if is_categorical(space, p)]
    out = []
    for smallest in (False, True):
        base = {p.label: numeric_max(space, p, smallest) for p in space.all_params()}
        if not smallest:
            teacher = {**base, **base_choices(space, cats)}
            try:
                space.build(teacher)
                out.append(teacher)
                continue
            except HandNasError:
                pass  # the base's choices are invalid at the widest dims: the most-GMACs combination instead
        best, best_cost = None, None
        for combo in itertools.product(*(space.corner_values(p) for p in cats)):
            params = {**base, **{p.label: v for p, v in zip(cats, combo)}}
            try:
                cost = estimate_gmacs(space.build(params))
            except (HandNasError, ValueError):
                continue
            if best is None or (cost < best_cost if smallest else cost > best_cost):
                best, best_cost = params, cost
        if best is None:
            raise HandNasError(f"{space.source}: no valid {'smallest' if smallest else 'largest'} configuration")
        out.append(best)
    return out[0], out[1]


def base_choices(space: SearchSpace, cats: list[ParamSpec]) -> dict:
    """The base model's value of each categorical field (those among the field's choices)."""
    d = space.base_cfg().to_dict()
    out = {}
    for p in cats:
        value = d
        for part in p.path.split("."):
            value = value[int(part)] if part.isdigit() else value.get(part) if isinstance(value, dict) else None
        value = tuple(value) if isinstance(value, list) else value
        for choice in space.corner_values(p):
            if choice == value or (isinstance(choice, list) and tuple(choice) == value):
                out[p.label] = choice
    return out


class SubnetSampler:
    """The subnets of each step: largest, smallest, then ``n_random`` uniform draws (valid ones only).

    Its state (the numpy generator's) is plain JSON, saved in training snapshots.
    """

    def __init__(self, space: SearchSpace, n_random: int, seed: int = 0, largest_only: bool = False) -> None:
        self.space, self.n_random, self.largest_only = space, n_random, largest_only
        largest, smallest = extremes(space)
        self.largest, self.smallest = space.build(largest), space.build(smallest)
        self.rng = np.random.default_rng(seed)

    def random(self):
        for _ in range(1000):
            try:
                return self.space.build(self.space.random_params(self.rng))
            except HandNasError:
                continue
        raise HandNasError(f"{self.space.source}: no valid configuration in 1000 draws")

    def step(self) -> list:
        if self.largest_only:
            return [self.largest]
        return [self.largest, self.smallest] + [self.random() for _ in range(self.n_random)]

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def distill_loss(student: HandOutput, teacher: HandOutput, weights) -> torch.Tensor:
    """L1 to the teacher's detached 3D outputs, with the label loss's weights for the same terms:
    joints, vertices, the 252-slot mesh and the right-minus-left root (all root-relative, metres)."""
    loss = weights.joints * (student.joints - teacher.joints.detach()).abs().mean()
    for name, w in (("verts", weights.verts), ("coarse", weights.coarse), ("rel_root", weights.rel_root)):
        s, t = getattr(student, name), getattr(teacher, name)
        if w and s is not None and t is not None:
            loss = loss + w * (s - t.detach()).abs().mean()
    return loss
