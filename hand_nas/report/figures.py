"""Figures of a study, from ``StudyData``: plotly for the HTML page, matplotlib for PNG files.

Both render the same values: the Pareto front of MPJPE against GMACs (infeasible trials grey,
references and, on InterHand2.6M, published points as stars), MPJPE against latency with its own front
when trials were timed or predicted, best-so-far and hypervolume over trials, and parameter importances.
Each figure draws the front of its own two axes; the study's front (over all its objectives) is the
red rows of the trials table and ``pareto.md``.
"""
from __future__ import annotations

import textwrap

from pathlib import Path

from hand_nas.report.study_data import StudyData, best_so_far, hypervolume_history

GMACS_AXIS = "GMACs (fvcore: 1 multiply-add = 1 flop, 3x256x256)"
GREY, BLUE, RED, GREEN, ORANGE = "#b0b0b0", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"


def _split(sd: StudyData):
    """(trained: feasible, complete, finite MPJPE; every other trial that has a cost)."""
    costed = [r for r in sd.records if r.gmacs is not None]
    feas = [r for r in costed if r.trained]
    return feas, [r for r in costed if not r.trained]


def _y_other(r, feas) -> float:
    """Trials without a trained MPJPE (over budget: never trained; failed; pruned) sit on a ceiling line."""
    if r.trained or (r.mpjpe_mm is not None and r.state == "pruned"):
        return r.mpjpe_mm
    return 1.08 * max([f.mpjpe_mm for f in feas] or [100.0])


def _label(r) -> str:
    return f"trial {r.number} ({r.backend}, {r.state})"


# --- plotly ----------------------------------------------------------------------------------------

def plotly_figures(sd: StudyData) -> dict:
    """{name: plotly Figure} in page order."""
    import plotly.graph_objects as go

    figs = {}
    feas, other = _split(sd)
    front = sd.front_of("mpjpe", "gmacs")
    fig = go.Figure()
    if other:
        fig.add_trace(go.Scatter(x=[r.gmacs for r in other], y=[_y_other(r, feas) for r in other],
                                 mode="markers", name="infeasible / failed / pruned (untrained at the top)",
                                 marker=dict(color=GREY, size=8, symbol="x"),
                                 text=[_label(r) + (f": {r.error}" if r.error else "") for r in other]))
    fig.add_trace(go.Scatter(x=[r.gmacs for r in feas], y=[r.mpjpe_mm for r in feas], mode="markers",
                             name="feasible trials", marker=dict(color=BLUE, size=9), text=[_label(r) for r in feas]))
    fig.add_trace(go.Scatter(x=[r.gmacs for r in front], y=[r.mpjpe_mm for r in front], mode="lines+markers",
                             name="Pareto front (MPJPE, GMACs)", line=dict(color=RED, shape="hv"),
                             marker=dict(color=RED, size=11)))
    for r in sd.references:
        fig.add_trace(go.Scatter(x=[r["gmacs"]], y=[r["mpjpe_mm"]], mode="markers+text", name=f"{r['name']} (same proxy)",
                                 text=[r["name"]], textposition="top center",
                                 marker=dict(symbol="star", size=16, color=GREEN)))
    for r in sd.published:
        fig.add_trace(go.Scatter(x=[r["gmacs"]], y=[r["mpjpe_mm"]], mode="markers+text", name=f"{r['name']} (published)",
                                 text=[r["name"]], textposition="bottom center",
                                 marker=dict(symbol="star-open", size=14, color=ORANGE)))
    if sd.budget_gmacs:
        fig.add_vline(x=sd.budget_gmacs, line_dash="dash", line_color=RED, annotation_text=f"budget {sd.budget_gmacs}")
    fig.update_layout(title="Pareto front: held-out MPJPE vs GMACs", xaxis_title=GMACS_AXIS, yaxis_title="MPJPE (mm)",
                      template="plotly_white", height=520)
    figs["pareto"] = fig

    if sd.has_latency:
        timed, lfront = [r for r in feas if r.latency_ms], sd.front_of("mpjpe", "latency")
        f2 = go.Figure(go.Scatter(x=[r.latency_ms for r in timed], y=[r.mpjpe_mm for r in timed], mode="markers",
                                  name="scored trials", text=[_label(r) for r in timed],
                                  marker=dict(color=BLUE, size=9)))
        f2.add_trace(go.Scatter(x=[r.latency_ms for r in lfront], y=[r.mpjpe_mm for r in lfront],
                                mode="lines+markers", name="Pareto front (MPJPE, latency)",
                                text=[_label(r) for r in lfront],
                                line=dict(color=RED, shape="hv"), marker=dict(color=RED, size=11)))
        if sd.budget_latency_ms:
            f2.add_vline(x=sd.budget_latency_ms, line_dash="dash", line_color=RED,
                         annotation_text=f"budget {sd.budget_latency_ms} ms")
        f2.update_layout(title=f"MPJPE vs CPU latency ({sd.latency_source})", xaxis_title="latency (ms)",
                         yaxis_title="MPJPE (mm)", template="plotly_white", height=420)
        figs["latency"] = f2

    from plotly.subplots import make_subplots

    bsf, hv = best_so_far(sd.records), hypervolume_history(sd.records, sd.front_objectives)
    f3 = make_subplots(rows=1, cols=2, subplot_titles=("best feasible MPJPE so far (mm)",
                                                       f"hypervolume of ({', '.join(sd.front_objectives)}) so far"))
    f3.add_trace(go.Scatter(x=[n for n, _ in bsf], y=[v for _, v in bsf], mode="lines+markers", name="best so far",
                            line=dict(shape="hv", color=BLUE)), 1, 1)
    f3.add_trace(go.Scatter(x=[n for n, _ in hv], y=[v for _, v in hv], mode="lines+markers", name="hypervolume",
                            line=dict(shape="hv", color=RED)), 1, 2)
    f3.update_xaxes(title_text="trial")
    f3.update_layout(template="plotly_white", height=380, showlegend=False)
    figs["history"] = f3

    if sd.importances:
        names = list(sd.importances)[::-1]
        f4 = go.Figure(go.Bar(x=[sd.importances[k] for k in names], y=names, orientation="h", marker_color=BLUE))
        f4.update_layout(title="parameter importances for MPJPE", template="plotly_white",
                         height=120 + 28 * len(names))
        figs["importances"] = f4
    return figs


