"""The study report as one self-contained HTML page (plotly.js embedded once, no network needed)
plus PNG figures, written atomically into a folder."""
from __future__ import annotations

import html
import json
from pathlib import Path

from hand_nas.report.study_data import StudyData

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
  const key = tr => { const t = tr.children[col].dataset.v ?? tr.children[col].textContent;
                      const n = parseFloat(t); return isNaN(n) ? t : n; };
  [...body.rows].sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1))
    .forEach(r => body.appendChild(r));
}));
"""
COLUMNS = (("number", "trial"), ("state", "state"), ("backend", "backend"), ("mpjpe_mm", "MPJPE mm"),
           ("mpvpe_mm", "MPVPE mm"), ("gmacs", "GMACs"), ("gmacs_image", "image"), ("gmacs_pose", "pose"),
           ("feasible", "feasible"), ("latency_ms", "latency ms"), ("seconds", "s"), ("params", "parameters"))


def trials_table(sd: StudyData) -> str:
    """A sortable HTML table of every trial (click a header to sort)."""
    front = {r.number for r in sd.front}
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t in COLUMNS)
    body = []
    for rec in sorted(sd.records, key=lambda r: r.number):
        r = rec.row()
        cells = []
        for k, _ in COLUMNS:
            v = r.get(k)
            if k == "params":
                text = json.dumps(v, sort_keys=True)
            elif isinstance(v, float):
                text = f"{v:.4f}" if k.startswith("gmacs") else f"{v:.2f}"
            else:
                text = "-" if v is None else str(v)
            cells.append(f'<td data-v="{html.escape(str(v if v is not None else ""))}">{html.escape(text)}</td>')
        cls = ' class="front"' if r["number"] in front else (' class="grey"' if not r["feasible"] else "")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def front_markdown(sd: StudyData) -> str:
    """The study's Pareto front (over its own objectives) as a Markdown table, lowest MPJPE first, with what each
    column was measured on."""
    same: dict[str, list] = {}  # one row per architecture: a sampler may propose the same one again
    for r in sorted(sd.front, key=lambda r: (r.mpjpe_mm, r.number)):
        same.setdefault(json.dumps(r.params, sort_keys=True), []).append(r)
    n = sum(1 for r in sd.records if r.trained)
    lines = [f"Pareto front of study `{sd.study}` over ({', '.join(sd.front_objectives)}): {len(sd.front)} of {n} "
             f"evaluated trials, {len(same)} architectures. MPJPE: held-out, mm, on {sd.data}. GMACs: fvcore "
             f"(one fused multiply-add = one flop), batch 1, 3x256x256; budget {sd.budget_gmacs}."]
    latency = sd.has_latency
    if latency:
        budget = f"; budget {sd.budget_latency_ms} ms" if sd.budget_latency_ms else ""
        lines.append(f"Latency: {sd.latency_source}{budget}.")
    head = ["trials", "MPJPE mm", "GMACs", "image", "pose"] + (["latency ms"] if latency else []) + ["parameters"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, *again in same.values():
        cells = [", ".join(str(t.number) for t in [r, *again]), f"{r.mpjpe_mm:.2f}", f"{r.gmacs:.4f}",
                 f"{r.gmacs_image:.4f}", f"{r.gmacs_pose:.4f}"]
        if latency:
            cells.append("-" if r.latency_ms is None else f"{r.latency_ms:.2f}")
        cells.append(", ".join(f"{k}={json.dumps(v)}" for k, v in sorted((r.params or {}).items())))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def proxy_note(sd: StudyData) -> str:
    """What is known of the proxy's ranking quality, with a warning when its noise rivals the differences."""
    from hand_nas.report.proxy_check import warning

    c = sd.proxy_check
    if not c:
        return ("Proxy quality unknown: run <code>hand-nas proxy check --space SPACE --study NAME</code> to measure "
                "whether this proxy ranks architectures like a longer training.")
    s = c["summary"]
    figs = ", ".join(f"{k} {s[k]:.2f}" for k in ("kendall_tau", "spearman_rho", "seed_noise_mm", "spread_mm",
                                                  "noise_to_spread", "gmacs_tau", "baseline_mpjpe_mm") if isinstance(s.get(k), float))
    text = (f"Proxy check ({s['complete']}/{s['architectures']} architectures, {s['seeds']} seeds, long training "
            f"{c['long']['steps']} steps): {figs}.")
    rules = [r for r in c.get("rules") or [] if r.get("rule", "").startswith("step ")]
    if rules:  # what a multi-fidelity pruner compares at its rungs
        text += " At earlier evaluations: " + "; ".join(
            f"{r['rule']}: noise/spread {r['noise_to_spread']:.2f}"
            + (f", tau {r['kendall_tau']:.2f}" if isinstance(r.get("kendall_tau"), float) else "")
            for r in rules if isinstance(r.get("noise_to_spread"), float)) + "."
    warn = warning(s)
    return html.escape(text) + (f' <b style="color:#d62728">Warning: {html.escape(warn)}.</b>' if warn else "")


