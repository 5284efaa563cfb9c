"""``hand-nas demo``: the main job end to end on the embedded synthetic data, as one function.

Search the shipped (or a given) trained supernet under the space's budget, report the study, extract the
winner, compress, export and predict; print the winner on images it was not picked on and the evaluation's
own noise beside the front's spread.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from hand_nas.app.bundles import predict_files, trial_checkpoint
from hand_nas.cost.flops import FLOPS_NOTE


@dataclass(frozen=True)
class DemoCfg:
    """The main job on the embedded synthetic data (the defaults are ``hand-nas demo``'s).

    Attributes:
        supernet: 'shipped' (the trained lwa.yaml supernet hand-nas ships) or a supernet folder.
        trials: subnets the search scores; eval_images: held-out images per subnet.
    """

    out: str = "runs/demo"
    space: str = "lwa"
    supernet: str = "shipped"
    study: str = "demo"
    trials: int = 200
    workers: int = 2
    eval_images: int = 96
    prune_ratio: float = 0.2
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
    """Search the trained supernet under the space's budget, report, extract and compress the winner, predict."""
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
    from hand_nas.report.study_data import load_study_data
    from hand_nas.search.records import first_of_each_architecture, format_table, pareto_front
    from hand_nas.search.runner import run_search
    from hand_nas.search.space import load_space
    from hand_nas.search.records import select_trial
    from hand_nas.supernet import load_supernet
    from hand_nas.supernet.shipping import shipped_supernet

    t0 = time.perf_counter()
    out = Path(cfg.out).resolve()
    storage = f"sqlite:///{out / 'studies.db'}"
    space = load_space(cfg.space)
    supernet = shipped_supernet(space.name) if cfg.supernet == "shipped" else Path(cfg.supernet)

    def stage(i: int, text: str) -> None:
        log(f"\n== [{i}/6] {text} ({time.perf_counter() - t0:.0f} s)")

    stage(1, f"synthetic two-hand data ({space.synthetic_n} images, procedural MANO-format hand): the set the "
             "supernet trained on; subnets are scored on its held-out split")
    data = cached_synthetic(space.synthetic_n)
    log(f"data: {data}")

    stage(2, f"search: {cfg.trials} subnets of {space.source} scored with the weights of the trained supernet "
             f"{supernet} (no training), {cfg.workers} Ray workers, budget {space.budget_gmacs} GMACs ({FLOPS_NOTE})")
    summary = run_search(StudyCfg(space=str(space.source), study=cfg.study, storage=storage, trials=cfg.trials,
                                  workers=cfg.workers, out=str(out / "trials"), data=str(data), seed=cfg.seed,
                                  evaluator="supernet", supernet=str(supernet), eval_images=cfg.eval_images,
                                  pruner="none"),
                         progress=True, space=space)
    front = first_of_each_architecture(pareto_front(summary.records))  # a repeated proposal listed once
    log(format_table(front))
    best = select_trial(summary.records, "best", cfg.study)
    best_ckpt, _ = trial_checkpoint(cfg.study, best.number, storage)
    loaded = load_supernet(supernet)  # once: the winner's report and the noise line share it
    report = winner_report(best, loaded, data, cfg.eval_images)
    log(f"winner: trial {best.number}, {best.gmacs:.4f} GMACs, weights inherited: MPJPE {best.mpjpe_mm:.2f} mm on the "
        f"{cfg.eval_images} held-out images it was picked on, {report:.2f} mm on the split's other images")
    log(evaluation_noise_line(space, summary.records, front, loaded, data, cfg.eval_images))

    stage(3, "report: Pareto front, history, importances")
    report_files = write_report(load_study_data(cfg.study, storage), out / "report")

    # A fixed channel ratio, one pruning pass: a GMACs target is bisected over up to 40 passes, and a winner whose
    # cost is mostly unprunable (the direct head, the mesh upsampling) may never reach it.
    stage(4, f"compress the winner as extracted: prune {cfg.prune_ratio:.0%} of every layer's channels, fine-tune, "
             "int8 QAT, export")
    bundle = out / "bundle"
    rep = compress(best_ckpt, bundle, CompressCfg(
        prune=PruneCfg(ratio=cfg.prune_ratio), quant=QuantCfg(qat_steps=cfg.qat_steps),
        finetune_steps=cfg.finetune_steps, repeats=20),
        provenance={"study": cfg.study, "trial": best.number, "storage": storage, "evaluator": best.evaluator},
        mano_dir=cfg.mano, overwrite=True)
    log(format_report(rep))

    stage(5, "predict with the bundle on a held-out synthetic image")
    img = out / "predict_input.png"  # beside the prediction folder, which is replaced as a whole
    s = open_samples(data)  # an image of the held-out split: one neither the supernet nor the bundle saw
    held_out = split_indices(len(s), space.proxy.val_fraction, seed=0)[1]
    Image.fromarray(np.asarray(s["images"][int(held_out[0])])).save(img)
    prediction = predict_files(img, bundle, out / "predict", mano_dir=cfg.mano)
    stage(6, "done")
    visible = lambda paths: [p for p in paths if not p.name.startswith(".")]  # noqa: E731 (not the .hand-nas marker)
    return DemoResult(storage, data, out / "trials" / cfg.study, visible(report_files), visible(sorted(bundle.iterdir())),
                      [img] + prediction, time.perf_counter() - t0)


def winner_report(best, loaded, data, images: int) -> float:
    """The winner's inherited MPJPE on the held-out images after the ``images`` it was selected on;
    ``loaded``: ``load_supernet``'s (supernet, record)."""
    from hand_nas.config import ModelCfg, TrainCfg
    from hand_nas.supernet import SubnetScorer

    net, record = loaded
    scorer = SubnetScorer.on(data, TrainCfg.from_dict(record["train"]), record.get("calib_batches", 8), skip=images)
    return scorer.score(net, ModelCfg.from_dict(best.config))[1].mpjpe_mm


def evaluation_noise_line(space, records, front, loaded, data, images: int, sets: int = 3) -> str:
    """The demo's honesty line: the base preset scored with ``sets`` different calibration image sets gives the
    evaluation's own noise; the spread of the trials and of the Pareto front is compared with it. ``loaded``:
    ``load_supernet``'s (supernet, record)."""
    import numpy as np

    from hand_nas.baseline import split_baseline
    from hand_nas.config import TrainCfg, arch_key
    from hand_nas.supernet import SubnetScorer

    net, record = loaded
    train = TrainCfg.from_dict(record["train"])
    base = space.base_cfg()
    scores = [SubnetScorer.on(data, train, record.get("calib_batches", 8), images or None, calib_set=k)
              .score(net, base)[1].mpjpe_mm for k in range(sets)]
    noise = float(np.std(scores, ddof=1))
    trials = [r for r in records if r.trained]
    scored = list({arch_key(r.config): r.mpjpe_mm for r in trials}.values())  # a repeated proposal counts once
    spread = float(np.std(scored)) if len(scored) > 1 else 0.0
    front_mm = [r.mpjpe_mm for r in front if r.mpjpe_mm is not None]
    front_range = max(front_mm) - min(front_mm) if front_mm else 0.0
    baseline = split_baseline(data, train.val_fraction).mpjpe_mm
    if front_mm and min(front_mm) > 0.98 * baseline:
        verdict = "no subnet beats the constant by 2%: this supernet has learned no hands, so it ranks nothing"
    elif front_range > 3 * noise:
        verdict = ("the front spans more than 3x the evaluation's noise: its order is not noise (whether it is the order "
                   "training them would give is what `hand-nas proxy check --evaluator supernet` measures)")
    else:
        verdict = "the front spans less than 3x the evaluation's noise: it does not rank them"
    return (f"evaluation noise: {base.name} scored with {sets} calibration sets -> "
            f"{' / '.join(f'{x:.2f}' for x in scores)} mm, std {noise:.3f} mm; spread of the {len(scored)} architectures "
            f"scored ({len(trials)} trials; std) {spread:.2f} mm; Pareto front {min(front_mm, default=0):.2f}-{max(front_mm, default=0):.2f} "
            f"mm ({front_range:.2f} mm over {len(front_mm)} subnets); mean-shape baseline {baseline:.2f} mm: {verdict}")
