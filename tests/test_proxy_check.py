"""The proxy check: rank and noise figures (pure), and a tiny resumable run."""
from __future__ import annotations

import pytest

from hand_nas.app.proxy_check import run_check
from hand_nas.report.proxy_check import ProxyCheckCfg, format_check, scoring_rules, short_training, summarize, warning

SPACE = """
name: pc
base: lwa_hand
budget: {gmacs: 0.47}
objectives: [mpjpe]
proxy: {resolution: 64, steps: 2, batch: 4, eval_every: 0, warmup: 1, augment: false}
data: {synthetic_n: 24}
params:
  encoder.tokens: {choices: [2, 4, 6]}
  encoder.stages.*.width: {scale: [0.75, 1.0], round: 8}
"""


def test_summary_figures_by_hand():
    archs = [{"label": f"a{i}", "gmacs": 0.3, "proxy_mm": p, "long_mm": l}
             for i, (p, l) in enumerate([([10, 12], 5), ([20, 22], 8), ([30, 31], 9), ([40, 44], 20)])]
    s = summarize(archs, seeds=2)
    assert s["complete"] == 4 and s["kendall_tau"] == pytest.approx(1.0) and s["spearman_rho"] == pytest.approx(1.0)
    assert s["seed_noise_mm"] == pytest.approx((2 + 2 + 1 + 4) / 4) and s["top3_overlap"] == 3
    assert s["noise_to_spread"] < 1 / 3 and warning(s) == ""
    partial = summarize([dict(a, long_mm=None) for a in archs], seeds=2)  # the proxy runs alone: noise, no tau
    assert partial["seed_noise_mm"] == s["seed_noise_mm"] and "kendall_tau" not in partial
    assert partial["complete"] == 0 and partial["proxy_complete"] == 4
    noisy = summarize([dict(a, proxy_mm=[a["proxy_mm"][0], 100 - a["proxy_mm"][0]]) for a in archs], seeds=2)
    assert "not to be trusted" in warning(noisy)
    assert s.get("gmacs_tau") is None  # equal GMACs: no untrained ranking to compare with
    # GMACs (larger first) rank the long runs perfectly, the proxy only partly: the report says so
    by_cost = summarize([dict(a, gmacs=1.0 - i / 10, proxy_mm=p) for i, (a, p) in
                         enumerate(zip(archs, ([10, 12], [30, 31], [20, 22], [40, 44])))], seeds=2)
    assert by_cost["gmacs_tau"] == pytest.approx(1.0) and by_cost["kendall_tau"] < 1.0
    assert "no better than GMACs alone" in warning(by_cost)


def test_cheaper_scores_read_off_the_histories_by_hand():
    # per arch: two seeds' histories [step, mm]; step 2's ranking is the long runs', step 1's is reversed
    hist = lambda a, b: [[0, 50.0], [1, a], [2, b]]  # noqa: E731
    archs = [{"label": f"a{i}", "long_mm": l, "proxy_history": [hist(s1, s2), hist(s1 + 1, s2 + 1)]}
             for i, (s1, s2, l) in enumerate([(30, 10, 5), (20, 20, 8), (10, 30, 9)])]
    rules = {r["rule"]: r for r in scoring_rules(archs, seeds=2)}
    assert set(rules) == {"step 1", "step 2", "mean of steps 1, 2"}
    assert rules["step 2"]["kendall_tau"] == pytest.approx(1.0) and rules["step 1"]["kendall_tau"] == pytest.approx(-1.0)
    assert rules["step 2"]["seed_noise_mm"] == pytest.approx(1.0) and rules["step 2"]["complete"] == 3
    assert rules["mean of steps 1, 2"]["spread_mm"] == pytest.approx(0.0)
    assert scoring_rules(archs[:2], seeds=2) == []  # fewer than 3 architectures: nothing to rank


def test_a_proxy_variant_changes_the_short_runs_only():
    from hand_nas.config import TrainCfg
    from hand_nas.errors import HandNasError
    from hand_nas.report.proxy_check import long_training

    proxy = TrainCfg(resolution=128, steps=300, eval_every=60)
    short = short_training(proxy, (("resolution", 64), ("steps", 1000)))
    assert (short.resolution, short.steps, short.eval_every) == (64, 1000, 60)
    assert long_training(proxy, 10).steps == 3000 and short_training(proxy) is proxy
    with pytest.raises(HandNasError, match="--proxy-set stpes: not a training field"):
        short_training(proxy, (("stpes", 10),))


def test_lwa_proxy_is_judged_against_the_standard_recipe():
    """lwa.yaml's proxy trains the 3D loss terms only; its long run (reference) is retrain's `standard`."""
    from hand_nas.report.proxy_check import long_training
    from hand_nas.retrain import RECIPES
    from hand_nas.search.space import load_space

    space = load_space("lwa")
    assert space.proxy.losses == "3d" and space.reference == (("losses", "intaghand"),)
    assert long_training(space.proxy, 10, space.reference) == RECIPES["standard"].train


@pytest.mark.slow
def test_a_tiny_check_runs_and_resumes_from_its_cache(tmp_path, hand_home, monkeypatch):
    from hand_nas.search.runner import data_dir
    from hand_nas.search.space import load_space

    (tmp_path / "pc.yaml").write_text(SPACE)
    space = load_space(tmp_path / "pc.yaml")
    data = str(data_dir("synthetic", space.synthetic_n))
    cfg = ProxyCheckCfg(n=2, factor=2, seeds=2)
    first = run_check(space, cfg, data, progress=False, workers=2)  # the process pool; cached runs below
    assert first["complete"] and first["summary"]["complete"] == 3  # base preset + 2 samples
    assert first["architectures"][0]["label"] == "lwa_hand" and "kendall_tau" in first["summary"]
    assert "long" in format_check(first) and first["summary"]["baseline_mpjpe_mm"] > 0
    assert all(len(h) >= 2 for a in first["architectures"] for h in a["proxy_history"])
    monkeypatch.setattr("hand_nas.train.train", lambda *a, **k: pytest.fail("retrained a cached run"))
    again = run_check(space, cfg, data, progress=False)
    assert again["architectures"] == first["architectures"]


def test_the_report_warns_when_the_proxy_is_noisy():
    from hand_nas.report.page import proxy_note
    from hand_nas.report.study_data import StudyData

    sd = StudyData("s", "x", [], ["mpjpe"], 0.47, None, "synthetic", {"steps": 2})
    assert "Proxy quality unknown" in proxy_note(sd)
    sd.proxy_check = {"summary": {"complete": 4, "architectures": 4, "seeds": 2, "kendall_tau": 0.3,
                                  "seed_noise_mm": 9.0, "spread_mm": 6.0, "noise_to_spread": 1.5},
                      "long": {"steps": 20}}
    assert "Warning" in proxy_note(sd) and "not to be trusted" in proxy_note(sd)
    sd.proxy_check["rules"] = [{"rule": "step 1", "noise_to_spread": 2.5, "kendall_tau": 0.1}]
    assert "step 1: noise/spread 2.50, tau 0.10" in proxy_note(sd)
