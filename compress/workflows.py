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
    """(checkpoint folder, provenance) of a stored trial: 'best' (best trained) or a trial number."""
    from hand_nas.search.storage import read_records, select_trial

    from hand_nas.search.trial_storage import fetch_checkpoint

    rec = select_trial(read_records(study, storage), trial, study, need_checkpoint=True)
    return fetch_checkpoint(rec.checkpoint), {"study": study, "trial": rec.number, "storage": storage,
                            "trial_mpjpe_mm": rec.mpjpe_mm, "trial_gmacs": rec.gmacs}


def compress_trial(study: str, trial: str | int, storage: str, out: str | Path, cfg, **kw) -> dict:
    """Compress a stored trial's checkpoint into a bundle (see ``compress.pipeline.compress``)."""
    from compress.pipeline import compress

    checkpoint, prov = trial_checkpoint(study, trial, storage)
    return compress(checkpoint, out, cfg, provenance=prov, **kw)


def open_model(path: str | Path, mano_dir=None):
    """(model, config) of a bundle (every hash verified) or of a plain checkpoint folder."""
    from compress.bundle import is_bundle, open_bundle
    from hand_nas.checkpoint import load_checkpoint

    if is_bundle(path):
        model, config, _ = open_bundle(path, mano_dir)
        return model, config
    return load_checkpoint(path, mano_dir)


def predict_files(image: str | Path, checkpoint: str | Path, out: str | Path | None = None, size: int | None = None,
                  mano_dir=None) -> list[Path]:
    """Both hands' OBJ meshes and an overlay PNG for one image; returns the written paths."""
    from hand_nas.hand.mano import HandModel
    from hand_nas.predict import load_image, predict_image, write_prediction

    from hand_nas.config import ModelCfg
    from hand_nas.models.validate import check

    model, config = open_model(checkpoint, mano_dir)
    given = size is not None
    size = size if given else (config.get("input_size") or config.get("train", {}).get("resolution", 256))
    check(str(checkpoint), ModelCfg.from_dict(config["model"]), sizes={"--size" if given else "input_size": size})
    img = load_image(image, size)
    out = Path(out) if out else Path(image).with_name(Path(image).stem + "_hands")
    return write_prediction(predict_image(model, img), img, HandModel(mano_dir).faces, out)


def evaluate_checkpoint(path: str | Path, data: str | None = None, mano_dir=None):
    """(held-out Metrics, the TrainCfg it was scored under, the metrics recorded in the checkpoint)."""
    from hand_nas.config import TrainCfg
    from hand_nas.models.validate import check
    from hand_nas.train import evaluate, held_out_loader

    model, config = open_model(path, mano_dir)
    data = data or config.get("data")
    if not data or not Path(data).is_dir():
        raise HandNasError(f"{path}/config.json: field 'data': sample folder {data!r} not found (pass --data)")
    train_cfg = TrainCfg.from_dict(config["train"]) if "train" in config else TrainCfg()
    check(f"{path}/config.json: train", train=train_cfg)
    return evaluate(model, held_out_loader(data, train_cfg)), train_cfg, config.get("metrics", {})


@dataclass(frozen=True)
class DemoCfg:
    """The main job on the embedded synthetic data (the defaults are ``hand-nas demo``'s)."""

    out: str = "runs/demo"
    space: str = "tiny"
    study: str = "demo"
    trials: int = 12
    workers: int = 2
    prune_to: float = 0.75
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
        log(f"\n== [{i}/6] {text} ({time.perf_counter() - t0:.0f} s)")

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

    stage(3, "report: Pareto front, history, importances, references trained under the same proxy")
    sd = load_study_data(cfg.study, storage)
    add_references(sd, ("lwa_hand", "lagc_hand"), mano_dir=cfg.mano, log=log)
    report_files = write_report(sd, out / "report")

    target = round(cfg.prune_to * best.gmacs, 4)
    stage(4, f"compress the winner: prune to {target} GMACs, fine-tune, int8 QAT, export")
    bundle = out / "bundle"
    rep = compress(best.checkpoint, bundle, CompressCfg(
        prune=PruneCfg(target_gmacs=target), quant=QuantCfg(qat_steps=cfg.qat_steps),
        finetune_steps=cfg.finetune_steps, repeats=20),
        provenance={"study": cfg.study, "trial": best.number, "storage": storage}, mano_dir=cfg.mano,
        overwrite=True)
    log(format_report(rep))

    stage(5, "predict with the bundle on a held-out synthetic image")
    img = out / "predict" / "input.png"
    img.parent.mkdir(parents=True, exist_ok=True)
    s = open_samples(data)
    Image.fromarray(np.asarray(s["images"][len(s) - 1])).save(img)
    prediction = predict_files(img, bundle, out / "predict", mano_dir=cfg.mano)
    stage(6, "done")
    visible = lambda paths: [p for p in paths if not p.name.startswith(".")]  # noqa: E731 (not the .hand-nas marker)
    return DemoResult(storage, data, out / "trials" / cfg.study, visible(report_files), visible(sorted(bundle.iterdir())),
                      [img] + prediction, time.perf_counter() - t0)


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