# --- matplotlib ------------------------------------------------------------------------------------

def write_pngs(sd: StudyData, folder: str | Path) -> list[Path]:
    """pareto.png, history.png (and importances.png, latency.png when available) in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    paths = []
    feas, other = _split(sd)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    if other:
        ax.scatter([r.gmacs for r in other], [_y_other(r, feas) for r in other], c=GREY, marker="x",
                   s=25, label="infeasible / failed / pruned (untrained at the top)")
    ax.scatter([r.gmacs for r in feas], [r.mpjpe_mm for r in feas], c=BLUE, s=30, label="feasible trials")
    front = sd.front_of("mpjpe", "gmacs")
    ax.step([r.gmacs for r in front], [r.mpjpe_mm for r in front], where="post", c=RED, marker="o",
            label="Pareto front (MPJPE, GMACs)")
    for r in sd.references:
        ax.scatter([r["gmacs"]], [r["mpjpe_mm"]], marker="*", s=220, c=GREEN, edgecolors="k", zorder=5)
        ax.annotate(f"{r['name']} (same proxy)", (r["gmacs"], r["mpjpe_mm"]), textcoords="offset points", xytext=(6, 6))
    for r in sd.published:
        ax.scatter([r["gmacs"]], [r["mpjpe_mm"]], marker="*", s=160, facecolors="none", edgecolors=ORANGE)
        ax.annotate(f"{r['name']} (published)", (r["gmacs"], r["mpjpe_mm"]), textcoords="offset points", xytext=(6, -10))
    if sd.budget_gmacs:
        ax.axvline(sd.budget_gmacs, ls="--", c=RED, lw=1, label=f"budget {sd.budget_gmacs} GMACs")
    ax.set_xlabel(GMACS_AXIS)
    ax.set_ylabel("held-out MPJPE (mm)")
    ax.set_title(f"study {sd.study}: Pareto front")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, folder / "pareto.png"))

    bsf, hv = best_so_far(sd.records), hypervolume_history(sd.records, sd.front_objectives)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=120)
    a1.step([n for n, _ in bsf], [v if v is not None else float("nan") for _, v in bsf], where="post", c=BLUE)
    a1.set_title("best feasible MPJPE so far (mm)")
    a2.step([n for n, _ in hv], [v for _, v in hv], where="post", c=RED)
    a2.set_title(f"hypervolume ({', '.join(sd.front_objectives)})")
    for a in (a1, a2):
        a.set_xlabel("trial")
    fig.tight_layout()
    paths.append(_save(fig, folder / "history.png"))

    if sd.importances:
        names = list(sd.importances)[::-1]
        fig, ax = plt.subplots(figsize=(6, 0.8 + 0.35 * len(names)), dpi=120)
        ax.barh(names, [sd.importances[k] for k in names], color=BLUE)
        ax.set_title("parameter importances for MPJPE")
        fig.tight_layout()
        paths.append(_save(fig, folder / "importances.png"))
    if sd.has_latency:
        timed, lfront = [r for r in feas if r.latency_ms], sd.front_of("mpjpe", "latency")
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        ax.scatter([r.latency_ms for r in timed], [r.mpjpe_mm for r in timed], c=BLUE, s=30, label="scored trials")
        ax.step([r.latency_ms for r in lfront], [r.mpjpe_mm for r in lfront], where="post", c=RED, marker="o",
                label="Pareto front (MPJPE, latency)")
        if sd.budget_latency_ms:
            ax.axvline(sd.budget_latency_ms, ls="--", c=RED, lw=1, label=f"budget {sd.budget_latency_ms} ms")
        ax.legend(fontsize=8)
        ax.set_xlabel("latency (ms)")
        ax.set_title("\n".join(textwrap.wrap(sd.latency_source, 80)), fontsize=7)
        ax.set_ylabel("MPJPE (mm)")
        fig.tight_layout()
        paths.append(_save(fig, folder / "latency.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from hand_nas.atomic import atomic_file

    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return path