def render_html(sd: StudyData, figs: dict) -> str:
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    parts = [pio.to_html(f, full_html=False, include_plotlyjs=False, div_id=f"fig-{name}") for name, f in figs.items()]
    n_ok = sum(1 for r in sd.records if r.state == "complete")
    refs = ", ".join(f"{r['name']} {r['mpjpe_mm']:.2f} mm at {r['gmacs']:.4f} GMACs" for r in sd.references) or "none"
    published = ("the papers' published InterHand2.6M points are drawn (open stars)" if sd.published else
                 f"the papers' published points are not drawn: these trials were scored on "
                 f"{sd.data_source or 'an unknown data set'}, not InterHand2.6M")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hand-nas report: {html.escape(sd.study)}</title>
<style>body{{font-family:sans-serif;margin:24px;max-width:1200px}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ddd;padding:3px 6px}} th{{cursor:pointer;background:#f3f3f3}} tr.front{{background:#fde8e8}}
tr.grey{{color:#999}} .note{{color:#555;font-size:13px}}</style>
<script>{get_plotlyjs()}</script></head><body>
<h1>hand-nas study <code>{html.escape(sd.study)}</code></h1>
<p class="note">{len(sd.records)} trials ({n_ok} complete); objectives {html.escape(", ".join(sd.objectives))}; budget
{sd.budget_gmacs} GMACs. FLOPs are GMACs counted the fvcore way (one fused multiply-add = one flop), batch 1,
3x256x256, attention matmuls included. MPJPE/MPVPE: held-out, mm, IntagHand protocol, proxy
{html.escape(json.dumps(sd.proxy))} on {html.escape(str(sd.data))}. References trained under the same proxy: {html.escape(refs)};
{html.escape(published)}. Storage: <code>{html.escape(sd.storage)}</code>.</p>
<p class="note">{proxy_note(sd)}</p>
{''.join(parts)}
<p class="note">Importances: {html.escape(sd.importance_note)}</p>
<h2>Trials</h2><p class="note">Click a header to sort. Red rows: Pareto front; grey: infeasible or not complete.</p>
{trials_table(sd)}
<script>{SORT_JS}</script></body></html>
"""


def write_report(sd: StudyData, out: str | Path) -> list[Path]:
    """index.html + PNG figures + pareto.md + trials.json in ``out`` (replaced as a whole)."""
    from hand_nas.atomic import atomic_dir
    from hand_nas.report.figures import plotly_figures, write_pngs

    out = Path(out)
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "index.html").write_text(render_html(sd, plotly_figures(sd)))
        write_pngs(sd, tmp)
        (tmp / "pareto.md").write_text(front_markdown(sd))
        (tmp / "trials.json").write_text(json.dumps({"study": sd.study, "rows": [r.row() for r in sd.records], "references": sd.references,
                                                     "front": [r.number for r in sd.front]}, indent=1, default=str))
    return sorted(out.iterdir())
