"""``hand-nas``: the command line. Each subcommand parses arguments and calls one library function.

Workflows live in the libraries (``hand_nas.search.runner``, ``hand_nas.report``, ``compress.workflows``);
this module only parses, delegates and prints. It is the one ``hand_nas`` module that imports
``compress`` (the command line dispatches to both packages); the libraries never do.

Errors a user can fix (bad paths, malformed files) are ``HandNasError``s and print as one line,
``hand-nas: error: <what and where>``, with exit status 2.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from hand_nas.errors import HandNasError

FLOPS_NOTE = "GMACs counted the fvcore way: one fused multiply-add = one flop"
STORAGE_HELP = "study storage: sqlite:///FILE (default), journal:///FILE or postgresql://USER@HOST/DB"


def _add_device(p) -> None:
    p.add_argument("--device", default="auto", help="where training runs: auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--precision", default="fp32", help="training precision: fp32, bf16 (autocast on CPU or CUDA) or "
                                                       "fp16 (CUDA, GradScaler)")


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
    from hand_nas.atomic import check_output
    from hand_nas.data.synthetic import synthesize
    from hand_nas.models.validate import check

    check("command line", numbers={"--n": (args.n, 1, 10_000_000), "--workers": (args.workers, 1, 256)})
    _check_side("--size", args.size)
    check_output(args.out, overwrite=args.overwrite)  # a foreign folder, a path under a file: before rendering
    r = synthesize(args.out, args.n, seed=args.seed, mano_dir=args.mano, size=args.size, workers=args.workers,
                   overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {args.n} samples to {args.out} in {r['seconds']:.1f} s: {r['images_per_s']:.1f} images/s "
          f"with {r['workers']} worker(s), {r['images_per_s_per_worker']:.1f} images/s per core")


def cmd_data_prepare(args) -> None:
    from hand_nas.atomic import check_output
    from hand_nas.data.interhand import prepare

    check_output(args.out, inputs=[args.root], overwrite=True)  # never inside (or around) the release it reads
    try:
        r = prepare(args.root, args.out, split=args.split, subset=args.subset, hands=args.hands, mano_dir=args.mano,
                    size=args.size, limit=args.limit, overwrite=args.overwrite, progress=not args.quiet,
                    workers=args.workers, resume=args.resume, chunk=args.chunk)
    except KeyboardInterrupt:
        from hand_nas.data.resumable import partial_dir

        print(f"interrupted; the work done so far is kept in {partial_dir(args.out)}: run the same command again "
              f"to resume", file=sys.stderr)
        raise SystemExit(130) from None
    print(f"selected {r['selected']} images, wrote {r['written']} samples to {args.out} "
          f"({r['dropped_dark']} dropped as too dark){' after resuming' if r['resumed'] else ''}; "
          f"{r['images_per_s']:.1f} images/s with {r['workers']} worker(s), "
          f"{r['images_per_s'] / r['workers']:.1f} images/s per worker")


def cmd_data_show(args) -> None:
    from hand_nas.data.sheet import contact_sheet

    print(f"wrote {contact_sheet(args.folder, args.out, count=args.count, cols=args.cols)}")


# --- models -------------------------------------------------------------------------------------

def cmd_cost(args) -> None:
    from hand_nas.cost.flops import model_cost
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model
    from hand_nas.models.validate import check

    cfg = resolve_model(args.model)
    check(args.model, cfg, sizes={"--size": args.size},
          numbers={"--threads": (args.threads, 1, 256), "--repeats": (args.repeats, 1, 100_000)})
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
    from hand_nas.search.runner import data_dir

    return data_dir(spec, n, progress=not quiet)


def cmd_train(args) -> None:
    from hand_nas.atomic import check_output
    from hand_nas.config import TrainCfg
    from hand_nas.cost.flops import model_cost
    from hand_nas.models import build_model
    from hand_nas.models.presets import resolve_model
    from hand_nas.models.validate import check
    from hand_nas.train import train

    cfg = resolve_model(args.model)
    tcfg = TrainCfg(resolution=args.resolution, steps=args.steps, batch=args.batch, lr=args.lr,
                    eval_every=args.eval_every, seed=args.seed, workers=args.workers, losses=args.losses,
                    ema=args.ema)
    check(args.model, cfg, train=tcfg, flags=True, numbers={"--synthetic-n": (args.synthetic_n, 8, 1_000_000)})
    from hand_nas.device import resolve_device

    from hand_nas.device import resolve_precision

    # a wrong --device or --precision is an error before any data is made
    resolve_precision(args.precision, resolve_device(args.device))
    if args.out:  # a foreign folder, or one inside the data, is refused now, not after training
        check_output(args.out, inputs=[args.data] if args.data != "synthetic" else [], overwrite=True)
    data = resolve_data(args.data, args.synthetic_n, args.quiet)
    cost = model_cost(build_model(cfg, args.mano))
    r = train(cfg, tcfg, data, checkpoint_dir=args.out, mano_dir=args.mano, progress=not args.quiet,
              device=args.device, precision=args.precision)
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


def cmd_retrain(args) -> None:
    from hand_nas.data.resumable import partial_dir
    from hand_nas.retrain import plan_retrain, retrain
    from hand_nas.search.gate import cost_of

    plan = plan_retrain(args.study, args.trial, args.recipe, args.out, storage=args.storage, data=args.data,
                        seed=args.seed, save_every=args.save_every, device=args.device, precision=args.precision,
                        overwrite=args.overwrite)
    t = plan.train
    image, pose = cost_of(plan.model)
    print(f"retraining trial {plan.trial} of study {args.study!r} ({plan.model.name}, {image + pose:.4f} GMACs at "
          f"256x256) from scratch under recipe {plan.recipe!r}: {t.steps} steps, batch {t.batch}, "
          f"{t.resolution}x{t.resolution}, lr {t.lr:g}, seed {t.seed}, {plan.precision}; data {plan.data}", flush=True)
    print(f"snapshot every {plan.save_every} steps in {partial_dir(plan.out)} (after a kill, the same command "
          "resumes)", flush=True)
    try:
        r, record = retrain(plan, device=args.device, mano_dir=args.mano, overwrite=args.overwrite,
                            resume=args.resume, progress=not args.quiet, log=lambda text: print(text, flush=True))
    except KeyboardInterrupt:
        print(f"interrupted; the last snapshot is kept in {partial_dir(plan.out)}: run the same command again to "
              "resume", file=sys.stderr)
        raise SystemExit(130) from None
    print("step    MPJPE   MPVPE  (held-out, mm, IntagHand protocol)")
    for h in r.history:
        print(f"{h['step']:>6}  {h['mpjpe_mm']:6.2f}  {h['mpvpe_mm']:6.2f}")
    b, m, proxy = r.baseline, r.metrics, plan.proxy_metrics or {}
    print(f"retrained {m.mpjpe_mm:.2f} mm MPJPE (MPVPE {m.mpvpe_mm:.2f}); baseline (mean shape) {b.mpjpe_mm:.2f} mm "
          f"(MPVPE {b.mpvpe_mm:.2f}); the trial's proxy scored "
          + (f"{proxy['mpjpe_mm']:.2f} mm" if proxy.get("mpjpe_mm") is not None else "nothing") + f"; {r.seconds:.0f} s")
    print(f"checkpoint: {plan.out}")
    print(f"recorded in study {args.study!r}: `hand-nas compress --study {args.study} --trial {plan.trial}` takes it")


# --- search -------------------------------------------------------------------------------------

def cmd_search(args) -> None:
    from hand_nas.config import StudyCfg
    from hand_nas.search.records import best_trained, format_table, pareto_front
    from hand_nas.search.runner import run_search
    from hand_nas.search.space import load_space, with_budget

    from hand_nas.models.validate import check

    from hand_nas.device import check_options

    from hand_nas.search.storage import check_heartbeat

    check("command line", numbers={"--noise-factor": (args.noise_factor, 0.0, 100.0),
                                   "--trials": (args.trials, 1, 1_000_000), "--workers": (args.workers, 1, 100_000),
                                   "--eval-images": (args.eval_images, 0, 10 ** 7),
                                   "--cpus-per-trial": (args.cpus_per_trial, 0.0, 1024.0)})
    if not (math.isfinite(args.gpus_per_trial) and 0 <= args.gpus_per_trial <= 64):
        raise HandNasError(f"command line: --gpus-per-trial: {args.gpus_per_trial!r}, expected a finite number in "
                           "[0, 64]")
    check_heartbeat(args.heartbeat_s)
    if not args.local and not args.ray_address:
        _check_local_workers(args.workers, args.cpus_per_trial, args.gpus_per_trial)
    check_options(args.device, args.precision, remote_gpus=args.gpus_per_trial > 0)
    space = with_budget(load_space(args.space), args.budget)
    cfg = StudyCfg(space=args.space, study=args.study or space.name, storage=args.storage, backend=args.backend,
                   sampler=args.sampler or "", pruner=args.pruner, noise=args.noise,
                   noise_factor=args.noise_factor, trials=args.trials, workers=args.workers,
                   executor="local" if args.local else "ray", ray_address=args.ray_address or "",
                   cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, data=args.data,
                   out=args.out, storage_path=args.storage_path or "", seed=args.seed, latency=args.latency,
                   heartbeat_s=args.heartbeat_s, device=args.device, precision=args.precision,
                   latency_predictor=args.latency_predictor, evaluator=args.evaluator, supernet=args.supernet,
                   eval_images=args.eval_images)
    r = run_search(cfg, progress=not args.quiet, space=space)
    print(f"study {r.study} ({r.storage}): {r.finished} finished trials, {r.ran} run now in {r.seconds:.0f} s"
          + (f", {r.recovered} interrupted trial(s) marked failed" if r.recovered else ""))
    print(f"budget {space.budget_gmacs} GMACs at 256x256 ({FLOPS_NOTE}); MPJPE/MPVPE held-out, mm, IntagHand protocol")
    if space.multi_objective:
        print(f"Pareto front over ({', '.join(space.objectives)}), feasible trials:")
        print(format_table(pareto_front(r.records, space.objectives)))
    else:
        print("best trials:")
        print(format_table(sorted((x for x in r.records if x.state in ("complete", "pruned") and x.mpjpe_mm is not None),
                                  key=lambda x: x.mpjpe_mm)[:10]))
    best = best_trained(r.records)
    if best:
        print(f"best feasible: trial {best.number}, MPJPE {best.mpjpe_mm:.2f} mm at {best.gmacs:.4f} GMACs; "
              f"checkpoint {best.checkpoint}")
    else:
        print("no feasible completed trial yet")


WORKER_GIB = 0.5  # what one trial process takes (torch, the hand model, a proxy batch): measured ~0.3 GiB


def _check_local_workers(workers: int, cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Refuse more trials at once than this machine holds: its CPUs (at --cpus-per-trial each), its
    available memory (at ~WORKER_GIB per trial process) and, with --gpus-per-trial, its GPUs."""
    import psutil

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    free_gib = psutil.virtual_memory().available / 2**30
    limits = {f"{cpus} CPU(s) at --cpus-per-trial {cpus_per_trial:g}": int(cpus / cpus_per_trial + 1e-9),
              f"{free_gib:.1f} GiB available at ~{WORKER_GIB} GiB per trial": int(free_gib / WORKER_GIB)}
    if gpus_per_trial > 0:
        import torch

        gpus = torch.cuda.device_count()
        limits[f"{gpus} GPU(s) at --gpus-per-trial {gpus_per_trial:g}"] = int(gpus / gpus_per_trial + 1e-9)
    why, most = min(limits.items(), key=lambda kv: kv[1])
    if most < 1:
        raise HandNasError(f"--gpus-per-trial {gpus_per_trial:g}: this machine has {why.split(' at ')[0]}; a local "
                           "Ray could never start a trial (join a cluster with GPUs with --ray-address)"
                           if "GPU" in why else f"this machine cannot hold one trial ({why})")
    if workers > most:
        raise HandNasError(f"--workers {workers}: this machine holds at most {most} trial(s) at once ({why}); "
                           f"pass --workers {most} or fewer (or --ray-address for a cluster)")


