"""Which device a run trains on: ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``."""
from __future__ import annotations

import re

from hand_nas.errors import HandNasError

DEVICES = "auto, cpu, cuda or cuda:N"


def resolve_device(spec: str = "auto"):
    """The ``torch.device`` for a spec; asking for CUDA where there is none is a one-line error.

    Inside a Ray task with ``--gpus-per-trial`` Ray sets ``CUDA_VISIBLE_DEVICES`` to the GPU it
    assigned (and hides every GPU from CPU-only tasks), so ``auto`` picks exactly that one.
    """
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", spec or "")
    if not m:
        raise HandNasError(f"--device {spec!r}: expected {DEVICES}")
    if not torch.cuda.is_available():
        raise HandNasError(f"--device {spec}: no CUDA device is available to this process (torch "
                           f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'})")
    index = int(m.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise HandNasError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return torch.device("cuda", index)


PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_precision(spec: str, device) -> tuple:
    """(autocast dtype or None, whether a GradScaler is needed) for ``--precision`` on ``device``.

    ``bf16`` autocasts matmuls and convolutions on CPU and CUDA (same exponent range as fp32: no
    loss scaling); ``fp16`` needs CUDA and a ``GradScaler`` (its range underflows small gradients).
    """
    import torch

    if spec not in PRECISIONS:
        raise HandNasError(f"--precision {spec!r}: expected one of {', '.join(PRECISIONS)}")
    if spec == "fp16" and device.type != "cuda":
        raise HandNasError(f"--precision fp16: needs a CUDA device (this run trains on {device}); use bf16 on a CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[spec], spec == "fp16"


def check_options(device: str, precision: str, remote_gpus: bool = False) -> None:
    """Refuse bad ``--device`` / ``--precision`` before a long job starts (one-line ``HandNasError``).

    ``remote_gpus``: trials train elsewhere on GPUs (``--gpus-per-trial`` on Ray), so CUDA need not be
    visible here; the spelling is still checked.
    """
    if not (device in ("auto", "cpu") or re.fullmatch(r"cuda(?::\d+)?", device or "")):
        raise HandNasError(f"--device {device!r}: expected {DEVICES}")
    if remote_gpus:
        if precision not in PRECISIONS:
            raise HandNasError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        if precision == "fp16" and device == "cpu":
            raise HandNasError("--precision fp16: needs a CUDA device (this run trains on cpu); use bf16 on a CPU")
        return
    resolve_precision(precision, resolve_device(device))
