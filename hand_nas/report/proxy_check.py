"""How well a space's proxy ranks architectures: rank correlation with a longer training, and seed noise.

The NAS literature judges a cheap evaluation by the rank correlation between its scores and those
of full training (short-training proxies typically reach Kendall tau 0.6-0.8). The check samples
``n`` feasible architectures spread over the space's cost range plus the base preset, trains each
under the space's proxy with ``seeds`` seeds and once under a training ``factor`` times longer,
and compares: Kendall tau and Spearman rho (proxy mean vs long), top-3 overlap, the seed-to-seed
noise (mean |difference| in mm, seed-vs-seed tau) against the spread between architectures (std of
the proxy means in mm). This module is the pure part (configs, figures, text); the runs are trained by
``hand_nas.app.proxy_check.run_check``, cached per (config, training, data) (``hand_nas.proxy_runs``), so the
check resumes after a kill and runs in chunks. MPJPE: held-out, mm, IntagHand protocol.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from hand_nas.config import TrainCfg
from hand_nas.stats import kendall_tau, spearman_rho

# The proxy's noise is "comparable to the differences it ranks" above this ratio of seed noise to spread.
NOISE_WARN_RATIO = 1 / 3


@dataclass(frozen=True)
class ProxyCheckCfg:
    """Attributes:
        n: sampled architectures (the base preset is added).
        factor: the long training is ``factor`` times the proxy's steps.
        seeds: proxy trainings per architecture (seeds 0..seeds-1).
        sample_seed: seed of the architecture sample.
        proxy_set: (TrainCfg field, value) pairs that change the *short* runs only: a proxy variant judged
            against the same long runs as the space's own proxy (they stay ``factor`` x the space's proxy).
    """

    n: int = 8
    factor: int = 10
    seeds: int = 2
    sample_seed: int = 0
    proxy_set: tuple[tuple[str, object], ...] = ()


def long_training(proxy: TrainCfg, factor: int, reference=()) -> TrainCfg:
    """The proxy ``factor`` times longer (warm-up and evaluation spacing scaled alike), with the space's
    ``reference`` fields (``SearchSpace.reference``: e.g. every IntagHand loss term) replaced."""
    return dataclasses.replace(proxy, steps=proxy.steps * factor, warmup=proxy.warmup * factor,
                               eval_every=proxy.eval_every * factor, **dict(reference))


def short_training(proxy: TrainCfg, proxy_set=()) -> TrainCfg:
    """The short runs' training: the space's proxy with ``proxy_set``'s fields replaced (checked by TrainCfg)."""
    from hand_nas.errors import HandNasError

    if not proxy_set:
        return proxy
    fields = {f.name for f in dataclasses.fields(TrainCfg)}
    bad = [k for k, _ in proxy_set if k not in fields or k == "seed"]
    if bad:
        raise HandNasError(f"--proxy-set {bad[0]}: not a training field (expected one of "
                           f"{', '.join(sorted(fields - {'seed'}))})")
    from hand_nas.models.validate import train_problems

    try:
        short = TrainCfg.from_dict({**proxy.to_dict(), **dict(proxy_set)})
    except (TypeError, ValueError) as exc:
        raise HandNasError(f"--proxy-set: {exc}") from None
    if issues := train_problems(short):
        raise HandNasError(f"--proxy-set {issues[0]}")
    return short


def summarize(archs: list[dict], seeds: int) -> dict:
    """Rank and noise figures (pure). Noise and spread need every proxy seed of an architecture; the rank
    correlations also need its long run, so a partial check already gives the noise the pruner uses.

    Each arch: {'label', 'gmacs', 'proxy_mm': [per seed, None while not run], 'long_mm': float | None}.
    """
    seeded = [a for a in archs if all(v is not None for v in a["proxy_mm"])]
    done = [a for a in seeded if a["long_mm"] is not None]
    out = {"architectures": len(archs), "complete": len(done), "proxy_complete": len(seeded), "seeds": seeds}
    if len(seeded) >= 3:
        proxy_all = [float(np.mean(a["proxy_mm"])) for a in seeded]
        out["spread_mm"] = float(np.std(proxy_all))
        if seeds >= 2:
            s0, s1 = [a["proxy_mm"][0] for a in seeded], [a["proxy_mm"][1] for a in seeded]
            out["seed_noise_mm"] = float(np.mean(np.abs(np.subtract(s0, s1))))
            out["seed_tau"] = kendall_tau(s0, s1)
            out["noise_to_spread"] = out["seed_noise_mm"] / out["spread_mm"] if out["spread_mm"] > 0 else math.inf
    if len(done) < 3:
        return out
    proxy = [float(np.mean(a["proxy_mm"])) for a in done]
    long = [a["long_mm"] for a in done]
    out.update(kendall_tau=kendall_tau(proxy, long), spearman_rho=spearman_rho(proxy, long),
               kendall_tau_one_seed=kendall_tau([a["proxy_mm"][0] for a in done], long),
               long_spread_mm=float(np.std(long)),
               # the untrained reference: rank by GMACs alone (larger first); a proxy that trains should beat it
               gmacs_tau=kendall_tau([-a["gmacs"] for a in done], long))
    top = lambda xs: {done[i]["label"] for i in np.argsort(xs)[:3]}  # noqa: E731
    out["top3_overlap"] = len(top(proxy) & top(long))
    return out


