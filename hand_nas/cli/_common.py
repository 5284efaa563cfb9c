"""What several commands share: option helpers (device, MANO, storage), argument parsers, one-line checks."""
from __future__ import annotations

import argparse

from hand_nas.cost.flops import FLOPS_NOTE  # noqa: F401  (the commands' help texts say it)
from hand_nas.errors import HandNasError

STORAGE_HELP = "study storage: sqlite:///FILE (default), journal:///FILE or postgresql://USER@HOST/DB"
DEVICE_HELP = "where training runs: auto (CUDA when available), cpu, cuda or cuda:N"
PRECISION_HELP = "training precision: fp32, bf16 (autocast on CPU or CUDA) or fp16 (CUDA, GradScaler)"
TABLE_HEAD = "step    MPJPE   MPVPE  (held-out, mm, IntagHand protocol)"


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="fp32", help=PRECISION_HELP)


def add_mano(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mano", default="procedural",
                   help="'procedural' (default: the generated hand) or a folder with MANO_RIGHT.pkl / MANO_LEFT.pkl")


def add_storage(p: argparse.ArgumentParser) -> None:
    from hand_nas.config import DEFAULT_STORAGE

    p.add_argument("--storage", default=DEFAULT_STORAGE, help=STORAGE_HELP)


def flag(field: str) -> str:
    """A config field's command-line spelling: eval_every -> --eval-every."""
    return "--" + field.replace("_", "-")


def check_side(option: str, size: int) -> None:
    """An image side: a multiple of 32 in 32..1024 (what the networks and the data sets use)."""
    from hand_nas.models.validate import check

    check("command line", numbers={option: (size, 32, 1024)})
    if size % 32:
        raise HandNasError(f"command line: {option}: {size}, expected a multiple of 32")


def key_value(text: str, option: str) -> tuple[str, object]:
    """``FIELD=VALUE`` -> (field, value), the value read as a YAML scalar (64 -> int, 2e-3 -> float, false -> bool)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise HandNasError(f"{option} {text!r}: expected FIELD=VALUE, e.g. steps=600")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise HandNasError(f"{option} {text!r}: the value is not a YAML scalar") from None


def int_list(option: str, text: str, lo: int, hi: int) -> tuple[int, ...]:
    """'1,2' -> (1, 2); anything else is a one-line error naming the option."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise HandNasError(f"{option} {text!r}: expected comma-separated integers, e.g. 1,2") from None
    if not values or len(values) > 16 or not all(lo <= v <= hi for v in values):
        raise HandNasError(f"{option} {text!r}: expected 1..16 integers in {lo}..{hi}")
    return values


def interrupted(kept: str) -> SystemExit:
    """Ctrl-C during a resumable job: say where its work is kept; exit status 130."""
    import sys

    print(f"interrupted; {kept}: run the same command again to resume", file=sys.stderr)
    return SystemExit(130)


def config_option(p: argparse.ArgumentParser, cls, field: str, option: str | None = None, **kw) -> None:
    """Add the option of the config dataclass field ``cls.<field>`` (``--field-name`` unless ``option``): its
    type and default are the field's unless ``kw`` overrides them, so a field's type and default are written once.
    The parsed value lands in ``args.<field>``; a bool field is a ``store_true`` flag."""
    import dataclasses

    f = next(x for x in dataclasses.fields(cls) if x.name == field)
    annotation = f.type if isinstance(f.type, str) else f.type.__name__  # a string under postponed annotations
    kind = {"str": str, "int": int, "float": float, "bool": bool}[annotation.split(" | ")[0]]
    if kind is bool:
        kw.setdefault("action", "store_true")
    elif kind is not str and "action" not in kw:
        kw.setdefault("type", kind)
    if f.default is not dataclasses.MISSING:
        kw.setdefault("default", f.default)
    p.add_argument(option or flag(field), dest=field, **kw)
