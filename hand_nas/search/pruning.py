"""Multi-fidelity early stopping that only acts on evidence larger than the proxy's measured noise.

The budget is counted in training steps: a trial reports its held-out MPJPE at every evaluation
step of the proxy (``eval_every``), and from ``min_steps`` on it is compared with the other trials
that reached the same step. Successive halving (Jamieson & Talwalkar 2016; asynchronous as in ASHA)
keeps the best ``1/eta`` of each rung; here a trial is stopped only when it is worse than that
reference by more than ``factor`` times the seed-to-seed noise the proxy check measured at that
step (mean |seed 0 - seed 1| over its architectures, mm). Two runs of one architecture differ by
that much on average, so a smaller gap is no evidence at all.

Multi-objective spaces (MPJPE with GMACs and/or latency, both known before training): a trial is
stopped only when another trial that reached the same step costs no more on every known cost and
is better on MPJPE by more than the margin, i.e. when it is dominated beyond noise; the Pareto
front is then derived from the trials that ran to the end.

A rung is only used where it ranks: a check's per-step Kendall tau against its long runs says from which
evaluation step on the proxy's scores order architectures as the long training does (``first_step``:
tau > 0 there and at every later step). Before it, a gap beyond noise is real but says nothing about
the end (lwa.yaml's 3d proxy: tau -0.22 / -0.17 at steps 60 / 120, then 0.39, 0.39, 0.44).

``make_pruner`` builds a study's pruner from a plain spec ('noise', 'median' or 'none'), which travels to workers.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from hand_nas.errors import HandNasError

COST_ATTR = "prune_cost"  # user attribute: the trial's costs known before training, [gmacs, latency_ms|None]


@dataclass(frozen=True)
class NoiseProfile:
    """Seed-to-seed noise of a proxy, mm, by evaluation step (``by_step``) and at its end (``final``);
    ``first_step``: the earliest step whose scores rank like the long runs (0: not measured)."""

    final: float
    by_step: dict[int, float]
    source: str
    first_step: int = 0

    def at(self, step: int) -> float:
        """The noise at ``step``: the measured step nearest to it (the final figure when none was measured)."""
        if not self.by_step:
            return self.final
        nearest = min(self.by_step, key=lambda s: (abs(s - step), -s))
        return self.by_step[nearest]

    def to_dict(self) -> dict:
        return {"final": self.final, "by_step": {str(k): v for k, v in sorted(self.by_step.items())},
                "source": self.source, "first_step": self.first_step}

    @classmethod
    def from_dict(cls, d: dict) -> NoiseProfile:
        return cls(float(d["final"]), {int(k): float(v) for k, v in d.get("by_step", {}).items()}, d.get("source", ""),
                   int(d.get("first_step", 0)))


def noise_from_check(result: dict, source: str) -> NoiseProfile | None:
    """The noise profile of a stored ``hand-nas proxy check`` result (None when it has no two-seed pairs)."""
    final = result.get("summary", {}).get("seed_noise_mm")
    if final is None:
        return None
    diffs: dict[int, list[float]] = {}
    for arch in result.get("architectures", []):
        hist = arch.get("proxy_history") or []
        if len(hist) < 2 or any(h is None for h in hist[:2]):
            continue
        a, b = dict((int(s), v) for s, v in hist[0]), dict((int(s), v) for s, v in hist[1])
        for step in set(a) & set(b):
            if step > 0:
                diffs.setdefault(step, []).append(abs(a[step] - b[step]))
    by_step = {s: float(np.mean(d)) for s, d in diffs.items() if len(d) >= 2}
    return NoiseProfile(float(final), by_step, source, first_ranking_step(result.get("rules") or []))


def first_ranking_step(rules: list[dict]) -> int:
    """The earliest evaluation step from which the check's per-step Kendall tau is > 0 at every step (0: none
    measured; the last step when even it does not rank: then only the end is compared)."""
    taus = sorted((int(r["rule"].split()[1]), r.get("kendall_tau")) for r in rules
                  if r.get("rule", "").startswith("step ") and r["rule"].split()[1].isdigit())
    if not taus:
        return 0
    first = taus[-1][0]
    for step, tau in reversed(taus):
        if tau is None or tau <= 0:
            break
        first = step
    return first


def load_noise(path: str | Path, proxy: dict | None = None) -> NoiseProfile:
    """The noise profile of a proxy check file; refuses a check of another proxy than ``proxy``."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        raise HandNasError(f"{path}: no such proxy check result (run `hand-nas proxy check` first)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise HandNasError(f"{path}: not a proxy check result ({exc})") from None
    if not isinstance(result, dict) or "summary" not in result:
        raise HandNasError(f"{path}: not a proxy check result (no 'summary')")
    if proxy is not None and result.get("proxy") is not None:
        keys = ("resolution", "steps", "batch", "lr", "augment", "eval_every")
        differ = [k for k in keys if k in proxy and result["proxy"].get(k) != proxy[k]]
        if differ:
            raise HandNasError(f"{path}: measured the proxy with {differ[0]}={result['proxy'].get(differ[0])!r}, "
                               f"the space's proxy has {proxy[differ[0]]!r}; run the proxy check on this proxy")
    noise = noise_from_check(result, str(path))
    if noise is None:
        raise HandNasError(f"{path}: summary.seed_noise_mm: missing (the check needs 2 seeds and 3 finished "
                           f"architectures)")
    return noise