def scoring_rules(archs: list[dict], seeds: int) -> list[dict]:
    """Rank quality of cheaper scores read off the same short runs (pure): the held-out MPJPE at each
    evaluation step (what a multi-fidelity pruner compares at its rungs) and the mean of the last two
    evaluations. One row per rule: Kendall tau vs the long runs (mean over seeds), seed noise, spread,
    noise / spread. Needs the runs' histories; architectures without a long run count for noise only.
    """
    seeded = [a for a in archs if all(h for h in a.get("proxy_history") or [None]) and len(a["proxy_history"]) == seeds]
    if len(seeded) < 3 or seeds < 1:
        return []
    steps = sorted(set.intersection(*[{st for st, _ in h} for a in seeded for h in a["proxy_history"]]) - {0})
    at = lambda h, st: next(v for s_, v in h if s_ == st)  # noqa: E731
    rules = {f"step {st}": (lambda h, st=st: at(h, st)) for st in steps}
    if len(steps) >= 2:
        rules[f"mean of steps {steps[-2]}, {steps[-1]}"] = lambda h: (at(h, steps[-2]) + at(h, steps[-1])) / 2
    out = []
    for name, score in rules.items():
        per_seed = [[score(h) for h in a["proxy_history"]] for a in seeded]
        means = [float(np.mean(p)) for p in per_seed]
        row = {"rule": name, "spread_mm": float(np.std(means)), "mean_mm": float(np.mean(means))}
        if seeds >= 2:
            row["seed_noise_mm"] = float(np.mean([abs(p[0] - p[1]) for p in per_seed]))
            row["noise_to_spread"] = row["seed_noise_mm"] / row["spread_mm"] if row["spread_mm"] > 0 else math.inf
        done = [(m, a["long_mm"]) for m, a in zip(means, seeded) if a["long_mm"] is not None]
        row["kendall_tau"] = kendall_tau(*zip(*done)) if len(done) >= 3 else None
        row["complete"] = len(done)
        out.append(row)
    return out


def warning(summary: dict) -> str:
    """A plain warning when the proxy's seed noise is comparable to the differences it ranks, or when it
    ranks no better than the architectures' GMACs alone ('' if neither)."""
    parts = []
    ratio = summary.get("noise_to_spread")
    if ratio is not None and ratio > NOISE_WARN_RATIO:
        parts.append(f"the proxy's seed-to-seed noise ({summary['seed_noise_mm']:.2f} mm) is {ratio:.2f}x the spread "
                     f"between architectures ({summary['spread_mm']:.2f} mm): its ranking is not to be trusted")
    tau, by_gmacs = summary.get("kendall_tau"), summary.get("gmacs_tau")
    if tau is not None and by_gmacs is not None and tau <= by_gmacs:
        parts.append(f"the trained proxy ranks no better than GMACs alone (Kendall tau {tau:.2f} vs {by_gmacs:.2f})")
    return "; ".join(parts)


def format_check(result: dict) -> str:
    """The check as text: one line per architecture, then the figures."""
    s = result["summary"]
    p, lg = result["proxy"], result["long"]
    differ = ", ".join(f"{k} {lg[k]} vs {p.get(k)}" for k in lg if k not in ("steps", "warmup", "eval_every", "seed")
                       and lg[k] != p.get(k))
    lines = [f"proxy {p['steps']} steps at {p['resolution']} px vs {lg['steps']} steps"
             + (f" (long run: {differ})" if differ else "")
             + f"; held-out MPJPE, mm, IntagHand protocol; data {result['data']}",
             f"{'arch':<10} {'GMACs':>7} " + " ".join(f"{'seed ' + str(k):>8}" for k in range(result['check']['seeds']))
             + f" {'long':>8}"]
    fmt = lambda v: f"{v:8.2f}" if v is not None else f"{'-':>8}"  # noqa: E731
    for a in result["architectures"]:
        lines.append(f"{a['label']:<10} {a['gmacs']:7.4f} " + " ".join(fmt(v) for v in a["proxy_mm"]) + f" {fmt(a['long_mm'])}")
    lines.append(f"{s['complete']}/{s['architectures']} architectures complete ({s.get('proxy_complete', '?')} with "
                 f"every proxy seed)"
                 + ("" if result["complete"] else " (partial: run the same command again to continue)"))
    for key in ("kendall_tau", "kendall_tau_one_seed", "spearman_rho", "top3_overlap", "seed_noise_mm", "seed_tau",
                "spread_mm", "noise_to_spread", "long_spread_mm", "gmacs_tau", "baseline_mpjpe_mm"):
        if s.get(key) is not None:
            lines.append(f"  {key:<22} {s[key]:.3f}" if isinstance(s[key], float) else f"  {key:<22} {s[key]}")
    if result.get("rules"):
        lines.append("cheaper scores of the same short runs (mean over seeds; tau vs the long runs):")
        lines.append(f"  {'rule':<24} {'tau':>6} {'noise mm':>9} {'spread mm':>10} {'ratio':>6} {'mean mm':>8}")
        f = lambda v, w: f"{v:{w}.3f}" if isinstance(v, float) else f"{'-':>{w}}"  # noqa: E731
        for r in result["rules"]:
            lines.append(f"  {r['rule']:<24} {f(r['kendall_tau'], 6)} {f(r.get('seed_noise_mm'), 9)} "
                         f"{f(r['spread_mm'], 10)} {f(r.get('noise_to_spread'), 6)} {r['mean_mm']:8.2f}")
    if result["warning"]:
        lines.append(f"WARNING: {result['warning']}")
    return "\n".join(lines)