def _check_side(option: str, size: int) -> None:
    """An image side: a multiple of 32 in 32..1024 (what the networks and the data sets use)."""
    from hand_nas.models.validate import check

    check("command line", numbers={option: (size, 32, 1024)})
    if size % 32:
        raise HandNasError(f"command line: {option}: {size}, expected a multiple of 32")


def cmd_trial_show(args) -> None:
    from hand_nas.config import ModelCfg
    from hand_nas.search.gate import cost_of
    from hand_nas.search.storage import read_records, select_trial

    rec = select_trial(read_records(args.study, args.storage), args.number, args.study)
    row = rec.row()
    print(json.dumps({k: row[k] for k in ("number", "state", "backend", "mpjpe_mm", "mpvpe_mm", "gmacs", "gmacs_image",
                                          "gmacs_pose", "feasible", "checkpoint", "node", "error")}, indent=2))
    print("params:", json.dumps(rec.params))
    print("proxy:", json.dumps(rec.proxy), "seed:", rec.seed, "data:", rec.data)
    from hand_nas.search.storage import trial_retrains

    for r in trial_retrains(args.study, args.storage, rec.number):
        print(f"retrained under recipe {r['recipe']!r} (seed {r['seed']}, {r['steps']} steps): held-out MPJPE "
              f"{r['metrics']['mpjpe_mm']:.2f} mm; checkpoint {r['checkpoint']}")
    if rec.config is None:
        print("no model config stored (the trial failed before its configuration was built)")
        return
    cfg = ModelCfg.from_dict(rec.config)
    image, pose = cost_of(cfg)
    print(f"rebuilt from storage: {cfg.name}; {image + pose:.4f} GMACs = {image:.4f} image + {pose:.4f} pose "
          f"(stored {rec.gmacs}; {FLOPS_NOTE})")
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


