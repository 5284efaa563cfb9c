"""From a trained checkpoint to a verified bundle: prune -> fine-tune -> QAT -> export -> measure.

``compress`` reads a checkpoint (weights + config), never live search state. Every figure of the
report is measured in this run: GMACs (fvcore convention, 3x256x256, batch 1), parameters, held-out
MPJPE/MPVPE (mm, IntagHand protocol, the checkpoint's own held-out split and resolution) and CPU
latency (batch 1, median after warm-up, ``threads`` threads) for the fp32 model, the pruned model
and the pruned int8 model. Every int8 route is built and measured; the fastest one whose MPJPE
holds (within ``int8_tolerance_mm`` of the fake-quantized model) becomes ``model.int8.onnx``.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from compress.prune import PruneCfg, prune_to_target
from compress.quantize import QuantCfg, calibrate, quantize_model
from compress.bundle import open_model
from hand_nas.config import ModelCfg, TrainCfg
from hand_nas.cost.flops import model_cost
from hand_nas.errors import HandNasError


# ``hand-nas compress --int8``: 'auto' or one of the int8 candidates ``compress.pipeline`` builds
INT8_CHOICES = ("auto", "brevitas", "onnxruntime", "onnxruntime-conv", "onnxruntime-profiled")
# ``hand-nas compress --mobile``: the mobile runtimes' files: those whose tools are installed (auto), one runtime's
# (required), both, or none
MOBILE_CHOICES = ("auto", "executorch", "litert", "all", "off")


# fp32 ONNX vs torch, max |difference| / max |output|: summation order alone reaches ~1e-4 on a trained
# lwa-family model (a 2000-step retrain measured 1.09e-4); a wrong operator is off by far more.
PARITY_REL = 1e-3


@dataclass(frozen=True)
class CompressCfg:
    """Attributes:
        prune: pruning target; quant: QAT settings.
        finetune_steps: steps of fine-tuning after pruning (the checkpoint's resolution and batch).
        lr: fine-tuning learning rate (QAT uses a tenth).
        size: input size of the exported ONNX files and of the latencies (256: the deployment input).
        threads: intra-op threads for every latency.
        int8: 'auto' (the fastest candidate that holds accuracy), 'brevitas', 'onnxruntime' (every op) or
            'onnxruntime-conv' (the image part's convolution path only) or 'onnxruntime-profiled' (only the
            blocks where a per-operator profile found int8 faster than fp32; built when there is one).
        int8_tolerance_mm: MPJPE an int8 file may add to the fake-quantized model's and still "hold".
        calib_images: images for activation calibration (both routes).
        repeats: timed runs per latency (after 10 warm-up runs); the median is reported.
        device: where fine-tuning and QAT train (auto = CUDA when available); cost, export and
            latency always run on the CPU.
        precision: fine-tuning after pruning in fp32, bf16 or fp16 (QAT stays fp32: fake quantization
            under autocast would quantize rounded values).
        mobile: 'auto': ``model.pte`` and ``model.int8.pte`` for ExecuTorch's XNNPACK delegate when ExecuTorch
            is installed (``pip install 'hand-nas[mobile]'``), ``model.tflite`` for LiteRT when its converter
            venv exists (``hand-nas mobile setup-litert``); 'executorch' or 'litert' (that one, required),
            'all' (both, required) or 'off'.
    """

    prune: PruneCfg = field(default_factory=lambda: PruneCfg(target_gmacs=0.25))
    quant: QuantCfg = field(default_factory=QuantCfg)
    finetune_steps: int = 200
    lr: float = 5e-4
    size: int = 256
    threads: int = 1
    int8: str = "auto"
    int8_tolerance_mm: float = 3.0
    calib_images: int = 32
    repeats: int = 50
    device: str = "auto"
    precision: str = "fp32"
    mobile: str = "auto"


# (field of CompressCfg, its command-line option, low, high): float bounds are finite numbers, a low 0.0 exclusive;
# int bounds are integers; None (a ratio or target left unset) is not checked
RANGES = (("prune.target_gmacs", "--target-gmacs", 0.0, 100.0), ("prune.ratio", "--ratio", 0.0, 0.95),
          ("quant.weight_bits", "--bits", 2, 8), ("finetune_steps", "--finetune-steps", 0, 10_000_000),
          ("quant.qat_steps", "--qat-steps", 0, 10_000_000), ("size", "--size", 32, 4096),
          ("threads", "--threads", 1, 256))


def check_cfg(cfg: CompressCfg, source: str = "compress", flags: bool = False) -> None:
    """Raise the first out-of-range number of ``cfg`` as one line, ``<source>: <field>: <value>, expected ...``;
    ``flags`` names the fields as ``hand-nas compress``'s options (--bits for quant.weight_bits)."""
    from hand_nas.models.validate import check

    def get(dotted: str):
        v = cfg
        for part in dotted.split("."):
            v = getattr(v, part)
        return v

    check(source, numbers={(option if flags else field): (get(field), lo, hi) for field, option, lo, hi in RANGES})


def _git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def calibration_images(data: str, train: TrainCfg, n: int, size: int) -> np.ndarray:
    """(n, 3, size, size) training-split images, unaugmented."""
    from hand_nas.data.dataset import TwoHandDataset, split_indices
    from hand_nas.data.samples import open_samples

    tr_idx, _ = split_indices(len(open_samples(data)), train.val_fraction, seed=0)
    ds = TwoHandDataset(data, size, tr_idx[:n])
    return np.stack([ds[i]["image"].numpy() for i in range(len(ds))])


def _ort_metrics(path: Path, loader, threads: int):
    from compress.onnx_export import ort_outputs
    from hand_nas.cost.latency import ort_session
    from hand_nas.train import evaluate_outputs

    sess = ort_session(path, threads)
    names = [o.name for o in sess.get_outputs()]

    def predict(images):
        out = dict(zip(names, ort_outputs(sess, images.numpy())))
        return out.get("verts"), out["joints"], out.get("rel_root")

    return evaluate_outputs(predict, loader)


def _row(name, cost, metrics, **lat) -> dict:
    return {"model": name, "gmacs": round(cost.gmacs_total, 4), "gmacs_image": round(cost.gmacs_image, 4),
            "gmacs_pose": round(cost.gmacs_pose, 4), "params_m": round(cost.params_m, 4),
            "mpjpe_mm": round(metrics.mpjpe_mm, 2), "mpvpe_mm": round(metrics.mpvpe_mm, 2),
            **{k: (round(v, 2) if v is not None else None) for k, v in lat.items()}}


def compress(checkpoint: str | Path, out: str | Path, cfg: CompressCfg = CompressCfg(), provenance: dict | None = None,
             data: str | None = None, mano_dir=None, log=print, overwrite: bool = False) -> dict:
    """Prune, fine-tune, quantize and export ``checkpoint`` into the bundle ``out``; returns the report.

    ``checkpoint`` is opened as every command opens one (``compress.bundle.open_model``: a bundle only
    after its manifest verifies). ``out`` is written as a whole at the end (an existing bundle is replaced
    only with ``overwrite``; a folder hand-nas did not write, or one inside or around the checkpoint or
    the data, never); intermediate files live in ``.<out>.scratch-*`` beside it.
    The report's ``manifest_sha256`` pins the whole bundle (compare it out of band).
    """
    from compress import onnx_export as ox
    from compress.bundle import write_manifest
    from hand_nas.atomic import atomic_dir, check_output, scratch_dir, system_temp_in
    from hand_nas.checkpoint import CONFIG, shape_record, write_checkpoint_files
    from hand_nas.cost import latency
    from hand_nas.cost.bench import cpu_info
    from hand_nas.train import evaluate, held_out_loader, train

    def ort_latency_ms(path, size, threads):
        return latency.ort_latency_ms(path, size, threads, warmup=10, repeats=cfg.repeats)

    def torch_latency_ms(net, size, threads):
        return latency.torch_latency_ms(net, size, threads, warmup=10, repeats=cfg.repeats)

    check_cfg(cfg)
    # before the long work, not after it: a foreign folder never, nor one inside (or around) the checkpoint
    check_output(out, inputs=[checkpoint, data], overwrite=overwrite)
    if cfg.int8 not in INT8_CHOICES:
        raise HandNasError(f"int8 {cfg.int8!r}: expected one of {', '.join(INT8_CHOICES)}")
    if cfg.mobile not in MOBILE_CHOICES:
        raise HandNasError(f"mobile {cfg.mobile!r}: expected one of {', '.join(MOBILE_CHOICES)}")
    from compress.litert import converter_python, require_converter
    from compress.mobile import require_executorch
    from hand_nas.cost.runtimes import executorch_available, litert_available

    if cfg.mobile in ("executorch", "all"):
        require_executorch()  # before the long work
    if cfg.mobile in ("litert", "all"):
        require_converter()
        if not litert_available():
            raise HandNasError("LiteRT's interpreter is not installed: pip install 'hand-nas[mobile]'")
    want_et = cfg.mobile in ("executorch", "all") or (cfg.mobile == "auto" and executorch_available())
    want_litert = cfg.mobile in ("litert", "all") or (cfg.mobile == "auto" and litert_available()
                                                       and converter_python() is not None)
    t0 = time.perf_counter()
    model, ck = open_model(checkpoint, mano_dir)  # a bundle is verified as evaluate, predict and bench verify it
    model_cfg = ModelCfg.from_dict(ck["model"])
    data = data or ck.get("data")
    if not data or not Path(data).is_dir():
        raise HandNasError(f"{Path(checkpoint) / CONFIG}: field 'data': sample folder {data!r} not found "
                           "(pass --data)")
    check_output(out, inputs=[data], overwrite=overwrite)
    base_train = TrainCfg.from_dict(ck["train"]) if "train" in ck else TrainCfg()
    val = held_out_loader(data, base_train)
    lat = dict(threads=cfg.threads, size=cfg.size)
    rows = []

    log(f"[1/6] fp32 reference: cost, held-out metrics at {base_train.resolution} px, latency")
    cost0, m0 = model_cost(model), evaluate(model, val)
    with scratch_dir(out) as tmp, system_temp_in(tmp):  # beside --out, not in /tmp; a kill -9 leftover goes next run
        ort0 = ort_latency_ms(ox.export_fp32(model, tmp / "fp32.onnx", cfg.size), cfg.size, cfg.threads)
    rows.append(_row("fp32", cost0, m0, latency_ms_torch=torch_latency_ms(model, cfg.size, cfg.threads),
                     latency_ms_ort_fp32=ort0, latency_ms_ort_int8=None))

    log(f"[2/6] pruning {cost0.gmacs_total:.4f} -> {cfg.prune.target_gmacs or cfg.prune.ratio} (bisection on the ratio)")
    pr = prune_to_target(model, cfg.prune, progress=lambda r, g: log(f"      ratio {r:.3f}: {g:.4f} GMACs"))
    pruned = pr.model
    ft = dataclasses.replace(base_train, steps=cfg.finetune_steps, lr=cfg.lr, warmup=min(20, cfg.finetune_steps // 5),
                             eval_every=0)
    log(f"[3/6] fine-tuning the pruned model: {ft.steps} steps at {ft.resolution} px")
    # only the final metrics are read: no evaluation before the first step (one pass over the held-out split less)
    m_pruned = train(model_cfg, ft, data, mano_dir=mano_dir, progress=True, model=pruned, device=cfg.device,
                     precision=cfg.precision, init_eval=False).metrics if ft.steps else evaluate(pruned, val)
    pruned.cpu()
    cost1 = model_cost(pruned)

    log(f"[4/6] int8 QAT (brevitas, {cfg.quant.weight_bits}-bit weights per channel, {cfg.quant.act_bits}-bit "
        f"activations per tensor): calibration, {cfg.quant.qat_steps} steps")
    qmodel = quantize_model(pruned, cfg.quant)
    calib_train = torch.as_tensor(calibration_images(data, base_train, cfg.calib_images, base_train.resolution))
    calibrate(qmodel, calib_train.split(8))
    qt = dataclasses.replace(ft, steps=cfg.quant.qat_steps, lr=cfg.lr / 10, warmup=0)
    m_fq = train(model_cfg, qt, data, mano_dir=mano_dir, progress=True, model=qmodel, device=cfg.device,
                 init_eval=False).metrics if qt.steps else evaluate(qmodel, val)
    qmodel.cpu()
    pruned.eval()
    qmodel.eval()

    log(f"[5/6] ONNX: fp32; int8 by brevitas QCDQ, onnxruntime static (every op, conv path, profiled blocks) "
        f"at {cfg.size} px; accuracy at "
        f"{base_train.resolution} px")
    calib_deploy = calibration_images(data, base_train, cfg.calib_images, cfg.size)
    with atomic_dir(out, overwrite=overwrite) as tmp_out, scratch_dir(out) as scratch, system_temp_in(scratch):
        fp32_path = ox.export_fp32(pruned, tmp_out / "model.onnx", cfg.size)
        # onnxruntime's quantizer starts from the per-hand graph (no per-channel int8 for stacked hand weights)
        per_hand = ox.export_fp32(pruned, scratch / "fp32_per_hand.onnx", cfg.size, batched=False)
        tail, conv = (lambda p: ox.float_tail(pruned, p)), (lambda p: ox.conv_path_only(pruned, p))  # noqa: E731
        cands = {"brevitas": ox.export_qcdq(qmodel, scratch / "qcdq.onnx", cfg.size),
                 "onnxruntime": ox.export_ort_static(per_hand, scratch / "ort.onnx", calib_deploy, tail),
                 "onnxruntime-conv": ox.export_ort_static(per_hand, scratch / "ortc.onnx", calib_deploy, conv,
                                                          ox.CONV_PATH_OPS)}
        # selective int8 from a per-operator profile: the blocks where the every-op int8 graph is faster than
        # the per-hand fp32 graph it came from (same node names), quantized alone; the rest stays float
        profile = {k: ox.scope_times_ms(latency.ort_node_profile_ms(p, cfg.size, cfg.threads))
                   for k, p in (("fp32", per_hand), ("int8", cands["onnxruntime"]))}
        faster = ox.int8_faster_scopes(profile["fp32"], profile["int8"])
        log(f"      per-block profile: int8 faster in {len(faster)} of {len(profile['fp32'])} blocks"
            + (f" ({', '.join(faster[:4])}{', ...' if len(faster) > 4 else ''})" if faster else ""))
        only = ox.outside_scopes(pruned, faster)
        if faster:
            cands["onnxruntime-profiled"] = ox.export_ort_static(per_hand, scratch / "ortp.onnx", calib_deploy, only)
        # accuracy files at the evaluation resolution (same procedure)
        if cfg.size == base_train.resolution:
            eval_files = dict(cands, fp32=fp32_path)
        else:
            f32e = ox.export_fp32(pruned, scratch / "fp32_eval.onnx", base_train.resolution)
            f32e_hand = ox.export_fp32(pruned, scratch / "fp32_eval_per_hand.onnx", base_train.resolution,
                                       batched=False)
            eval_files = {"fp32": f32e,
                          "brevitas": ox.export_qcdq(qmodel, scratch / "qcdq_eval.onnx", base_train.resolution),
                          "onnxruntime": ox.export_ort_static(f32e_hand, scratch / "ort_eval.onnx",
                                                              calib_train.numpy(), tail),
                          "onnxruntime-conv": ox.export_ort_static(f32e_hand, scratch / "ortc_eval.onnx",
                                                                   calib_train.numpy(), conv, ox.CONV_PATH_OPS)}
            if faster:
                eval_files["onnxruntime-profiled"] = ox.export_ort_static(f32e_hand, scratch / "ortp_eval.onnx",
                                                                          calib_train.numpy(), only)
        lat8 = latency.ort_latency_interleaved_ms({"fp32": fp32_path, **cands}, cfg.size, cfg.threads,
                                                  per_round=max(1, cfg.repeats // 8))
        int8, held_out = {}, {}  # held_out: each candidate's metrics (the chosen one's is the pruned+int8 row)
        for name, path in cands.items():
            ops = ox.optimized_op_types(path)
            held_out[name] = _ort_metrics(eval_files[name], val, cfg.threads)
            int8[name] = {"latency_ms": lat8[name], "mpjpe_mm": held_out[name].mpjpe_mm,
                          "int8_ops": ox.int8_ops(ops), "float_compute_ops": {k: v for k, v in ops.items() if k in
                                                                            ("Conv", "FusedConv", "Gemm", "MatMul", "FusedMatMul")}}
            log(f"      {name}: {int8[name]['latency_ms']:.2f} ms, MPJPE {int8[name]['mpjpe_mm']:.2f} mm")
        holds = {k: v for k, v in int8.items() if v["mpjpe_mm"] <= m_fq.mpjpe_mm + cfg.int8_tolerance_mm}
        if cfg.int8 in cands:
            chosen, why = cfg.int8, "requested"
        elif holds:
            chosen = min(holds, key=lambda k: holds[k]["latency_ms"])
            why = "fastest of those within the MPJPE tolerance" if len(holds) > 1 else "the only one within the MPJPE tolerance"
        else:
            chosen = min(int8, key=lambda k: int8[k]["mpjpe_mm"])
            why = "neither held the MPJPE tolerance: the more accurate one"
        if cfg.int8 not in ("auto", *cands):  # onnxruntime-profiled when no block was faster in int8
            why = f"{cfg.int8} was requested but not built (no block where int8 is faster); {why}"
        (tmp_out / "model.int8.onnx").write_bytes(cands[chosen].read_bytes())
        log(f"      model.int8.onnx <- {chosen} ({why})")
        executorch = {"skipped": "ExecuTorch not installed (pip install 'hand-nas[mobile]')" if cfg.mobile == "auto"
                      else f"mobile {cfg.mobile!r}"}
        litert = {"skipped": "LiteRT converter or interpreter not installed (hand-nas mobile setup-litert; pip install "
                  "'hand-nas[mobile]')" if cfg.mobile == "auto" else f"mobile {cfg.mobile!r}"}
        conversion = None
        if want_et and want_litert:  # LiteRT converts in its own process while ExecuTorch lowers: one core each
            from compress.litert import start_tflite

            log("      LiteRT (XNNPACK delegate): model.tflite (fp32, converted by litert-torch in its own venv, "
                "beside the ExecuTorch lowering)")
            conversion = start_tflite(pruned, tmp_out / "model.tflite", cfg.size, scratch)
        try:
            if want_et:
                from compress.mobile import add_programs

                log("      ExecuTorch (XNNPACK delegate): model.pte (fp32), model.int8.pte (PT2E static int8)")
                executorch = add_programs(pruned, tmp_out, scratch, cfg.size, base_train.resolution, calib_deploy,
                                          calib_train.numpy(), val, cfg.threads, max(1, cfg.repeats // 5), PARITY_REL,
                                          log, before_timing=conversion.wait if conversion else None)
            if want_litert:
                from compress.litert import add_tflite

                if conversion is None:
                    log("      LiteRT (XNNPACK delegate): model.tflite (fp32, converted by litert-torch in its own venv)")
                litert = add_tflite(pruned, tmp_out, scratch, cfg.size, base_train.resolution, calib_deploy, val,
                                    cfg.threads, max(1, cfg.repeats // 5), PARITY_REL, log, started=conversion)
        finally:
            if conversion is not None:
                conversion.cancel()  # stops it only when something above failed while it ran

        log("[6/6] parity, latency, bundle")
        x = calib_deploy[:4]
        with torch.no_grad():
            ref = [t.numpy() for t in ox.TupleOutputs(pruned, ox.DEPLOY_OUTPUTS)(torch.as_tensor(x))]
            fq = [t.numpy() for t in ox.TupleOutputs(qmodel, ox.DEPLOY_OUTPUTS)(torch.as_tensor(x))]
        names = ox.output_names(pruned, cfg.size)
        got32 = ox.ort_outputs(fp32_path, x)
        got8 = ox.ort_outputs(tmp_out / "model.int8.onnx", x)
        parity = {"fp32_onnx_vs_torch_rel": ox.relative_error(ref, got32),
                  "int8_onnx_vs_fake_quant_mm": {n: round(float(np.abs(a - b).max()) * 1000, 3)
                                                 for n, a, b in zip(names, fq, got8) if n in ("verts", "joints")},
                  "int8_onnx_vs_fake_quant_rel": {n: float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12))
                                                  for n, a, b in zip(names, fq, got8)}}
        # Compared with a tolerance: onnxruntime's and torch's kernels sum in different orders (and differ per CPU).
        if parity["fp32_onnx_vs_torch_rel"] > PARITY_REL:
            raise HandNasError(f"fp32 ONNX differs from torch by {parity['fp32_onnx_vs_torch_rel']:.2e} (relative) "
                               f"> {PARITY_REL:g}; refusing to write the bundle")
        rows.append(_row("pruned", cost1, m_pruned, latency_ms_torch=torch_latency_ms(pruned, cfg.size, cfg.threads),
                         latency_ms_ort_fp32=lat8["fp32"], latency_ms_ort_int8=None))
        m8 = held_out[chosen]
        rows.append(_row("pruned+int8", cost1, m8, latency_ms_torch=None, latency_ms_ort_fp32=None,
                         latency_ms_ort_int8=int8[chosen]["latency_ms"]))
        write_checkpoint_files(tmp_out, pruned, model_cfg, shapes=shape_record(pruned), train=base_train.to_dict(),
                               input_size=base_train.resolution, data=str(data),
                               provenance={"checkpoint": str(checkpoint), "git_revision": _git_revision(),
                                           "source_metrics": ck.get("metrics"), **(provenance or {})},
                               compress=dataclasses.asdict(cfg), metrics=m_pruned.to_dict())
        report = {"units": "GMACs counted the fvcore way (one fused multiply-add = one flop), batch 1, 3x256x256; "
                           f"MPJPE/MPVPE in mm on the held-out split at {base_train.resolution} px (IntagHand "
                           f"protocol); latency ms at batch 1, {cfg.size} px, {cfg.threads} thread(s), median after "
                           "warm-up (pruned fp32 and int8 ONNX timed in alternating rounds)",
                  "rows": rows, "prune": {"ratio": pr.ratio, "target_gmacs": cfg.prune.target_gmacs,
                                          "tries": pr.tries},
                  "fake_quant": m_fq.to_dict(),
                  "int8": {"chosen": chosen, "why": why, "candidates": int8, "profiled_blocks": faster},
                  "int8_speedup_vs_fp32_onnx": round(rows[1]["latency_ms_ort_fp32"] / rows[2]["latency_ms_ort_int8"], 3),
                  "parity": parity, "executorch": executorch, "litert": litert, "seconds": round(time.perf_counter() - t0, 1), **lat,
                  # the int8 choice was made by these timings: the CPU they were taken on
                  "cpu": cpu_info()}
        (tmp_out / "report.json").write_text(json.dumps(report, indent=2, default=str))
        manifest_sha = write_manifest(tmp_out)
    # not in report.json (the manifest hashes that file): the number a user compares out of band
    report["manifest_sha256"] = manifest_sha
    return report


def format_report(report: dict) -> str:
    """The fp32 / pruned / pruned+int8 table as fixed-width text."""
    cols = [("model", "{}"), ("gmacs", "{:.4f}"), ("params_m", "{:.3f}"), ("mpjpe_mm", "{:.2f}"), ("mpvpe_mm", "{:.2f}"),
            ("latency_ms_torch", "{:.2f}"), ("latency_ms_ort_fp32", "{:.2f}"), ("latency_ms_ort_int8", "{:.2f}")]
    lines = ["  ".join(f"{c:>19}" for c, _ in cols)]
    for r in report["rows"]:
        lines.append("  ".join(f"{(f.format(r[c]) if r.get(c) is not None else '-'):>19}" for c, f in cols))
    lines.append(report["units"])
    if report.get("cpu"):
        lines.append(f"latencies measured on {report['cpu']['model']} ({', '.join(report['cpu']['flags']) or 'no vector flags read'})")
    return "\n".join(lines)


def format_int8(report: dict) -> str:
    """The int8 choice, its speed-up over fp32 ONNX with every candidate's latency and MPJPE, and the parity checks."""
    i8 = report["int8"]
    c = i8["candidates"][i8["chosen"]]
    speedup = report["int8_speedup_vs_fp32_onnx"]
    return "\n".join([
        f"int8: {i8['chosen']} ({i8['why']}); integer kernels {c['int8_ops']}",
        f"int8 vs fp32 ONNX latency: {speedup:.2f}x ({'faster' if speedup > 1 else 'not faster on this CPU'}); "
        "candidates: " + ", ".join(f"{k} {v['latency_ms']:.2f} ms / MPJPE {v['mpjpe_mm']:.2f} mm"
                                   for k, v in i8["candidates"].items()),
        f"fp32 ONNX vs torch: {report['parity']['fp32_onnx_vs_torch_rel']:.2e} relative; int8 ONNX vs fake-quant: "
        f"{report['parity']['int8_onnx_vs_fake_quant_mm']} mm (max)"])


def format_mobile(report: dict) -> str:
    """The mobile runtimes' files: what the XNNPACK delegate took, latency and MPJPE, or why there are none."""
    lines = []
    for key, name, left in (("executorch", "ExecuTorch", "portable kernels"), ("litert", "LiteRT", "built-in kernels")):
        sec = report.get(key) or {"skipped": "not built (a bundle from before mobile runtimes)"}
        if "skipped" in sec:
            lines.append(f"{name}: no files ({sec['skipped']})")
            continue
        lines.append(f"{name} ({sec['runtime']}, {sec['delegate']} delegate, {sec['threads']} thread(s), "
                     f"{sec['busy_threads']} busy while it ran): fp32 vs torch {sec['parity_fp32_vs_torch_rel']:.2e} "
                     "relative")
        for p in sec["programs"].values():
            lines.append(f"  {p['file']}: {p['partitions']} partition(s), {p['portable']} op(s) on {left}; "
                         f"{p['latency_ms']:.2f} ms; MPJPE {p['mpjpe_mm']:.2f} mm")
        if "int8_speedup_vs_fp32" in sec:
            lines.append(f"  int8 vs fp32: {sec['int8_speedup_vs_fp32']:.2f}x, MPJPE {sec['int8_mpjpe_change_mm']:+.2f} mm")
    return "\n".join(lines)
