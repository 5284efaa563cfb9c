"""Study reports, the dashboard launcher and the reproduced tables (small studies, seconds)."""
from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from hand_nas.config import StudyCfg, TrainCfg
from hand_nas.report.study_data import StudyData, best_so_far, hypervolume_history, load_study_data
from hand_nas.search.records import Cost, TrialRecord
from hand_nas.search.runner import run_search

SPACE = """
name: rep
base: lwa_hand
budget: {gmacs: 0.40}
objectives: [mpjpe]
proxy: {resolution: 64, steps: 2, batch: 4, eval_every: 1, warmup: 1, augment: false}
data: {synthetic_n: 24}
params:
  encoder.tokens: {choices: [2, 4, 6]}
  graph.cross_hand: {choices: [separable, elementwise, none]}
  encoder.stages.*.width: {scale: [0.75, 1.0, 1.25], round: 8}
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory, hand_home):
    root = tmp_path_factory.mktemp("rep")
    (root / "rep.yaml").write_text(SPACE)
    cfg = StudyCfg(space=str(root / "rep.yaml"), study="rep", storage=f"sqlite:///{root}/st.db", trials=6, workers=1,
                   executor="local", out=str(root / "runs"), sampler="random", seed=3)
    run_search(cfg, progress=False)
    return root, cfg.storage


def _rec(i, mpjpe, gmacs, state="complete", budget=0.5):
    return TrialRecord(i, state, metrics=None if mpjpe is None else {"mpjpe_mm": mpjpe},
                       cost=Cost(gmacs, gmacs / 2, gmacs / 2, budget))


def test_history_and_hypervolume_are_pure_and_monotone():
    recs = [_rec(i, m, g) for i, (m, g) in enumerate([(50, 0.3), (40, 0.4), (60, 0.2), (45, 0.1)])]
    recs.append(_rec(4, None, 0.6, state="infeasible"))
    assert [v for _, v in best_so_far(recs)] == [50, 40, 40, 40, 40]
    hv = [v for _, v in hypervolume_history(recs)]
    assert all(b >= a for a, b in zip(hv, hv[1:])) and hv[-1] > hv[0]


def test_report_page_and_pngs(study, tmp_path):
    from hand_nas.cli import main

    root, storage = study
    out = tmp_path / "report"
    assert main(["report", "--study", "rep", "--storage", storage, "--out", str(out), "--references", ""]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "pareto.png", "pareto.md", "history.png", "trials.json"} <= names
    page = (out / "index.html").read_text()
    assert "Pareto front" in page and "fvcore" in page and 'class="sortable"' in page
    assert '<script src="http' not in page and len(page) > 1_000_000  # plotly.js embedded: opens offline
    assert "published points are not drawn" in page  # synthetic data: no paper points
    rows = json.loads((out / "trials.json").read_text())["rows"]
    assert len(rows) == 6


def test_a_latency_study_draws_and_tabulates_its_own_front(tmp_path):
    """objectives [mpjpe, latency]: the latency figure draws the (MPJPE, latency) front and the budget, the GMACs
    figure the (MPJPE, GMACs) one, and pareto.md lists the study's front with the latency's source."""
    from hand_nas.report.figures import plotly_figures
    from hand_nas.report.page import front_markdown, write_report

    pts = [(44.0, 0.40, 9.0), (43.0, 0.30, 12.0), (45.0, 0.20, 6.0), (46.0, 0.10, 7.0), (45.0, 0.20, 6.0)]
    recs = [dataclasses.replace(_rec(i, m, g), latency_ms=ms, params={"encoder.tokens": min(i, 2) + 1})
            for i, (m, g, ms) in enumerate(pts)]  # trial 4: trial 2's architecture proposed again
    sd = StudyData("lat", "sqlite:///x.db", recs, ["mpjpe", "latency"], 0.5, "synthetic", "synthetic", None,
                   latency_source="predicted ExecuTorch XNNPACK int8", budget_latency_ms=10.0)
    assert [r.number for r in sd.front_of("mpjpe", "latency")] == [1, 0, 2, 4] == [r.number for r in sd.front]
    assert [r.number for r in sd.front_of("mpjpe", "gmacs")] == [1, 2, 4, 3]
    figs = plotly_figures(sd)
    front_trace = figs["latency"].data[1]
    assert front_trace.name == "Pareto front (MPJPE, latency)" and list(front_trace.x) == [12.0, 9.0, 6.0, 6.0]
    assert any("budget 10.0 ms" in a.text for a in figs["latency"].layout.annotations)
    table = front_markdown(sd)
    assert "over (mpjpe, latency): 4 of 5 evaluated trials, 3 architectures" in table
    assert "predicted ExecuTorch XNNPACK int8" in table and "| 2, 4 | 45.00 |" in table
    assert "| 1 | 43.00 | 0.3000 | 0.1500 | 0.1500 | 12.00 | encoder.tokens=2 |" in table
    names = {p.name for p in write_report(sd, tmp_path / "rep")}
    assert {"pareto.md", "latency.png", "pareto.png"} <= names


def test_published_points_only_on_interhand():
    sd = StudyData("s", "x", [], ["mpjpe"], 0.47, None, "synthetic", None)
    assert sd.published == []
    sd.data_source = "interhand2.6m"
    assert {p["name"] for p in sd.published} >= {"IntagHand", "LWA-HAND", "LAGCHand"}


def test_references_are_trained_once_and_kept_in_the_study(study, monkeypatch):
    import hand_nas.train as train_mod
    from hand_nas.app import references as reference_runs

    _, storage = study
    calls = []
    real = train_mod.train

    def counting(*a, **k):
        calls.append(a[0].name)
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "train", counting)
    sd = load_study_data("rep", storage)
    reference_runs.add_references(sd, ("lwa_hand",), log=lambda *a: None)
    assert calls == ["lwa_hand"] and sd.references[0]["gmacs"] == pytest.approx(0.4697, abs=1e-3)
    again = load_study_data("rep", storage)
    reference_runs.add_references(again, ("lwa_hand",), log=lambda *a: None)
    assert calls == ["lwa_hand"] and again.references[0]["mpjpe_mm"] == sd.references[0]["mpjpe_mm"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listen_addresses(port: int) -> set[str]:
    """IPv4 addresses listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":
            found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