def cmd_proxy_check(args) -> None:
    from hand_nas.atomic import atomic_file
    from hand_nas.report.proxy_check import ProxyCheckCfg, format_check, run_check, short_training
    from hand_nas.search.runner import data_dir
    from hand_nas.search.space import load_space

    if args.evaluator == "supernet":
        return _supernet_check(args)
    if args.cache:  # read by every worker process too
        os.environ["HAND_NAS_PROXY_RUNS"] = str(Path(args.cache).resolve())
    space = load_space(args.space)
    proxy_set = tuple(_key_value(kv, "--proxy-set") for kv in args.proxy_set)
    short_training(space.proxy, proxy_set)  # refused before any data is generated
    data = str(data_dir(args.data, space.synthetic_n, progress=not args.quiet))
    result = run_check(space, ProxyCheckCfg(n=args.n, factor=args.factor, seeds=args.seeds, sample_seed=args.sample_seed,
                                            proxy_set=proxy_set),
                       data, max_minutes=args.max_minutes, mano_dir=args.mano, progress=not args.quiet,
                       workers=args.workers)
    print(format_check(result))
    out = Path(args.out or f"runs/proxy_check/{space.name}.json")
    with atomic_file(out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {out}")
    if args.study:
        from hand_nas.search.storage import set_study_attr

        set_study_attr(args.study, args.storage, "proxy_check", {k: result[k] for k in ("summary", "warning", "proxy",
                                                                                         "long", "complete", "rules")})
        print(f"stored in study {args.study!r} ({args.storage}) for its report")


def _supernet_check(args) -> None:
    from hand_nas.atomic import atomic_file
    from hand_nas.config import TrainCfg
    from hand_nas.report.supernet_check import format_supernet_check, reference_runs, supernet_check
    from hand_nas.supernet import SubnetScorer, load_supernet

    if not args.supernet or not args.reference:
        raise HandNasError("--evaluator supernet needs --supernet FOLDER and --reference FILE [FILE ...]")
    net, record = load_supernet(args.supernet, args.mano)
    scorer = SubnetScorer.on(record["data"], TrainCfg.from_dict(record["train"]), record.get("calib_batches", 8),
                             args.images or None)
    result = supernet_check(net, scorer, reference_runs(args.reference), log=None if args.quiet else print)
    result.update(supernet=record["folder"], sha256=record["sha256"], reference=[str(p) for p in args.reference],
                  data=record["data"], images=args.images or None)
    trained = None
    for ref in args.reference:  # a proxy check among the references: its trained proxy's tau, for comparison
        with open(ref) as fh:
            data = json.load(fh)
        trained = (data.get("summary") or {}).get("kendall_tau", trained) if isinstance(data, dict) else trained
    print(format_supernet_check(result, trained))
    out = Path(args.out or f"runs/proxy_check/{net.space.name}_supernet.json")
    with atomic_file(out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {out}")


# --- compression and inference (the compress package: see compress/workflows.py) ------------------

def cmd_compress(args) -> None:
    from compress.pipeline import CompressCfg, compress, format_report
    from compress.prune import PruneCfg
    from compress.quantize import QuantCfg
    from compress.workflows import trial_checkpoint
    from hand_nas.models.validate import check

    if bool(args.study) == bool(args.checkpoint):
        raise HandNasError("give either --study NAME [--trial best|N] or --checkpoint DIR")
    check("command line", numbers={
        "--target-gmacs": (args.target_gmacs, 0.0, 100.0), "--ratio": (args.ratio, 0.0, 0.95),
        "--bits": (args.bits, 2, 8), "--finetune-steps": (args.finetune_steps, 0, 10_000_000),
        "--qat-steps": (args.qat_steps, 0, 10_000_000), "--size": (args.size, 32, 4096), "--threads": (args.threads, 1, 256)})
    from hand_nas.device import check_options

    check_options(args.device, args.precision)
    checkpoint, prov = trial_checkpoint(args.study, args.trial, args.storage) if args.study else (args.checkpoint, {})
    if args.study:
        rt = prov["retrain"]
        which = (f"the retrain under recipe {rt['recipe']!r} (seed {rt['seed']}, {rt['steps']} steps, held-out MPJPE "
                 f"{rt['metrics']['mpjpe_mm']:.2f} mm)" if rt else "the search's proxy checkpoint (no retrain recorded)")
        print(f"compressing trial {prov['trial']} of study {args.study!r}: {which}: {checkpoint}")
    cfg = CompressCfg(prune=PruneCfg(target_gmacs=args.target_gmacs, ratio=args.ratio, prune_heads=args.prune_heads),
                      quant=QuantCfg(weight_bits=args.bits, qat_steps=args.qat_steps),
                      finetune_steps=args.finetune_steps, size=args.size, threads=args.threads, int8=args.int8,
                      device=args.device, precision=args.precision)
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
    print(f"manifest.json sha256 {report['manifest_sha256']}: compare it out of band before trusting a copy "
          "(a manifest is a checksum, not a signature)")


def cmd_predict(args) -> None:
    from compress.workflows import predict_files

    for p in predict_files(args.image, args.checkpoint, args.out, args.size, args.mano):
        print(f"wrote {p}")


def _key_value(text: str, option: str) -> tuple[str, object]:
    """``FIELD=VALUE`` -> (field, value), the value read as a YAML scalar (64 -> int, 2e-3 -> float, false -> bool)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise HandNasError(f"{option} {text!r}: expected FIELD=VALUE, e.g. steps=600")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise HandNasError(f"{option} {text!r}: the value is not a YAML scalar") from None


def _int_list(option: str, text: str, lo: int, hi: int) -> tuple[int, ...]:
    """'1,2' -> (1, 2); anything else is a one-line error naming the option."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise HandNasError(f"{option} {text!r}: expected comma-separated integers, e.g. 1,2") from None
    if not values or len(values) > 16 or not all(lo <= v <= hi for v in values):
        raise HandNasError(f"{option} {text!r}: expected 1..16 integers in {lo}..{hi}")
    return values


def cmd_latency(args) -> None:
    from hand_nas.cost.bench import cpu_info
    from hand_nas.cost.predictor import LatencyPredictor, calibrate, default_path, validate
    from hand_nas.models.validate import check
    from hand_nas.search.space import load_space

    check("command line", numbers={"--n": (args.n, 3, 1000)})
    space = load_space(args.space)
    info = cpu_info()
    print(f"CPU {info['model']}, flags {', '.join(info['flags']) or 'none of ' + 'avx2/avx512/vnni'}; ORT fp32, 1 thread, "
          f"batch 1, 256x256")
    path = Path(args.predictor) if args.predictor else default_path()
    if args.latency_command == "calibrate":
        pred, rows = calibrate(space, args.n, args.seed)
        pred.save(path, rows)
        print(f"fitted on {pred.n} architectures: {pred.fit_share_within_10:.0%} within +-10% of measured; wrote {path}")
        return
    pred = LatencyPredictor.load(path)
    res = validate(pred, space, args.n, args.seed)
    for r in res["rows"]:
        print(f"  {r['config']:<22} {r['gmacs']:.4f} GMACs  measured {r['measured_ms']:7.2f} ms  predicted "
              f"{r['predicted_ms']:7.2f} ms  ({(r['predicted_ms'] / r['measured_ms'] - 1) * 100:+.1f}%)")
    print(f"{res['n']} architectures of {space.source}: {res['share_within_10']:.0%} predicted within +-10%, median "
          f"error {res['median_rel_error']:.1%}, worst {res['worst_rel_error']:.1%}; Kendall tau of GMACs vs measured "
          f"latency {res['gmacs_vs_latency_tau']:.2f}")
    if args.json:
        from hand_nas.atomic import atomic_file

        with atomic_file(Path(args.json), "w") as fh:
            json.dump(res, fh, indent=1)
        print(f"wrote {args.json}")


def cmd_bench(args) -> None:
    import json

    from compress.workflows import bench_target
    from hand_nas.cost.bench import format_bench
    from hand_nas.models.validate import check

    threads = _int_list("--threads", args.threads, 1, 256)
    batches = _int_list("--batch", args.batch, 1, 1024)
    check("command line", numbers={"--size": (args.size, 32, 4096), "--rounds": (args.rounds, 1, 10_000)})
    if args.size % 32:
        raise HandNasError(f"--size {args.size}: must be a multiple of 32")
    r = bench_target(args.target, threads, batches, args.size, args.rounds, progress=not args.json)
    print(json.dumps(r.to_dict(), indent=1) if args.json else format_bench(r))


def cmd_evaluate(args) -> None:
    from compress.workflows import evaluate_checkpoint

    m, train_cfg, recorded = evaluate_checkpoint(args.checkpoint, args.data, args.mano, device=args.device)
    print(f"held-out ({m.count} samples at {train_cfg.resolution} px, IntagHand protocol): MPJPE {m.mpjpe_mm:.2f} mm, "
          f"MPVPE {m.mpvpe_mm:.2f} mm")
    if recorded.get("mpjpe_mm") is not None:
        print(f"recorded in {args.checkpoint}: MPJPE {recorded['mpjpe_mm']:.2f} mm, MPVPE {recorded['mpvpe_mm']:.2f} mm")


# --- reports ------------------------------------------------------------------------------------

def cmd_reproduce(args) -> None:
    from hand_nas.report.reproduce import reproduce_table
    from hand_nas.report.tables import to_markdown, write_table

    rows, notes = reproduce_table(args.table, args.proxy, args.data, args.study, args.storage, args.mano)
    print(to_markdown(rows, notes))
    if args.out:
        md, csv = write_table(args.out, args.table, rows, notes)
        print(f"wrote {md} and {csv}")


def cmd_report(args) -> None:
    from hand_nas.report.page import write_report
    from hand_nas.report.study_data import add_references, load_study_data

    sd = load_study_data(args.study, args.storage)
    if not sd.records:
        raise HandNasError(f"study {args.study!r}: no trials yet")
    if args.references:
        add_references(sd, [n for n in args.references.split(",") if n], mano_dir=args.mano)
    for p in write_report(sd, args.out):
        print(f"wrote {p}")


def cmd_dashboard(args) -> None:
    from hand_nas.report.dashboard import serve

    serve(args.study, args.storage, args.host, args.port, allow_remote=args.allow_remote,
          warn=lambda text: print(f"hand-nas: {text}", file=sys.stderr, flush=True))


# --- the main job ------------------------------------------------------------------------------

def cmd_demo(args) -> None:
    from compress.workflows import DemoCfg, run_demo

    r = run_demo(DemoCfg(out=args.out, space=args.space, supernet=args.supernet, study=args.study, trials=args.trials,
                         workers=args.workers, eval_images=args.eval_images, prune_ratio=args.prune_ratio,
                         finetune_steps=args.finetune_steps, qat_steps=args.qat_steps, seed=args.seed, mano=args.mano),
                 log=lambda text: print(text, flush=True))
    print(f"artifacts ({r.seconds:.0f} s in all):")
    print(f"  data            {r.data}")
    print(f"  study           {r.storage} (study {args.study!r}); live view: hand-nas dashboard --study {args.study} "
          f"--storage {r.storage}")
    print(f"  trial weights   {r.trials}")
    for label, paths in (("report", r.report), ("bundle", r.bundle), ("prediction", r.prediction)):
        for p in paths:
            print(f"  {label:<15} {p}")


def build_parser() -> argparse.ArgumentParser:
    from compress.workflows import INT8_CHOICES, DemoCfg
    from hand_nas.config import DEFAULT_STORAGE, StudyCfg, TrainCfg
    from hand_nas.report.reproduce import TABLES
    from hand_nas.search.strategy import SAMPLERS

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
    p.add_argument("--workers", type=int, default=1, help="worker processes (the output is the same for any number)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue the partial build .<out>.partial left by an interrupted run (default: yes)")
    p.add_argument("--chunk", type=int, default=64, help="images per committed chunk (the work a kill can lose)")
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
    p.add_argument("--steps", type=int, default=TrainCfg.steps)
    p.add_argument("--resolution", type=int, default=TrainCfg.resolution)
    p.add_argument("--batch", type=int, default=TrainCfg.batch)
    p.add_argument("--lr", type=float, default=TrainCfg.lr)
    p.add_argument("--eval-every", type=int, default=TrainCfg.eval_every)
    p.add_argument("--seed", type=int, default=TrainCfg.seed)
    p.add_argument("--workers", type=int, default=TrainCfg.workers)
    p.add_argument("--losses", default=TrainCfg.losses, help="loss terms: intaghand (all), 3d or joints")
    p.add_argument("--ema", type=float, default=TrainCfg.ema,
                   help="evaluate and save a moving average of the weights with this decay per step (0: off)")
    p.add_argument("--out", help="checkpoint directory")
    _add_device(p)
    p.add_argument("--quiet", action="store_true")
    _add_mano(p)
    p.set_defaults(func=cmd_train)
    from hand_nas.retrain import RECIPES

    p = sub.add_parser("retrain", help="train a stored trial's architecture from scratch under a named recipe "
                                       "(resumable after a kill)")
    p.add_argument("--study", required=True)
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    p.add_argument("--trial", default="best", help="'best' (lowest proxy MPJPE, feasible) or a trial number")
    p.add_argument("--recipe", required=True, help="; ".join(f"{k}: {v.about}" for k, v in RECIPES.items()))
    p.add_argument("--out", required=True, help="checkpoint folder (written at the end; the run lives beside it "
                                                "in .OUT.partial until then)")
    p.add_argument("--data", help="sample folder, or 'synthetic' (the recipe's synthetic set); default: the trial's")
    p.add_argument("--seed", type=int, help="training seed (default: the recipe's)")
    p.add_argument("--save-every", type=int, help="steps between snapshots (default: the recipe's)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--precision", default="fp32", help="fp32, bf16 (autocast on CPU or CUDA) or fp16 (CUDA, GradScaler)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue the interrupted run in .OUT.partial (default: yes)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out that hand-nas wrote")
    p.add_argument("--quiet", action="store_true")
    _add_mano(p)
    p.set_defaults(func=cmd_retrain)
    p = sub.add_parser("search", help="budget-constrained architecture search (optuna or nni, on Ray)")
    p.add_argument("--space", required=True, help="a search space YAML, or a shipped space's name (tiny, lwa, lagc, joint)")
    p.add_argument("--budget", type=float, help="max GMACs at 256x256, finite and > 0 (default: the space's)")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should hold")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--backend", default="optuna", choices=sorted(SAMPLERS))
    p.add_argument("--sampler", help="; ".join(f"{b}: {', '.join(s)} (default {s[0]})" for b, s in SAMPLERS.items()))
    p.add_argument("--pruner", default="noise", choices=["noise", "median", "none"],
                   help="noise (default): multi-fidelity, a trial stops only when behind by more than --noise-factor x "
                        "the proxy's measured seed noise; median: optuna's median rule; none")
    p.add_argument("--noise", default="", help="the proxy's seed noise: a `hand-nas proxy check` JSON or a figure in mm "
                                              "(default OUT/proxy_check/SPACE.json when it exists)")
    p.add_argument("--noise-factor", type=float, default=StudyCfg.noise_factor, help="the margin in units of the noise")
    p.add_argument("--study", help="study name (default: the space's name); the same name resumes")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    p.add_argument("--data", default="synthetic")
    p.add_argument("--out", default="runs", help="checkpoints go to OUT/STUDY/trial_NNNN (stored as absolute paths)")
    p.add_argument("--storage-path", help="what trials read and write, for clusters: a folder every node mounts at "
                                          "the same path, or a pyarrow URI (s3://bucket/prefix); the data set is put "
                                          "under it once, checkpoints go to STORAGE_PATH/STUDY/trial_NNNN")
    p.add_argument("--heartbeat-s", type=float, default=StudyCfg.heartbeat_s,
                   help="seconds between heartbeats; a trial silent for 3 intervals is taken as killed")
    p.add_argument("--ray-address", help="join a running Ray cluster")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--local", action="store_true", help="run trials in this process instead of on Ray")
    p.add_argument("--latency", action="store_true", help="also time every trained trial (torch, 1 thread; spaces with "
                                                          "a latency objective or budget use the predictor instead)")
    p.add_argument("--latency-predictor", default="", help="`hand-nas latency calibrate` file (default: this CPU's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--evaluator", default="train", choices=["train", "supernet"],
                   help="how trials are scored: train (the space's proxy training) or supernet (weights inherited "
                        "from --supernet, BatchNorm recalibrated: seconds a trial)")
    p.add_argument("--supernet", default="", help="with --evaluator supernet: a `hand-nas supernet train`/`export` folder")
    p.add_argument("--eval-images", type=int, default=0,
                   help="with --evaluator supernet: held-out images scored per trial (0: the whole split)")
    p.add_argument("--quiet", action="store_true")
    _add_device(p)
    p.set_defaults(func=cmd_search)

    lat = sub.add_parser("latency", help="latency known before training: a per-CPU predictor of the deployment graph"
                         ).add_subparsers(dest="latency_command", required=True)
    for name, text, n, seed in (("calibrate", "measure sampled architectures of a space and fit this CPU's predictor", 40, 1),
                                ("validate", "measure fresh architectures: share predicted within +-10%, worst error", 50, 7)):
        p = lat.add_parser(name, help=text)
        p.add_argument("--space", required=True, help="a search space YAML or a shipped space's name")
        p.add_argument("--n", type=int, default=n, help="architectures (the base preset and evenly spread samples)")
        p.add_argument("--seed", type=int, default=seed, help="sample seed (validate: not calibrate's)")
        p.add_argument("--predictor", help="calibration file (default $HAND_NAS_HOME/latency/<CPU>.json)")
        if name == "validate":
            p.add_argument("--json", help="also write the rows and figures here")
        p.set_defaults(func=cmd_latency)
    proxy = sub.add_parser("proxy", help="proxy quality: does the search's cheap training rank like a long one?"
                           ).add_subparsers(dest="proxy_command", required=True)
    p = proxy.add_parser("check", help="Kendall tau / Spearman rho of the space's proxy vs a longer training, seed noise "
                                       "vs the spread between architectures (resumable: runs are cached)")
    p.add_argument("--space", required=True, help="a search space YAML or a shipped space's name")
    p.add_argument("--n", type=int, default=8, help="sampled architectures (the base preset is added)")
    p.add_argument("--factor", type=int, default=10, help="the long training is FACTOR x the proxy's steps")
    p.add_argument("--seeds", type=int, default=2, help="proxy trainings per architecture")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--proxy-set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a proxy variant: change this training field of the short runs only (repeatable, e.g. "
                        "--proxy-set resolution=64 --proxy-set steps=1000); the long runs stay FACTOR x the "
                        "space's proxy, so variants are ranked against the same reference")
    p.add_argument("--max-minutes", type=float, help="stop starting new runs after this many minutes (continue later)")
    p.add_argument("--workers", type=int, default=1, help="runs trained at once (processes, one thread each)")
    p.add_argument("--cache", help="folder of the per-run results (default $HAND_NAS_HOME/proxy_runs; keep it to "
                                   "continue elsewhere with the same data path)")
    p.add_argument("--data", default="synthetic")
    p.add_argument("--out", help="result JSON (default runs/proxy_check/SPACE.json)")
    p.add_argument("--study", help="also store the figures in this study, for its report")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    p.add_argument("--evaluator", default="train", choices=["train", "supernet"],
                   help="supernet: rank --reference's stand-alone runs by the supernet's inherited weights instead")
    p.add_argument("--supernet", help="with --evaluator supernet: the supernet folder")
    p.add_argument("--reference", nargs="+", default=[],
                   help="with --evaluator supernet: proxy-check JSONs and retrain-record JSONs of stand-alone runs")
    p.add_argument("--images", type=int, default=0, help="with --evaluator supernet: held-out images (0: all)")
    p.add_argument("--quiet", action="store_true")
    _add_mano(p)
    p.set_defaults(func=cmd_proxy_check)

    trial = sub.add_parser("trial", help="inspect stored trials").add_subparsers(dest="trial_command", required=True)
    p = trial.add_parser("show", help="a trial's record; rebuilds its model from the storage alone")
    p.add_argument("study")
    p.add_argument("number", type=int)
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    p.add_argument("--build", action="store_true", help="also build the model and count it with fvcore")
    p.add_argument("--config-out", help="write the trial's model config as YAML")
    p.set_defaults(func=cmd_trial_show)
    p = sub.add_parser("compress", help="prune, fine-tune, quantize (int8) and export a verified bundle")
    p.add_argument("--study", help="take the checkpoint of a stored trial of this study")
    p.add_argument("--trial", default="best", help="'best' (best feasible) or a trial number")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    p.add_argument("--checkpoint", help="or: a checkpoint folder (model.safetensors + config.json)")
    p.add_argument("--target-gmacs", type=float, default=0.25, help="GMACs after pruning (fvcore convention, 256 px)")
    p.add_argument("--ratio", type=float, help="prune every layer by this channel ratio instead of a GMACs target")
    p.add_argument("--prune-heads", action="store_true", help="also remove whole attention heads")
    p.add_argument("--bits", type=int, default=8, help="weight bit width (activations stay 8-bit)")
    p.add_argument("--finetune-steps", type=int, default=200)
    p.add_argument("--qat-steps", type=int, default=50)
    p.add_argument("--int8", choices=list(INT8_CHOICES), default="auto",
                   help="int8 file: the fastest candidate within the MPJPE tolerance (auto) or a named one")
    p.add_argument("--size", type=int, default=256, help="input size of the ONNX files and latencies")
    p.add_argument("--threads", type=int, default=1, help="threads for every latency")
    p.add_argument("--data", help="sample folder (default: the one the checkpoint was trained on)")
    p.add_argument("--out", required=True, help="bundle folder")
    p.add_argument("--overwrite", action="store_true")
    _add_device(p)
    _add_mano(p)
    p.set_defaults(func=cmd_compress)
    p = sub.add_parser("predict", help="both hands' meshes (OBJ) and an overlay PNG from one image")
    p.add_argument("image")
    p.add_argument("--checkpoint", required=True, help="a bundle or a checkpoint folder")
    p.add_argument("--out", help="output folder (default: IMAGE_hands next to the image)")
    p.add_argument("--size", type=int, help="network input size (default: the checkpoint's training resolution)")
    _add_mano(p)
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("bench", help="latency table of a bundle or checkpoint on this machine (torch, ORT fp32, int8)")
    p.add_argument("target", help="a bundle folder (verified; its ONNX graphs are timed) or a checkpoint folder")
    p.add_argument("--threads", default="1", help="comma-separated intra-op thread counts (default 1)")
    p.add_argument("--batch", default="1", help="comma-separated batch sizes (default 1)")
    p.add_argument("--size", type=int, default=256, help="input side (default the deployment 256)")
    p.add_argument("--rounds", type=int, default=10, help="alternating rounds of 5 runs per engine")
    p.add_argument("--json", action="store_true", help="the result as JSON (for machines)")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("evaluate", help="held-out MPJPE/MPVPE of a bundle or checkpoint (bundle hashes verified)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", help="sample folder (default: the recorded one)")
    p.add_argument("--device", default="auto", help="where the network runs: auto (CUDA when available), cpu, cuda[:N]")
    _add_mano(p)
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("report", help="a study's self-contained HTML report and PNG figures")
    p.add_argument("--study", required=True)
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    p.add_argument("--out", required=True, help="report folder (index.html, *.png, trials.json)")
    p.add_argument("--references", default="lwa_hand,lagc_hand",
                   help="presets trained under the study's proxy as reference points ('' for none); kept in the study")
    _add_mano(p)
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("dashboard", help="optuna-dashboard on a stored study (optuna- or nni-backed)")
    p.add_argument("--study", required=True)
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    p.add_argument("--host", default="127.0.0.1", help="listen address (default: this machine only; any other "
                                                       "needs --allow-remote)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--allow-remote", action="store_true",
                   help="serve on a non-loopback --host: the dashboard API is unauthenticated, anyone who reaches "
                        "the port can read and change every study of the storage")
    p.set_defaults(func=cmd_dashboard)
    p = sub.add_parser("demo", help="the main job end to end on the embedded synthetic data (minutes on 2 cores)")
    demo = DemoCfg()
    p.add_argument("--out", default=demo.out)
    p.add_argument("--space", default=demo.space, help="a search space YAML or a shipped space's name")
    p.add_argument("--study", default=demo.study)
    p.add_argument("--trials", type=int, default=demo.trials, help="subnets the search scores")
    p.add_argument("--workers", type=int, default=demo.workers)
    p.add_argument("--prune-ratio", type=float, default=demo.prune_ratio,
                   help="share of every layer's channels the winner loses (one pruning pass)")
    p.add_argument("--supernet", default=demo.supernet, help="'shipped' (the trained lwa.yaml supernet) or a folder")
    p.add_argument("--eval-images", type=int, default=demo.eval_images, help="held-out images scored per subnet")
    p.add_argument("--finetune-steps", type=int, default=demo.finetune_steps)
    p.add_argument("--qat-steps", type=int, default=demo.qat_steps)
    p.add_argument("--seed", type=int, default=demo.seed)
    _add_mano(p)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("reproduce", help="reproduce a paper table (Markdown + CSV)")
    p.add_argument("table", choices=TABLES)
    p.add_argument("--proxy", default="quick", help="named proxy budget for tables that train: quick, standard, full")
    p.add_argument("--data", default="synthetic", help="'synthetic' (the proxy's cached set) or a sample folder")
    p.add_argument("--study", help="add the best feasible trial of this study")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)
    p.add_argument("--out", help="folder for TABLE.md and TABLE.csv")
    _add_mano(p)
    p.set_defaults(func=cmd_reproduce)
    from hand_nas.cli_supernet import register as register_supernet

    register_supernet(sub, _add_device, _add_mano)
    return parser


