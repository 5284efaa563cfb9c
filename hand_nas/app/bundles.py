"""A stored model's workflows: a trial's checkpoint, compressing it, predicting with, evaluating and timing a
bundle or checkpoint. Plain functions the CLI and notebooks call (the application layer: it may import every
other layer, ``compress`` included; nothing below imports it, ``tests/test_structure.py``)."""
from __future__ import annotations

from pathlib import Path

from compress.bundle import is_bundle, open_model
from hand_nas.config import DEFAULT_STORAGE
from hand_nas.errors import HandNasError

def trial_checkpoint(study: str, trial: str | int = "best", storage: str = DEFAULT_STORAGE) -> tuple[str, dict]:
    """(checkpoint folder, provenance) of a stored trial: 'best' (best trained) or a trial number.

    The trial's most recent retrain (``hand-nas retrain``) is taken when one is recorded and its
    checkpoint is on disk; otherwise the search's proxy checkpoint (fetched first when stored at a
    ``--storage-path`` URI). ``provenance['retrain']`` says which (None: the proxy's).
    """
    from hand_nas.search.records import select_trial
    from hand_nas.search.storage import read_records, read_retrains
    from hand_nas.search.trial_storage import fetch_checkpoint

    rec = select_trial(read_records(study, storage), trial, study)
    prov = {"study": study, "trial": rec.number, "storage": storage, "trial_mpjpe_mm": rec.mpjpe_mm,
            "trial_gmacs": rec.gmacs, "retrain": None, "evaluator": rec.evaluator}
    for r in read_retrains(study, storage, rec.number):
        if r.checkpoint and Path(r.checkpoint).is_dir():
            prov["retrain"] = {k: getattr(r, k) for k in ("recipe", "seed", "steps", "metrics", "finished_at")}
            return r.checkpoint, prov
    if rec.checkpoint is None and (rec.evaluator or {}).get("name") == "supernet" and rec.state == "complete":
        from hand_nas.paths import home
        from hand_nas.search.evaluate import subnet_checkpoint

        # extracted on demand from the supernet it was scored with (verified by sha256)
        folder = home() / "extracted" / f"{study}-trial{rec.number:04d}-{rec.evaluator['sha256'][:16]}"
        return str(subnet_checkpoint(rec, folder)), prov
    rec = select_trial([rec], rec.number, study, need_checkpoint=True)
    return fetch_checkpoint(rec.checkpoint), prov


def compress_trial(study: str, trial: str | int, storage: str, out: str | Path, cfg, **kw) -> dict:
    """Compress a stored trial's checkpoint into a bundle (see ``compress.pipeline.compress``)."""
    from compress.pipeline import compress

    checkpoint, prov = trial_checkpoint(study, trial, storage)
    return compress(checkpoint, out, cfg, provenance=prov, **kw)


def predict_files(image: str | Path, checkpoint: str | Path, out: str | Path | None = None, size: int | None = None,
                  mano_dir=None) -> list[Path]:
    """Both hands' OBJ meshes and an overlay PNG for one image, in the folder ``out`` (default IMAGE_hands,
    written as a whole: a previous prediction there is replaced, a folder hand-nas did not write is
    refused); returns the written paths."""
    from hand_nas.atomic import check_output
    from hand_nas.config import ModelCfg
    from hand_nas.hand.mano import HandModel
    from hand_nas.models.validate import check
    from hand_nas.predict import load_image, predict_image, write_prediction

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


def bench_target(path: str | Path, threads: tuple[int, ...] = (1,), batches: tuple[int, ...] = (1,),
                 size: int = 256, rounds: int = 10, progress: bool = True, profile: bool = False):
    """``hand_nas.cost.bench.bench`` of a bundle (verified; its own ONNX graphs) or a checkpoint folder."""
    from hand_nas.cost.bench import bench
    from hand_nas.cost.runtimes import executorch_available, litert_available
    from hand_nas.files import read_json

    path = Path(path)
    model, _ = open_model(path)
    graphs, programs, delegation = {}, {}, {}
    if is_bundle(path):  # open_model verified every file against the manifest
        graphs = {k: path / name for k, name in (("onnx_fp32", "model.onnx"), ("onnx_int8", "model.int8.onnx"))
                  if (path / name).is_file()}
        report = read_json(path / "report.json", "bundle report")
        for key, runtime, installed in (("executorch", "ExecuTorch", executorch_available),
                                        ("litert", "LiteRT", litert_available)):
            files = {kind: p for kind, p in ((report.get(key) or {}).get("programs") or {}).items()
                     if (path / p["file"]).is_file()}
            if files and not installed():
                raise HandNasError(f"{path}: holds {runtime} files but {runtime} is not installed: "
                                   "pip install 'hand-nas[mobile]'")
            for kind, p in files.items():
                programs[f"{runtime} XNNPACK {kind}"], delegation[f"{runtime} XNNPACK {kind}"] = path / p["file"], p
    return bench(model, str(path), threads=threads, batches=batches, size=size, rounds=rounds, progress=progress,
                 programs=programs, delegation=delegation, profile=profile, **graphs)