class NoiseAwarePruner(optuna.pruners.BasePruner):
    """An optuna pruner; see the module docstring.

    Args:
        noise: the proxy's seed noise (a ``NoiseProfile``, or one figure in mm for every step).
        factor: a trial stops only when it is worse than the reference by more than ``factor`` x noise.
        eta: successive halving's reduction factor; the single-objective reference is the best
            ``1/eta`` quantile of the trials at the same step.
        min_steps: no trial is judged before this step.
        min_peers: nor before this many other trials reached the step.
        multi_objective: judge by dominance beyond noise instead (costs from the ``prune_cost`` attribute).
    """

    def __init__(self, noise: NoiseProfile | float, factor: float = 2.0, eta: float = 3.0, min_steps: int = 1,
                 min_peers: int = 3, multi_objective: bool = False) -> None:
        if not isinstance(noise, NoiseProfile):
            noise = NoiseProfile(float(noise), {}, "given")
        if not (math.isfinite(noise.final) and noise.final >= 0):
            raise HandNasError(f"noise {noise.final!r}: expected a finite figure >= 0 mm")
        self.noise, self.factor, self.eta = noise, factor, eta
        self.min_steps, self.min_peers, self.multi_objective = min_steps, min_peers, multi_objective

    def margin(self, step: int) -> float:
        return self.factor * self.noise.at(step)

    def prune(self, study, trial) -> bool:
        from optuna.trial import TrialState

        step = trial.last_step
        if step is None or step < self.min_steps:
            return False
        value = trial.intermediate_values[step]
        peers = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                      TrialState.RUNNING))
                 if t.number != trial.number and step in t.intermediate_values
                 and math.isfinite(t.intermediate_values[step])]
        if len(peers) < self.min_peers:
            return False
        margin = self.margin(step)
        if not self.multi_objective:
            reference = float(np.quantile([t.intermediate_values[step] for t in peers], 1.0 / self.eta))
            return value > reference + margin
        mine = trial.user_attrs.get(COST_ATTR)
        if mine is None:
            return False
        return any(_no_costlier(t.user_attrs.get(COST_ATTR), mine) and t.intermediate_values[step] + margin < value
                   for t in peers)


def _no_costlier(theirs, mine) -> bool:
    """True when every cost known for both is no higher in ``theirs`` (None: unknown, not compared)."""
    if theirs is None:
        return False
    return all(t <= m for t, m in zip(theirs, mine) if t is not None and m is not None)


PRUNERS = ("noise", "median", "none")


def make_pruner(spec):
    """The optuna pruner of a study: early stopping judged on its trials' stored intermediate MPJPE.

    ``spec``: a name of ``PRUNERS`` or a dict {'name', ...} ('noise' takes the keyword arguments of
    ``NoiseAwarePruner`` with ``noise`` as a ``NoiseProfile`` dict); plain dicts travel to workers.
    """
    name, kwargs = (spec, {}) if isinstance(spec, str) else (spec["name"], {k: v for k, v in spec.items() if k != "name"})
    if name == "noise":
        return NoiseAwarePruner(NoiseProfile.from_dict(kwargs.pop("noise")), **kwargs)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise HandNasError(f"pruner {name!r}: expected one of {PRUNERS}")


def pruner_name(spec) -> str:
    """The name of a ``make_pruner`` spec."""
    return spec if isinstance(spec, str) else spec["name"]