@pytest.mark.slow
def test_dashboard_serves_the_study_on_localhost(study):
    _, storage = study
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hand_nas.cli", "dashboard", "--study", "rep", "--storage", storage,
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status, body = None, b""
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    status, body = r.status, r.read()
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200 and b'"rep"' in body
        assert _listen_addresses(port) == {"127.0.0.1"}  # loopback only
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dashboard_refuses_an_unknown_study(study):
    from hand_nas.cli import main

    assert main(["dashboard", "--study", "nope", "--storage", study[1]]) == 2


@pytest.mark.slow
def test_ablation_and_lagc_rows_use_the_cache(hand_home, synth_dir, monkeypatch):
    from hand_nas.app import reproduce

    proxy = TrainCfg(resolution=64, steps=1, batch=4, eval_every=0, warmup=1, augment=False)
    monkeypatch.setitem(reproduce.ABLATIONS, "tokens", ("encoder.tokens", (2, 6)))
    rows = reproduce.ablation_rows("tokens", proxy, str(synth_dir), log=lambda *a: None)
    assert [r["encoder.tokens"] for r in rows] == [2, 6] and rows[1]["preset_value"]
    assert rows[0]["gmacs"] < rows[1]["gmacs"] and rows[1]["gmacs"] == pytest.approx(0.4697, abs=1e-3)
    assert all(r["proxy_mpjpe_mm"] > 0 for r in rows)
    monkeypatch.setattr("hand_nas.train.train", lambda *a, **k: pytest.fail("retrained"))  # from the cache now
    again = reproduce.ablation_rows("tokens", proxy, str(synth_dir), log=lambda *a: None)
    assert again == rows
