"""Does a short fine-tune of each inherited subnet rank architectures better than its inherited weights alone?

For every reference architecture of the supernet's proxy check (stand-alone 3000-step runs: the lwa proxy
check's, ``search_vs_hand.py``'s retrains and its ``reference`` seeds, pooled by architecture and seed as
``hand_nas.report.supernet_check.reference_runs`` pools them), the subnet is extracted from ``--supernet``,
trained ``--steps`` more steps (the supernet recipe's batch and resolution, lr / 10, 20 warm-up steps, seed
0, one thread) and scored on the whole held-out split. Kendall's tau and Spearman's rho of those scores against
the stand-alone means are printed beside the inherited-weight scores of ``--inherited`` (a ``hand-nas proxy
check --evaluator supernet`` result), recomputed against the same reference, and GMACs alone.

One JSON per architecture under ``--out`` (rerunning skips what is stored, and ranks it against the reference as
it stands then; a kill loses one architecture's fine-tune). MPJPE: held-out, mm, IntagHand protocol.

    python experiments/supernet_finetune_rank.py --supernet runs/supernet-lwa-2k --steps 100 \\
        --out experiments/results/supernet_finetune_rank/steps100
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
REFERENCE = [ROOT / "results" / "proxy_check_lwa.json",
             *sorted(glob.glob(str(ROOT / "results" / "search_vs_hand" / "lwa" / "retrain" / "*.json"))),
             *sorted(glob.glob(str(ROOT / "results" / "search_vs_hand" / "lwa" / "reference" / "*.json")))]


def finetune_score(net, record: dict, cfg, steps: int) -> dict:
    """Held-out figures of ``cfg``'s extracted subnet after ``steps`` fine-tune steps."""
    from hand_nas.config import TrainCfg
    from hand_nas.threads import torch_threads
    from hand_nas.train import train

    base = TrainCfg.from_dict(record["train"])
    tcfg = dataclasses.replace(base, steps=steps, lr=base.lr / 10, warmup=min(20, steps // 2), eval_every=steps,
                               seed=0)
    with torch_threads(1):
        r = train(cfg, tcfg, record["data"], model=net.extract(cfg).train(), progress=False)
    return {"mpjpe_mm": r.metrics.mpjpe_mm, "mpvpe_mm": r.metrics.mpvpe_mm, "seconds": round(r.seconds, 1),
            "baseline_mpjpe_mm": r.baseline.mpjpe_mm, "train": tcfg.to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--supernet", required=True)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", required=True)
    ap.add_argument("--inherited", default=str(ROOT / "results" / "proxy_check_lwa_supernet_2k.json"))
    args = ap.parse_args()

    from hand_nas.cost.gate import estimate_gmacs
    from hand_nas.report.supernet_check import reference_runs
    from hand_nas.stats import kendall_tau, spearman_rho
    from hand_nas.supernet import load_supernet

    loaded: list = []  # the supernet, loaded only when an architecture is not stored yet (a rerun against a
    #                    reference with more seeds ranks the stored scores again without it)
    inherited = {r["label"]: r["supernet_mm"] for r in json.loads(Path(args.inherited).read_text())["rows"]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for ref in reference_runs(REFERENCE):
        if ref["label"] not in inherited:  # outside the supernet's space (the check skipped it)
            continue
        path = out / f"{ref['label']}.json"
        if not path.is_file():
            if not loaded:
                loaded.extend(load_supernet(args.supernet))
            net, record = loaded
            got = finetune_score(net, record, ref["config"], args.steps)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"label": ref["label"], "steps": args.steps, "supernet": args.supernet,
                                       "sha256": record.get("sha256"), **got}, indent=1))
            tmp.replace(path)
        got = json.loads(path.read_text())
        runs = list(ref["runs"].values())
        rows.append({"label": ref["label"], "gmacs": round(estimate_gmacs(ref["config"]), 4),
                     "finetuned_mm": got["mpjpe_mm"], "inherited_mm": inherited[ref["label"]],
                     "standalone_mm": float(np.mean(runs)), "seeds": sorted(ref["runs"]), "seconds": got["seconds"]})
        r = rows[-1]
        print(f"{r['label']:<16} fine-tuned {r['finetuned_mm']:6.2f}  inherited {r['inherited_mm']:6.2f}  "
              f"stand-alone {r['standalone_mm']:6.2f} mm ({len(runs)} seed(s))  {r['seconds']:.0f} s", flush=True)
    alone = [r["standalone_mm"] for r in rows]
    summary = {"architectures": len(rows), "steps": args.steps,
               "finetuned": {"kendall_tau": kendall_tau([r["finetuned_mm"] for r in rows], alone),
                             "spearman_rho": spearman_rho([r["finetuned_mm"] for r in rows], alone)},
               "inherited": {"kendall_tau": kendall_tau([r["inherited_mm"] for r in rows], alone),
                             "spearman_rho": spearman_rho([r["inherited_mm"] for r in rows], alone)},
               "gmacs_tau": kendall_tau([-r["gmacs"] for r in rows], alone),
               "seconds_per_architecture": float(np.median([r["seconds"] for r in rows])) if rows else None}
    (out / "summary.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(f"{len(rows)} architectures, {args.steps} fine-tune steps each: Kendall tau "
          f"{summary['finetuned']['kendall_tau']:.2f} (rho {summary['finetuned']['spearman_rho']:.2f}) against "
          f"inherited {summary['inherited']['kendall_tau']:.2f} ({summary['inherited']['spearman_rho']:.2f}) and "
          f"GMACs alone {summary['gmacs_tau']:.2f}, against the same stand-alone means")


if __name__ == "__main__":
    main()
