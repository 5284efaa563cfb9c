"""Workflows that chain search, reports and compression: plain functions the CLI and notebooks call.

Dependency direction: ``compress`` imports ``hand_nas``; no ``hand_nas`` module imports
``compress`` except ``hand_nas/cli.py``, the command-line entry point that dispatches to both
(``tests/test_structure.py`` keeps it so).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from hand_nas.config import DEFAULT_STORAGE
from hand_nas.errors import HandNasError

FLOPS_NOTE = "GMACs counted the fvcore way: one fused multiply-add = one flop"


def trial_checkpoint(study: str, trial: str | int = "best", storage: str = DEFAULT_STORAGE) -> tuple[str, dict]:
    """(checkpoint folder, provenance) of a stored trial: 'best' (best trained) or a trial number.

    The trial's most recent retrain (``hand-nas retrain``) is taken when one is recorded and its
    checkpoint is on disk; otherwise the search's proxy checkpoint (fetched first when stored at a
    ``--storage-path`` URI). ``provenance['retrain']`` says which (None: the proxy's).
    """
    from hand_nas.search.storage import read_records, select_trial, trial_retrains
    from hand_nas.search.trial_storage import fetch_checkpoint

    rec = select_trial(read_records(study, storage), trial, study)
    prov = {"study": study, "trial": rec.number, "storage": storage, "trial_mpjpe_mm": rec.mpjpe_mm,
            "trial_gmacs": rec.gmacs, "retrain": None}
    for r in trial_retrains(study, storage, rec.number):
        if r.get("checkpoint") and Path(r["checkpoint"]).is_dir():
            prov["retrain"] = {k: r.get(k) for k in ("recipe", "seed", "steps", "metrics", "finished_at")}
            return r["checkpoint"], prov
    rec = select_trial([rec], rec.number, study, need_checkpoint=True)
    return fetch_checkpoint(rec.checkpoint), prov


def compress_trial(study: str, trial: str | int, storage: str, out: str | Path, cfg, **kw) -> dict:
    """Compress a stored trial's checkpoint into a bundle (see ``compress.pipeline.compress``)."""
    from compress.pipeline import compress

    checkpoint, prov = trial_checkpoint(study, trial, storage)
    return compress(checkpoint, out, cfg, provenance=prov, **kw)


def open_model(path: str | Path, mano_dir=None):
    """(model, config) of a bundle (every hash verified) or of a plain checkpoint folder.

    The one way every command (evaluate, predict, bench, compress) opens what it is given: a folder that
    is a bundle (``is_bundle``) is verified against its manifest first; either way the config is
    validated, the shapes record read through its allow-list and non-finite weights refused
    (``hand_nas.checkpoint.load_checkpoint``).
    """
    from compress.bundle import is_bundle, open_bundle
    from hand_nas.checkpoint import load_checkpoint

    if is_bundle(path):
        model, config, _ = open_bundle(path, mano_dir)
        return model, config
    return load_checkpoint(path, mano_dir)


def predict_files(image: str | Path, checkpoint: str | Path, out: str | Path | None = None, size: int | None = None,
                  mano_dir=None) -> list[Path]:
    """Both hands' OBJ meshes and an overlay PNG for one image, in the folder ``out`` (default IMAGE_hands,
    written as a whole: a previous prediction there is replaced, a folder hand-nas did not write is
    refused); returns the written paths."""
    from hand_nas.hand.mano import HandModel
    from hand_nas.predict import load_image, predict_image, write_prediction

    from hand_nas.config import ModelCfg
    from hand_nas.models.validate import check

    from hand_nas.atomic import check_output

    out = Path(out) if out else Path(image).with_name(Path(image).stem + "_hands")
    # new or ours, never inside (or around) the checkpoint or the image: before any work
    check_output(out, inputs=[checkpoint, image], overwrite=True)
    model, config = open_model(checkpoint, mano_dir)
    given = size is not None
    size = size if given else (config.get("input_size") or config.get("train", {}).get("resolution", 256))
    check(str(checkpoint), ModelCfg.from_dict(config["model"]), sizes={"--size" if given else "input_size": size})
    img = load_image(image, size)
    return write_prediction(predict_image(model, img), img, HandModel(mano_dir).faces, out)


def evaluate_checkpoint(path: str | Path, data: str | None = None, mano_dir=None, device: str = "cpu"):
    """(held-out Metrics, the TrainCfg it was scored under, the metrics recorded in the checkpoint).

    ``device``: where the network runs (auto = CUDA when available); the metrics are computed on the CPU.
    """
    from hand_nas.config import TrainCfg
    from hand_nas.device import resolve_device
    from hand_nas.models.validate import check
    from hand_nas.train import evaluate, held_out_loader

    dev = resolve_device(device)
    model, config = open_model(path, mano_dir)
    data = data or config.get("data")
    if not data or not Path(data).is_dir():
        raise HandNasError(f"{path}/config.json: field 'data': sample folder {data!r} not found (pass --data)")
    train_cfg = TrainCfg.from_dict(config["train"]) if "train" in config else TrainCfg()
    check(f"{path}/config.json: train", train=train_cfg)
    return evaluate(model.to(dev), held_out_loader(data, train_cfg)), train_cfg, config.get("metrics", {})


# ``hand-nas compress --int8``: 'auto' or one of the int8 candidates ``compress.pipeline`` builds
INT8_CHOICES = ("auto", "brevitas", "onnxruntime", "onnxruntime-conv", "onnxruntime-profiled")

@dataclass(frozen=True)
class DemoCfg:
    """The main job on the embedded synthetic data (the defaults are ``hand-nas demo``'s)."""

    out: str = "runs/demo"
    space: str = "tiny"
    study: str = "demo"
    trials: int = 12
    workers: int = 2
    prune_to: float = 0.75
    retrain_recipe: str = "demo"
    finetune_steps: int = 60
    qat_steps: int = 20
    seed: int = 0
    mano: str | None = None


@dataclass
class DemoResult:
    storage: str
    data: Path
    trials: Path
    report: list = field(default_factory=list)
    bundle: list = field(default_factory=list)
    prediction: list = field(default_factory=list)
    seconds: float = 0.0


def run_demo(cfg: DemoCfg = DemoCfg(), log=print) -> DemoResult:
    """Synthesize data, search with a small budget, report, compress the winner, export, predict."""
    import numpy as np
    from PIL import Image

    from compress.pipeline import CompressCfg, compress, format_report
    from compress.prune import PruneCfg
    from compress.quantize import QuantCfg
    from hand_nas.config import StudyCfg
    from hand_nas.data.dataset import split_indices
    from hand_nas.data.samples import open_samples
    from hand_nas.data.synthetic import cached_synthetic
    from hand_nas.report.page import write_report
    from hand_nas.report.study_data import add_references, load_study_data
    from hand_nas.search.records import format_table, pareto_front
    from hand_nas.search.runner import run_search
    from hand_nas.search.space import load_space
    from hand_nas.search.storage import select_trial

    t0 = time.perf_counter()
    out = Path(cfg.out).resolve()
    storage = f"sqlite:///{out / 'studies.db'}"
    space = load_space(cfg.space)

    def stage(i: int, text: str) -> None:
        log(f"\n== [{i}/7] {text} ({time.perf_counter() - t0:.0f} s)")

    stage(1, f"synthetic two-hand data ({space.synthetic_n} images, procedural MANO-format hand)")
    data = cached_synthetic(space.synthetic_n)
    log(f"data: {data}")

    stage(2, f"search: {cfg.trials} trials of {space.source} on {cfg.workers} Ray workers, budget "
             f"{space.budget_gmacs} GMACs ({FLOPS_NOTE})")
    summary = run_search(StudyCfg(space=str(space.source), study=cfg.study, storage=storage, trials=cfg.trials,
                                  workers=cfg.workers, out=str(out / "trials"), data=str(data), seed=cfg.seed),
                         progress=True, space=space)
    log(format_table(pareto_front(summary.records)))
    best = select_trial(summary.records, "best", cfg.study, need_checkpoint=True)
    log(f"winner: trial {best.number}, MPJPE {best.mpjpe_mm:.2f} mm at {best.gmacs:.4f} GMACs")
    log(proxy_noise_line(space, summary.records, data, cfg.mano, log))

    stage(3, "report: Pareto front, history, importances, references trained under the same proxy")
    sd = load_study_data(cfg.study, storage)
    add_references(sd, ("lwa_hand", "lagc_hand"), mano_dir=cfg.mano, log=log)
    report_files = write_report(sd, out / "report")

    from hand_nas.retrain import get_recipe, plan_retrain, retrain

    stage(4, f"retrain the winner from scratch under recipe {cfg.retrain_recipe!r} ({get_recipe(cfg.retrain_recipe).about})")
    # on the recipe's own synthetic set, not the search's few images: a net trained on those learns no hands
    plan = plan_retrain(cfg.study, best.number, cfg.retrain_recipe, out / "retrained", storage, data="synthetic",
                        seed=cfg.seed, overwrite=True)
    log(f"data: {plan.data} ({plan.train.steps} steps at {plan.train.resolution} px, batch {plan.train.batch})")
    r, _ = retrain(plan, device="auto", mano_dir=cfg.mano, overwrite=True, log=log)
    log(f"retrained: held-out MPJPE {r.metrics.mpjpe_mm:.2f} mm (proxy {best.mpjpe_mm:.2f}; mean-shape baseline "
        f"{r.baseline.mpjpe_mm:.2f})")
    best_ckpt = plan.out

    target = round(cfg.prune_to * best.gmacs, 4)
    stage(5, f"compress the retrained winner: prune to {target} GMACs, fine-tune, int8 QAT, export")
    bundle = out / "bundle"
    rep = compress(best_ckpt, bundle, CompressCfg(
        prune=PruneCfg(target_gmacs=target), quant=QuantCfg(qat_steps=cfg.qat_steps),
        finetune_steps=cfg.finetune_steps, repeats=20),
        provenance={"study": cfg.study, "trial": best.number, "storage": storage}, mano_dir=cfg.mano,
        overwrite=True)
    log(format_report(rep))

    stage(6, "predict with the bundle on a held-out synthetic image")
    img = out / "predict_input.png"  # beside the prediction folder, which is replaced as a whole
    s = open_samples(plan.data)  # an image of the retraining's held-out split: one the bundle never saw
    held_out = split_indices(len(s), plan.train.val_fraction, seed=0)[1]
    Image.fromarray(np.asarray(s["images"][int(held_out[0])])).save(img)
    prediction = predict_files(img, bundle, out / "predict", mano_dir=cfg.mano)
    stage(7, "done")
    visible = lambda paths: [p for p in paths if not p.name.startswith(".")]  # noqa: E731 (not the .hand-nas marker)
    return DemoResult(storage, data, out / "trials" / cfg.study, visible(report_files), visible(sorted(bundle.iterdir())),
                      [img] + prediction, time.perf_counter() - t0)


def proxy_noise_line(space, records, data, mano_dir=None, log=print) -> str:
    """The demo's honesty line: the base preset trained twice under the space's proxy (seeds 0 and 1) gives
    the proxy's seed noise; the trials' spread is compared with it, beside the split's mean-shape baseline."""
    import dataclasses

    import numpy as np

    from hand_nas.baseline import split_baseline
    from hand_nas.report.reproduce import proxy_metrics

    base = space.base_cfg()
    runs = [proxy_metrics(base, dataclasses.replace(space.proxy, seed=s), str(data), mano_dir, log=log,
                          progress=False)["mpjpe_mm"] for s in (0, 1)]
    noise = abs(runs[0] - runs[1])
    trained = [r.mpjpe_mm for r in records if r.trained]
    spread = float(np.std(trained)) if len(trained) > 1 else 0.0
    baseline = split_baseline(data, space.proxy.val_fraction).mpjpe_mm
    from hand_nas.report.proxy_check import NOISE_WARN_RATIO

    if trained and min(trained) > 0.98 * baseline:
        verdict = ("no trial beats the constant by 2%: this proxy is too short to learn, so it ranks nothing "
                   "(`hand-nas proxy check` measures a proxy; lwa.yaml's is the measured one)")
    elif noise <= NOISE_WARN_RATIO * spread:
        verdict = "the trials differ by more than 3x the proxy's noise"
    else:
        verdict = "the trials differ by less than 3x the proxy's noise: this proxy cannot rank them"
    return (f"proxy noise: {base.name} seeds 0 / 1 -> {runs[0]:.2f} / {runs[1]:.2f} mm, |difference| {noise:.2f} mm; "
            f"spread of the {len(trained)} trained trials (std) {spread:.2f} mm; mean-shape baseline {baseline:.2f} mm: "
            f"{verdict}")


def bench_target(path: str | Path, threads: tuple[int, ...] = (1,), batches: tuple[int, ...] = (1,),
                 size: int = 256, rounds: int = 10, progress: bool = True):
    """``hand_nas.cost.bench.bench`` of a bundle (verified; its own ONNX graphs) or a checkpoint folder."""
    from compress.bundle import is_bundle
    from hand_nas.cost.bench import bench

    path = Path(path)
    model, _ = open_model(path)
    graphs = {}
    if is_bundle(path):  # open_model verified every file against the manifest
        graphs = {k: path / name for k, name in (("onnx_fp32", "model.onnx"), ("onnx_int8", "model.int8.onnx"))
                  if (path / name).is_file()}
    return bench(model, str(path), threads=threads, batches=batches, size=size, rounds=rounds, progress=progress,
                 **graphs)
