"""The budget gate: every sampled configuration's cost is known before any training.

Costs come from the closed-form counts (``hand_nas.cost.analytic``, equal to fvcore on the family;
tests cross-check them), cached per configuration; models outside the analytic family (InterNet's
head) fall back to fvcore. Over-budget configurations are rejected with their cost and a reason.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from hand_nas.config import ModelCfg


@dataclass(frozen=True)
class GateResult:
    feasible: bool
    gmacs_total: float
    gmacs_image: float
    gmacs_pose: float
    budget_gmacs: float
    reason: str = ""

    @property
    def violation(self) -> float:
        """Constraint value for samplers: <= 0 means within budget."""
        return self.gmacs_total - self.budget_gmacs


@functools.lru_cache(maxsize=4096)
def _cost(cfg_json: str) -> tuple[float, float]:
    from hand_nas.cost import analytic

    cfg = ModelCfg.from_dict(json.loads(cfg_json))
    if cfg.head == "graph":
        c = analytic.model_macs(cfg)
        return c.image_macs / 1e9, c.pose_macs / 1e9
    from hand_nas.cost.flops import model_cost
    from hand_nas.models import build_model

    r = model_cost(build_model(cfg))
    return r.gmacs_image, r.gmacs_pose


def cost_of(cfg: ModelCfg) -> tuple[float, float]:
    """(image, pose) GMACs at 256x256."""
    return _cost(json.dumps(cfg.to_dict(), sort_keys=True))


def estimate_gmacs(cfg: ModelCfg) -> float:
    image, pose = cost_of(cfg)
    return image + pose


def gate(cfg: ModelCfg, budget_gmacs: float) -> GateResult:
    image, pose = cost_of(cfg)
    total = image + pose
    ok = total <= budget_gmacs
    reason = "" if ok else f"over budget: {total:.4f} > {budget_gmacs:.4f} GMACs (fvcore convention, 256x256)"
    return GateResult(ok, total, image, pose, budget_gmacs, reason)