def environment_error(exc: BaseException, args) -> str | None:
    """The one line for a failure of the machine rather than of hand-nas (None: a real bug, keep the traceback).

    A full disk (OSError ENOSPC, SQLite's 'database or disk is full'), a damaged database (optuna's
    StorageInternalError: a corrupt page, 'file is not a database') and any OS error that names its
    file (a path under a file, permissions, a read-only disk) are reported with the file or storage
    they concern. What was being written is not half-written: files and folders are renamed into place
    only when complete, and a study's transaction is rolled back.
    """
    from hand_nas.errors import is_disk_full, one_line

    root = exc
    for _ in range(8):  # the database's own words, under SQLAlchemy's and optuna's wrappers
        if (inner := getattr(root, "orig", None) or root.__cause__) is None:
            break
        root = inner
    why = one_line((str(root).strip().splitlines() or [type(root).__name__])[0], 300)
    database = (type(exc).__name__ == "StorageInternalError"
                or type(root).__module__.startswith(("sqlite3", "sqlalchemy")))
    storage, out = getattr(args, "storage", None), getattr(args, "out", None)
    if isinstance(exc, OSError) and exc.filename:
        where = str(exc.filename)
    elif database and storage:
        where = f"storage {storage}"
    else:
        where = f"{out} (or the files beside it)" if out else None
    if is_disk_full(exc):
        return (f"{where or 'the output'}: disk full ({why}); nothing half-written is left: free space and run the "
                "same command again")
    if database:
        return f"{where or 'storage'}: the database cannot be read or written ({why}); it may be damaged"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or why}"
    return None


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
    except Exception as exc:  # the machine's failures (disk, damaged database) as one line; bugs keep their traceback
        line = environment_error(exc, args)
        if line is None:
            raise
        print(f"hand-nas: error: {line}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
