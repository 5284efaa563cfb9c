"""``hand-nas``: the command line. Each subcommand parses arguments and calls one library function.

Errors a user can fix (bad paths, malformed files) are ``HandNasError``s and print as one line,
``hand-nas: error: <what and where>``, with exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hand_nas.errors import HandNasError

FLOPS_NOTE = "GMACs counted the fvcore way: one fused multiply-add = one flop"


def _add_mano(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mano", default="procedural",
                   help="'procedural' (default: the generated hand) or a folder with MANO_RIGHT.pkl / MANO_LEFT.pkl")


# --- hand -------------------------------------------------------------------------------------

def cmd_hand_generate(args) -> None:
    from hand_nas.hand.procedural import write_mano_pair

    for side, path in write_mano_pair(args.out).items():
        print(f"{side}: {path}")


def cmd_hand_info(args) -> None:
    import numpy as np
    import torch

    from hand_nas.hand.hierarchy import hierarchy_path
    from hand_nas.hand.mano import HandModel
    from hand_nas.hand.topology import JOINT_NAMES_21, ROOT_JOINT, faces_fingerprint

    model = HandModel(args.mano)
    with torch.no_grad():
        v, j = model(torch.zeros(1, 2, 48), torch.zeros(1, 2, 10))
    faces = model.faces["right"]
    info = {
        "mano_dir": str(model.mano_dir), "vertices": int(v.shape[2]), "faces": int(faces.shape[0]),
        "joints": int(j.shape[2]), "joint_order": list(JOINT_NAMES_21), "root_joint": ROOT_JOINT,
        "bone_j0_j9_m": [round(float((j[0, h, ROOT_JOINT] - j[0, h, 0]).norm()), 4) for h in range(2)],
        "hand_extent_m": [np.round((v[0, h].max(0).values - v[0, h].min(0).values).numpy(), 4).tolist() for h in range(2)],
        "topology_sha256": faces_fingerprint(faces), "hierarchy_file": str(hierarchy_path(faces_fingerprint(faces))),
    }
    print(json.dumps(info, indent=2))


def cmd_hand_show(args) -> None:
    from hand_nas.data.sheet import pose_sheet

    print(f"wrote {pose_sheet(args.out, args.mano)}")


def cmd_hand_build_graph(args) -> None:
    from hand_nas.hand.hierarchy import SIZES, build_hierarchy, hierarchy_path, save_hierarchy
    from hand_nas.hand.mano import HandModel

    faces = HandModel(args.mano).faces["right"]
    h = build_hierarchy(faces)
    path = save_hierarchy(h, args.out or hierarchy_path(h.fingerprint))
    real = [int(m.sum()) for m in h.mask]
    print(f"levels {list(SIZES)} slots, real nodes {real}; checksum {h.checksum}")
    print(f"wrote {path}")


def cmd_hand_convert(args) -> None:
    from hand_nas.hand.mano import convert_mano

    for path in convert_mano(args.src, args.dst):
        print(f"wrote {path}")


# --- data -------------------------------------------------------------------------------------

def cmd_data_synth(args) -> None:
    from hand_nas.data.synthetic import synthesize

    r = synthesize(args.out, args.n, seed=args.seed, mano_dir=args.mano, size=args.size, workers=args.workers,
                   overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {args.n} samples to {args.out} in {r['seconds']:.1f} s: {r['images_per_s']:.1f} images/s "
          f"with {r['workers']} worker(s), {r['images_per_s_per_worker']:.1f} images/s per core")


def cmd_data_prepare(args) -> None:
    from hand_nas.data.interhand import prepare

    r = prepare(args.root, args.out, split=args.split, subset=args.subset, hands=args.hands, mano_dir=args.mano,
                size=args.size, limit=args.limit, overwrite=args.overwrite, progress=not args.quiet)
    print(f"selected {r['selected']} images, wrote {r['written']} samples to {args.out} "
          f"({r['dropped_dark']} dropped as too dark)")


def cmd_data_show(args) -> None:
    from hand_nas.data.sheet import contact_sheet

    print(f"wrote {contact_sheet(args.folder, args.out, count=args.count, cols=args.cols)}")


# --- models -------------------------------------------------------------------------------------

def cmd_cost(args) -> None:
    from hand_nas.cost.flops import model_cost
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model

    cfg = resolve_model(args.model)
    model = build_model(cfg, args.mano)
    r = model_cost(model, size=args.size)
    out = {"model": cfg.name, "gmacs_total": round(r.gmacs_total, 4), "gmacs_image": round(r.gmacs_image, 4),
           "gmacs_pose": round(r.gmacs_pose, 4), "params_m": round(r.params_m, 3), "input_size": args.size,
           "convention": FLOPS_NOTE}
    if args.latency:
        from hand_nas.cost.latency import model_latency

        lat = model_latency(model, args.size, args.threads, repeats=args.repeats)
        out.update({k: round(v, 2) if isinstance(v, float) else v for k, v in lat.items() if k != "input_size"})
    if args.json:
        print(json.dumps(out))
        return
    print(f"{cfg.name}: {out['gmacs_total']:.4f} GMACs = {out['gmacs_image']:.4f} image + {out['gmacs_pose']:.4f} pose; "
          f"{out['params_m']:.2f} M parameters  (input 1x3x{args.size}x{args.size}; {FLOPS_NOTE})")
    if args.latency:
        print(f"latency, batch 1, {out['threads']} thread(s), median of {args.repeats} after warm-up: "
              f"torch eager {out['latency_ms_torch']:.2f} ms, onnxruntime fp32 {out['latency_ms_ort']:.2f} ms")


def resolve_data(spec: str, n: int, quiet: bool = False):
    from hand_nas.data.synthetic import cached_synthetic

    return cached_synthetic(n, progress=not quiet) if spec == "synthetic" else spec


def cmd_train(args) -> None:
    from hand_nas.config import TrainCfg
    from hand_nas.cost.flops import model_cost
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model
    from hand_nas.train import train

    cfg = resolve_model(args.model)
    data = resolve_data(args.data, args.synthetic_n, args.quiet)
    tcfg = TrainCfg(resolution=args.resolution, steps=args.steps, batch=args.batch, lr=args.lr,
                    eval_every=args.eval_every, seed=args.seed, workers=args.workers)
    cost = model_cost(build_model(cfg, args.mano))
    r = train(cfg, tcfg, data, checkpoint_dir=args.out, mano_dir=args.mano, progress=not args.quiet)
    print(f"{cfg.name}: {cost.gmacs_total:.4f} GMACs at 256x256 ({FLOPS_NOTE})")
    print(f"proxy: {r.steps} steps, batch {tcfg.batch}, {tcfg.resolution}x{tcfg.resolution}, {r.seconds:.0f} s wall")
    print("step    MPJPE   MPVPE  (held-out, mm, IntagHand protocol)")
    for h in r.history:
        print(f"{h['step']:>5}  {h['mpjpe_mm']:6.2f}  {h['mpvpe_mm']:6.2f}")
    b = r.baseline
    print(f"trained {r.metrics.mpjpe_mm:.2f} mm MPJPE; baseline (mean shape) {b.mpjpe_mm:.2f} mm "
          f"(MPVPE {b.mpvpe_mm:.2f}): the training split's mean hands predicted for every held-out image")
    if r.checkpoint:
        print(f"checkpoint: {r.checkpoint}")


# --- search -------------------------------------------------------------------------------------

def cmd_search(args) -> None:

    from hand_nas.config import StudyCfg
    from hand_nas.search.records import best_feasible, format_table, pareto_front
    from hand_nas.search.runner import run_search
    from hand_nas.search.space import load_space

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(args.space)
    sampler = args.sampler or ("evolution" if args.backend == "nni" else "tpe")
    cfg = StudyCfg(space=args.space, study=args.study or space.name, storage=args.storage, backend=args.backend,
                   sampler=sampler, pruner=args.pruner, trials=args.trials, workers=args.workers,
                   executor="local" if args.local else "ray", ray_address=args.ray_address or "",
                   cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                   budget_gmacs=args.budget or 0.0, data=args.data, out=args.out, seed=args.seed, latency=args.latency)
    r = run_search(cfg, progress=not args.quiet, space=space)
    budget = args.budget or space.budget_gmacs
    print(f"study {r.study} ({r.storage}): {r.finished} finished trials, {r.ran} run now in {r.seconds:.0f} s"
          + (f", {r.recovered} interrupted trial(s) marked failed" if r.recovered else ""))
    print(f"budget {budget} GMACs at 256x256 ({FLOPS_NOTE}); MPJPE/MPVPE held-out, mm, IntagHand protocol")
    shown = pareto_front(r.rows) if space.multi_objective else sorted(
        [x for x in r.rows if x["state"] in ("complete", "pruned") and x["mpjpe_mm"] is not None],
        key=lambda x: x["mpjpe_mm"])[:10]
    print("Pareto front (feasible):" if space.multi_objective else "best trials:")
    print(format_table(shown))
    best = best_feasible(r.rows)
    if best:
        print(f"best feasible: trial {best['number']}, MPJPE {best['mpjpe_mm']:.2f} mm at {best['gmacs']:.4f} GMACs; "
              f"checkpoint {best['checkpoint']}")
    else:
        print("no feasible completed trial yet")


def cmd_trial_show(args) -> None:
    import optuna

    from hand_nas.config import ModelCfg
    from hand_nas.search.gate import cost_of
    from hand_nas.search.optuna_backend import make_storage
    from hand_nas.search.records import trial_row

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=args.study, storage=make_storage(args.storage))
    except KeyError:
        raise HandNasError(f"{args.storage}: no study named {args.study!r}") from None
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if args.number not in trials:
        raise HandNasError(f"study {args.study!r}: no trial {args.number} (trials 0..{len(trials) - 1})")
    t = trials[args.number]
    row = trial_row(t)
    print(json.dumps({k: row[k] for k in ("number", "state", "backend", "mpjpe_mm", "mpvpe_mm", "gmacs", "gmacs_image",
                                          "gmacs_pose", "feasible", "checkpoint", "error")}, indent=2))
    print("params:", json.dumps(row["params"]))
    ua = t.user_attrs
    print("proxy:", json.dumps(ua.get("proxy")), "seed:", ua.get("seed"), "data:", ua.get("data"))
    if "config" not in ua:
        print("no model config stored (the trial failed before its configuration was built)")
        return
    cfg = ModelCfg.from_dict(ua["config"])
    image, pose = cost_of(cfg)
    stored = ua.get("cost", {})
    print(f"rebuilt from storage: {cfg.name}; {image + pose:.4f} GMACs = {image:.4f} image + {pose:.4f} pose "
          f"(stored {stored.get('gmacs_total')}; {FLOPS_NOTE})")
    if args.build:
        from hand_nas.cost.flops import model_cost
        from hand_nas.models import build_model

        r = model_cost(build_model(cfg))
        print(f"built and counted with fvcore: {r.gmacs_total:.4f} GMACs, {r.params_m:.3f} M parameters")
    if args.config_out:
        import yaml

        from hand_nas.atomic import atomic_file

        with atomic_file(args.config_out, "w") as fh:
            yaml.safe_dump({"model": cfg.to_dict()}, fh, sort_keys=False)
        print(f"wrote {args.config_out}")


# --- compression and inference ----------------------------------------------------------------

def _trial_checkpoint(study: str, trial: str, storage: str) -> tuple[str, dict]:
    """(checkpoint folder, provenance) of a stored trial: 'best' (best feasible) or a trial number."""
    from hand_nas.search.records import best_feasible, load_rows

    try:
        rows = load_rows(study, storage)
    except KeyError:
        raise HandNasError(f"{storage}: no study named {study!r}") from None
    if trial == "best":
        row = best_feasible(rows)
        if row is None:
            raise HandNasError(f"study {study!r}: no feasible completed trial")
    else:
        if not trial.isdigit():
            raise HandNasError(f"--trial {trial!r}: expected 'best' or a trial number")
        row = next((r for r in rows if r["number"] == int(trial)), None)
        if row is None:
            raise HandNasError(f"study {study!r}: no trial {trial}")
    if not row.get("checkpoint") or not Path(row["checkpoint"]).is_dir():
        raise HandNasError(f"study {study!r} trial {row['number']}: no checkpoint on disk ({row.get('checkpoint')})")
    return row["checkpoint"], {"study": study, "trial": row["number"], "storage": storage,
                               "trial_mpjpe_mm": row["mpjpe_mm"], "trial_gmacs": row["gmacs"]}


def cmd_compress(args) -> None:
    from compress.pipeline import CompressCfg, compress, format_report
    from compress.prune import PruneCfg
    from compress.quantize import QuantCfg

    if bool(args.study) == bool(args.checkpoint):
        raise HandNasError("give either --study NAME [--trial best|N] or --checkpoint DIR")
    if args.study:
        checkpoint, prov = _trial_checkpoint(args.study, args.trial, args.storage)
    else:
        checkpoint, prov = args.checkpoint, {}
    cfg = CompressCfg(prune=PruneCfg(target_gmacs=args.target_gmacs, ratio=args.ratio, prune_heads=args.prune_heads),
                      quant=QuantCfg(weight_bits=args.bits, qat_steps=args.qat_steps),
                      finetune_steps=args.finetune_steps, size=args.size, threads=args.threads, int8=args.int8)
    out = Path(args.out)
    report = compress(checkpoint, out, cfg, provenance=prov, data=args.data, mano_dir=args.mano,
                      overwrite=args.overwrite)
    print(format_report(report))
    i8 = report["int8"]
    c = i8["candidates"][i8["chosen"]]
    print(f"int8: {i8['chosen']} ({i8['why']}); integer kernels {c['int8_ops']}")
    print(f"int8 vs fp32 ONNX latency: {report['int8_speedup_vs_fp32_onnx']:.2f}x "
          f"({'faster' if report['int8_speedup_vs_fp32_onnx'] > 1 else 'not faster on this CPU'}); "
          f"candidates: " + ", ".join(f"{k} {v['latency_ms']:.2f} ms / MPJPE {v['mpjpe_mm']:.2f} mm"
                                      for k, v in i8["candidates"].items()))
    print(f"fp32 ONNX vs torch: {report['parity']['fp32_onnx_vs_torch_rel']:.2e} relative; int8 ONNX vs fake-quant: "
          f"{report['parity']['int8_onnx_vs_fake_quant_mm']} mm (max)")
    print(f"bundle: {out} ({', '.join(sorted(p.name for p in out.iterdir()))})")


def _open_model(path: str, mano_dir):
    """(model, config) of a bundle (hashes verified) or a plain checkpoint folder."""
    from compress.bundle import is_bundle, open_bundle
    from hand_nas.checkpoint import load_checkpoint

    if is_bundle(path):
        model, config, _ = open_bundle(path, mano_dir)
        return model, config
    return load_checkpoint(path, mano_dir)


def cmd_predict(args) -> None:
    from hand_nas.hand.mano import HandModel
    from hand_nas.predict import load_image, predict_image, write_prediction

    model, config = _open_model(args.checkpoint, args.mano)
    size = args.size or config.get("input_size") or config.get("train", {}).get("resolution", 256)
    image = load_image(args.image, size)
    pred = predict_image(model, image)
    out = Path(args.out) if args.out else Path(args.image).with_suffix("").with_name(Path(args.image).stem + "_hands")
    for p in write_prediction(pred, image, HandModel(args.mano).faces, out):
        print(f"wrote {p}")


def cmd_evaluate(args) -> None:
    from hand_nas.config import TrainCfg
    from hand_nas.train import evaluate, held_out_loader

    model, config = _open_model(args.checkpoint, args.mano)
    data = args.data or config.get("data")
    if not data or not Path(data).is_dir():
        raise HandNasError(f"{args.checkpoint}/config.json: field 'data': sample folder {data!r} not found (pass --data)")
    train_cfg = TrainCfg.from_dict(config["train"]) if "train" in config else TrainCfg()
    m = evaluate(model, held_out_loader(data, train_cfg))
    print(f"held-out ({m.count} samples at {train_cfg.resolution} px, IntagHand protocol): MPJPE {m.mpjpe_mm:.2f} mm, "
          f"MPVPE {m.mpvpe_mm:.2f} mm")
    recorded = config.get("metrics", {})
    if recorded.get("mpjpe_mm") is not None:
        print(f"recorded in {args.checkpoint}: MPJPE {recorded['mpjpe_mm']:.2f} mm, MPVPE {recorded['mpvpe_mm']:.2f} mm")


# --- reports ------------------------------------------------------------------------------------

def cmd_reproduce(args) -> None:
    from hand_nas.atomic import atomic_file
    from hand_nas.report import tables

    if args.table == "lwa-table1":
        best = None
        if args.study:
            from hand_nas.search.records import best_feasible, load_rows

            row = best_feasible(load_rows(args.study, args.storage))
            if row is None:
                raise HandNasError(f"study {args.study!r}: no feasible completed trial to add to the table")
            best = {"name": f"best searched ({args.study} #{row['number']})", "gmacs_total": row["gmacs"],
                    "gmacs_image": row["gmacs_image"], "gmacs_pose": row["gmacs_pose"]}
        rows, notes = tables.lwa_table1_rows(best), tables.LWA_TABLE1_NOTES
    else:
        from hand_nas.report import reproduce

        train_cfg, data = reproduce.resolve_proxy(args.proxy, args.data)
        print(f"proxy '{args.proxy}': {train_cfg.steps} steps, batch {train_cfg.batch}, {train_cfg.resolution} px, "
              f"data {data}")
        if args.table == "lagc-table2":
            rows = reproduce.lagc_table2_rows(train_cfg, data, args.mano)
            notes = reproduce.LAGC_TABLE2_NOTES + (f"Proxy '{args.proxy}' on {data}.",)
        else:
            rows = reproduce.ablation_rows(args.table, train_cfg, data, args.mano)
            notes = reproduce.ablation_notes(args.table, args.proxy, data)
    md = tables.to_markdown(rows, notes)
    print(md)
    if args.out:
        out = Path(args.out)
        for name, text in ((f"{args.table}.md", md), (f"{args.table}.csv", tables.to_csv(rows))):
            with atomic_file(out / name, "w") as fh:
                fh.write(text)
        print(f"wrote {out / (args.table + '.md')} and {out / (args.table + '.csv')}")


def cmd_report(args) -> None:
    from hand_nas.report.page import write_report
    from hand_nas.report.study_data import add_references, load_study_data

    sd = load_study_data(args.study, args.storage)
    if not sd.rows:
        raise HandNasError(f"study {args.study!r}: no trials yet")
    if args.references:
        add_references(sd, [n for n in args.references.split(",") if n], mano_dir=args.mano)
    for p in write_report(sd, args.out):
        print(f"wrote {p}")


def cmd_dashboard(args) -> None:
    from hand_nas.report.dashboard import serve

    serve(args.study, args.storage, args.host, args.port)


# --- the main job ------------------------------------------------------------------------------

def cmd_demo(args) -> None:
    """Synthesize data, search with a small budget, report, compress the winner, export, predict."""
    import time

    import numpy as np
    import optuna

    from compress.pipeline import CompressCfg, compress, format_report
    from compress.prune import PruneCfg
    from compress.quantize import QuantCfg
    from hand_nas.config import StudyCfg
    from hand_nas.data.synthetic import cached_synthetic
    from hand_nas.report.page import write_report
    from hand_nas.report.study_data import add_references, load_study_data
    from hand_nas.search.records import best_feasible, format_table, pareto_front
    from hand_nas.search.runner import run_search
    from hand_nas.search.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    out = Path(args.out)
    storage = f"sqlite:///{out / 'studies.db'}"
    space = load_space(args.space)
    stage = lambda i, text: print(f"\n== [{i}/6] {text} ({time.perf_counter() - t0:.0f} s)", flush=True)  # noqa: E731

    stage(1, f"synthetic two-hand data ({space.synthetic_n} images, procedural MANO-format hand)")
    data = cached_synthetic(space.synthetic_n)
    print(f"data: {data}")

    stage(2, f"search: {args.trials} trials of {args.space} on {args.workers} Ray workers, budget "
             f"{space.budget_gmacs} GMACs ({FLOPS_NOTE})")
    summary = run_search(StudyCfg(space=args.space, study=args.study, storage=storage, trials=args.trials,
                                  workers=args.workers, out=str(out / "trials"), data=str(data), seed=args.seed),
                         progress=True, space=space)
    print(format_table(pareto_front(summary.rows)))
    best = best_feasible(summary.rows)
    if best is None:
        raise HandNasError(f"study {args.study!r}: no feasible completed trial to compress")
    print(f"winner: trial {best['number']}, MPJPE {best['mpjpe_mm']:.2f} mm at {best['gmacs']:.4f} GMACs")

    stage(3, "report: Pareto front, history, importances, references trained under the same proxy")
    sd = load_study_data(args.study, storage)
    add_references(sd, ("lwa_hand", "lagc_hand"), mano_dir=args.mano)
    report_files = write_report(sd, out / "report")

    target = round(args.prune_to * best["gmacs"], 4)
    stage(4, f"compress the winner: prune to {target} GMACs, fine-tune, int8 QAT, export")
    bundle = out / "bundle"
    rep = compress(best["checkpoint"], bundle, CompressCfg(
        prune=PruneCfg(target_gmacs=target), quant=QuantCfg(qat_steps=args.qat_steps),
        finetune_steps=args.finetune_steps, repeats=20),
        provenance={"study": args.study, "trial": best["number"], "storage": storage}, mano_dir=args.mano,
        overwrite=True)
    print(format_report(rep))

    stage(5, "predict with the bundle on a held-out synthetic image")
    from PIL import Image

    from hand_nas.data.samples import open_samples

    img = out / "predict" / "input.png"
    img.parent.mkdir(parents=True, exist_ok=True)
    s = open_samples(data)
    Image.fromarray(np.asarray(s["images"][len(s) - 1])).save(img)
    cmd_predict(argparse.Namespace(image=str(img), checkpoint=str(bundle), out=str(out / "predict"), size=None,
                                   mano=args.mano))

    stage(6, "done")
    print(f"artifacts ({time.perf_counter() - t0:.0f} s in all):")
    print(f"  data            {data}")
    print(f"  study           {storage} (study {args.study!r}); live view: hand-nas dashboard --study {args.study} "
          f"--storage {storage}")
    print(f"  trial weights   {out / 'trials' / args.study}")
    for p in report_files:
        print(f"  report          {p}")
    for p in sorted(bundle.iterdir()):
        print(f"  bundle          {p}")
    for p in sorted((out / "predict").iterdir()):
        print(f"  prediction      {p}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hand-nas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    hand = sub.add_parser("hand", help="hand model: generate, inspect, mesh hierarchy").add_subparsers(
        dest="hand_command", required=True)
    p = hand.add_parser("generate", help="write the procedural MANO_RIGHT.pkl / MANO_LEFT.pkl pair")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_hand_generate)
    p = hand.add_parser("info", help="load a MANO folder through smplx and print its facts")
    _add_mano(p)
    p.set_defaults(func=cmd_hand_info)
    p = hand.add_parser("show", help="render six named poses of both hands to a PNG")
    p.add_argument("--out", required=True)
    _add_mano(p)
    p.set_defaults(func=cmd_hand_show)
    p = hand.add_parser("build-graph", help="(re)build the mesh hierarchy of a hand topology")
    _add_mano(p)
    p.add_argument("--out", help="file to write (default: the hand-nas cache)")
    p.set_defaults(func=cmd_hand_build_graph)
    p = hand.add_parser("convert-mano", help="rewrite official (chumpy) MANO pickles as plain numpy pickles")
    p.add_argument("src")
    p.add_argument("dst")
    p.set_defaults(func=cmd_hand_convert)

    data = sub.add_parser("data", help="data sets: synthesize, prepare InterHand2.6M, show").add_subparsers(
        dest="data_command", required=True)
    p = data.add_parser("synth", help="render the synthetic two-hand set")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    _add_mano(p)
    p.set_defaults(func=cmd_data_synth)
    p = data.add_parser("prepare", help="preprocess an InterHand2.6M split into a sample cache")
    p.add_argument("--root", required=True, help="InterHand2.6M root (holds images/ and annotations/)")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--subset", default="HM", choices=["H", "M", "HM"])
    p.add_argument("--hands", default="interacting", choices=["interacting", "single", "all"])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--limit", type=int, help="keep only the first N selected images")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    _add_mano(p)
    p.set_defaults(func=cmd_data_prepare)
    p = data.add_parser("show", help="contact sheet with meshes and joints drawn over samples")
    p.add_argument("folder")
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=16)
    p.add_argument("--cols", type=int, default=4)
    p.set_defaults(func=cmd_data_show)
    p = sub.add_parser("cost", help=f"GMACs (image/pose split), parameters, optional CPU latency; {FLOPS_NOTE}")
    p.add_argument("model", help="a preset name or a YAML/JSON model config")
    p.add_argument("--size", type=int, default=256, help="input side (default: the deployment 256)")
    p.add_argument("--latency", action="store_true", help="also time torch eager and onnxruntime fp32")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", action="store_true")
    _add_mano(p)
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("train", help="proxy-train a model and report held-out MPJPE/MPVPE")
    p.add_argument("model", help="a preset name or a YAML/JSON model config")
    p.add_argument("--data", default="synthetic", help="'synthetic' (the cached embedded set) or a sample directory")
    p.add_argument("--synthetic-n", type=int, default=2000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--out", help="checkpoint directory")
    p.add_argument("--quiet", action="store_true")
    _add_mano(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("search", help="budget-constrained architecture search (optuna or nni, on Ray)")
    p.add_argument("--space", required=True, help="search space YAML (search_spaces/*.yaml)")
    p.add_argument("--budget", type=float, help="max GMACs at 256x256 (default: the space's)")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should hold")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--backend", default="optuna", choices=["optuna", "nni"])
    p.add_argument("--sampler", choices=["tpe", "nsga2", "random", "evolution"],
                   help="optuna: tpe (default), nsga2, random; nni: evolution (default), random")
    p.add_argument("--pruner", default="median", choices=["median", "none"])
    p.add_argument("--study", help="study name (default: the space's name); the same name resumes")
    p.add_argument("--storage", default="sqlite:///runs/studies.db", help="optuna storage URL")
    p.add_argument("--data", default="synthetic")
    p.add_argument("--out", default="runs", help="checkpoints go to OUT/STUDY/trial_NNNN")
    p.add_argument("--ray-address", help="join a running Ray cluster")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--local", action="store_true", help="run trials in this process instead of on Ray")
    p.add_argument("--latency", action="store_true", help="also time every trained trial (torch, 1 thread)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_search)

    trial = sub.add_parser("trial", help="inspect stored trials").add_subparsers(dest="trial_command", required=True)
    p = trial.add_parser("show", help="a trial's record; rebuilds its model from the storage alone")
    p.add_argument("study")
    p.add_argument("number", type=int)
    p.add_argument("--storage", default="sqlite:///runs/studies.db")
    p.add_argument("--build", action="store_true", help="also build the model and count it with fvcore")
    p.add_argument("--config-out", help="write the trial's model config as YAML")
    p.set_defaults(func=cmd_trial_show)
    p = sub.add_parser("compress", help="prune, fine-tune, quantize (int8) and export a verified bundle")
    p.add_argument("--study", help="take the checkpoint of a stored trial of this study")
    p.add_argument("--trial", default="best", help="'best' (best feasible) or a trial number")
    p.add_argument("--storage", default="sqlite:///runs/studies.db")
    p.add_argument("--checkpoint", help="or: a checkpoint folder (model.safetensors + config.json)")
    p.add_argument("--target-gmacs", type=float, default=0.25, help="GMACs after pruning (fvcore convention, 256 px)")
    p.add_argument("--ratio", type=float, help="prune every layer by this channel ratio instead of a GMACs target")
    p.add_argument("--prune-heads", action="store_true", help="also remove whole attention heads")
    p.add_argument("--bits", type=int, default=8, help="weight bit width (activations stay 8-bit)")
    p.add_argument("--finetune-steps", type=int, default=200)
    p.add_argument("--qat-steps", type=int, default=50)
    p.add_argument("--int8", choices=["auto", "brevitas", "onnxruntime", "onnxruntime-conv"], default="auto",
                   help="int8 file: the fastest candidate within the MPJPE tolerance (auto) or a named one")
    p.add_argument("--size", type=int, default=256, help="input size of the ONNX files and latencies")
    p.add_argument("--threads", type=int, default=1, help="threads for every latency")
    p.add_argument("--data", help="sample folder (default: the one the checkpoint was trained on)")
    p.add_argument("--out", required=True, help="bundle folder")
    p.add_argument("--overwrite", action="store_true")
    _add_mano(p)
    p.set_defaults(func=cmd_compress)
    p = sub.add_parser("predict", help="both hands' meshes (OBJ) and an overlay PNG from one image")
    p.add_argument("image")
    p.add_argument("--checkpoint", required=True, help="a bundle or a checkpoint folder")
    p.add_argument("--out", help="output folder (default: IMAGE_hands next to the image)")
    p.add_argument("--size", type=int, help="network input size (default: the checkpoint's training resolution)")
    _add_mano(p)
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("evaluate", help="held-out MPJPE/MPVPE of a bundle or checkpoint (bundle hashes verified)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", help="sample folder (default: the recorded one)")
    _add_mano(p)
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("report", help="a study's self-contained HTML report and PNG figures")
    p.add_argument("--study", required=True)
    p.add_argument("--storage", default="sqlite:///runs/studies.db")
    p.add_argument("--out", required=True, help="report folder (index.html, *.png, trials.json)")
    p.add_argument("--references", default="lwa_hand,lagc_hand",
                   help="presets trained under the study's proxy as reference points ('' for none); kept in the study")
    _add_mano(p)
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("dashboard", help="optuna-dashboard on a stored study (optuna- or nni-backed)")
    p.add_argument("--study", required=True)
    p.add_argument("--storage", default="sqlite:///runs/studies.db")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: this machine only)")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_dashboard)
    p = sub.add_parser("demo", help="the main job end to end on the embedded synthetic data (minutes on 2 cores)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--space", default=str(Path(__file__).resolve().parent.parent / "search_spaces" / "tiny.yaml"))
    p.add_argument("--study", default="demo")
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--prune-to", type=float, default=0.75, help="prune the winner to this share of its GMACs")
    p.add_argument("--finetune-steps", type=int, default=60)
    p.add_argument("--qat-steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    _add_mano(p)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("reproduce", help="reproduce a paper table (Markdown + CSV)")
    p.add_argument("table", choices=["lwa-table1", "lagc-table2", "tokens", "bridges", "attention"])
    p.add_argument("--proxy", default="quick", help="named proxy budget for tables that train: quick, standard, full")
    p.add_argument("--data", default="synthetic", help="'synthetic' (the proxy's cached set) or a sample folder")
    p.add_argument("--study", help="add the best feasible trial of this study")
    p.add_argument("--storage", default="sqlite:///runs/studies.db")
    p.add_argument("--out", help="folder for TABLE.md and TABLE.csv")
    _add_mano(p)
    p.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except HandNasError as exc:
        print(f"hand-nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hand-nas: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
