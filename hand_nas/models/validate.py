"""Checks of the configs a command reads, before anything is built: the one validation path.

``problems`` (a ModelCfg: names registered, ranges, lengths, sane upper bounds), ``train_problems``
(a TrainCfg), ``input_problems`` (an input size for a given model) each list every problem as
'field: what is wrong'; ``check`` raises the first as a one-line HandNasError naming its source.
The upper bounds are far above every paper's network but low enough that validating, costing
(``hand_nas.cost.analytic`` loops over blocks and layers) and building never run for minutes on a
hostile or mistyped number.
"""
from __future__ import annotations

import math
import re

from hand_nas.config import LOSS_SETS, ModelCfg, TrainCfg
from hand_nas.errors import HandNasError, short
from hand_nas.registry import BRIDGES, CROSS_HAND, ENCODERS, HEADS

MAX_WIDTH = 4096      # channels of any layer
MAX_STAGES = 12
MAX_DEPTH = 16        # blocks per stage, MobileViT layers, graph blocks per level
MAX_LIST = 8          # per-level lists (graph.dims, fusion.channels, bridge.grid_dims), decoders
MAX_SIZE = 1024       # input side, pixels
MAX_STEPS = 10_000_000
MAX_BATCH = 4096
MAX_NAME = 128
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # becomes folder and file names


def name_problem(name, field: str = "name", limit: int = MAX_NAME) -> str | None:
    """'field: ...' unless ``name`` is a short, folder-safe label (letters, digits, '_', '.', '-')."""
    if not isinstance(name, str) or not name:
        return f"{field}: expected a non-empty string, got {short(name)}"
    if len(name) > limit:
        return f"{field}: {len(name)} characters, at most {limit} allowed"
    if not NAME_RE.fullmatch(name):
        return f"{field}: {short(name)} may hold only letters, digits, '_', '.' and '-' (it names folders)"
    return None


def _int_in(out: list[str], field: str, v, lo: int, hi: int) -> bool:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        out.append(f"{field}: {short(v)}, expected an integer in {lo}..{hi}")
        return False
    return True


def _num_in(out: list[str], field: str, v, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> bool:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
        and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        out.append(f"{field}: {short(v)}, expected a finite number in {'(' if lo_open else '['}{lo}, {hi}"
                   f"{')' if hi_open else ']'}")
    return ok


def _widths(out: list[str], field: str, vals, lo: int = 1) -> bool:
    if not isinstance(vals, tuple) or len(vals) > MAX_LIST:
        out.append(f"{field}: {len(vals) if isinstance(vals, tuple) else short(vals)} values, at most {MAX_LIST}")
        return False
    return all([_int_in(out, f"{field}[{i}]", v, lo, MAX_WIDTH) for i, v in enumerate(vals)])


def problems(cfg: ModelCfg) -> list[str]:
    """Every structural problem of ``cfg`` as 'field: what is wrong' (empty when buildable)."""
    import hand_nas.models  # noqa: F401  (fills the registries)
    from hand_nas.models.image_part import DECODER_OUT

    out: list[str] = []
    if not isinstance(cfg.name, str) or len(cfg.name) > MAX_NAME:
        out.append(f"name: expected a label of at most {MAX_NAME} characters, got {short(cfg.name)}")
    if cfg.head not in HEADS:
        out.append(f"head: {short(cfg.head)} is not one of {HEADS.names()}")
    e, b, g = cfg.encoder, cfg.bridge, cfg.graph
    # bounds first: the structural checks below loop over what these bound
    bounded = all([
        _int_in(out, "encoder.stem", e.stem, 1, MAX_WIDTH),
        _int_in(out, "encoder.token_dim", e.token_dim, 1, MAX_WIDTH),
        _int_in(out, "encoder.bridge_heads", e.bridge_heads, 1, 64),
        _int_in(out, "encoder.head_channels", e.head_channels, 0, 2 * MAX_WIDTH),
        _int_in(out, "encoder.tokens", e.tokens, 0, 64),
        _int_in(out, "bridge.blocks", b.blocks, 1, MAX_DEPTH),
        _int_in(out, "bridge.levels", b.levels, 1, 3),
        _int_in(out, "bridge.image_tokens", b.image_tokens, 1, 64),
        _widths(out, "bridge.grid_dims", b.grid_dims),
        _widths(out, "graph.dims", g.dims),
        _int_in(out, "graph.heads", g.heads, 1, 64),
        _int_in(out, "graph.cheb_order", g.cheb_order, 1, 3),
        _num_in(out, "graph.dropout", g.dropout, 0.0, 1.0, hi_open=True),
        _widths(out, "fusion.channels", cfg.fusion.channels),
        _int_in(out, "fusion.global_dim", cfg.fusion.global_dim, 0, MAX_WIDTH),
        _int_in(out, "posenet.channels", cfg.posenet.channels, 1, MAX_WIDTH),
        _int_in(out, "posenet.deconvs", cfg.posenet.deconvs, 1, 5),
        _int_in(out, "posenet.depth_bins", cfg.posenet.depth_bins, 1, 256),
    ])
    if len(e.stages) > MAX_STAGES:
        out.append(f"encoder.stages: {len(e.stages)} stages, at most {MAX_STAGES}")
        bounded = False
    if len(cfg.decoders) > MAX_LIST:
        out.append(f"decoders: {len(cfg.decoders)} decoders, at most {MAX_LIST}")
        bounded = False
    for i, d in enumerate(cfg.decoders[:MAX_LIST]):
        if d.kind not in DECODER_OUT:
            out.append(f"decoders[{i}].kind: {short(d.kind)} is not one of {sorted(DECODER_OUT)}")
        _int_in(out, f"decoders[{i}].channels", d.channels, 1, MAX_WIDTH)
    for i, s in enumerate(e.stages[:MAX_STAGES]):
        where = f"encoder.stages[{i}]"
        stage_ok = all([_int_in(out, f"{where}.width", s.width, 1, MAX_WIDTH),
                        _int_in(out, f"{where}.depth", s.depth, 1, MAX_DEPTH),
                        _num_in(out, f"{where}.expansion", s.expansion, 0.0, 16.0, lo_open=True),
                        _int_in(out, f"{where}.attn_dim", s.attn_dim, 0, MAX_WIDTH),
                        _int_in(out, f"{where}.attn_layers", s.attn_layers, 0, MAX_DEPTH)])
        if s.stride not in (1, 2):
            out.append(f"{where}.stride: {short(s.stride)}, expected 1 or 2")
        if stage_ok and s.attn_dim % 4:
            out.append(f"{where}.attn_dim: {s.attn_dim} must be a multiple of 4")
    if not bounded:
        return out

    if e.type not in ENCODERS:
        out.append(f"encoder.type: {short(e.type)} is not one of {ENCODERS.names()}")
    if e.type == "mobile_former" and not 1 <= e.tokens <= 6:
        out.append(f"encoder.tokens: {e.tokens}, Mobile-Former uses 1..6")
    if e.type == "mobile_former" and e.token_dim % 4:
        out.append(f"encoder.token_dim: {e.token_dim} must be a multiple of 4 (attention heads)")
    if e.attention not in ("separable", "softmax"):
        out.append(f"encoder.attention: {short(e.attention)} is not 'separable' or 'softmax'")
    if e.type != "resnet50":
        strides, st = set(), 2
        for s in e.stages:
            st *= s.stride if s.stride in (1, 2) else 1
            strides.add(st)
        if not {4, 8, 16, 32} <= strides:
            out.append(f"encoder.stages: strides reach {sorted(strides)}, need 4, 8, 16 and 32")
    if cfg.head == "graph":
        if b.attention not in BRIDGES:
            out.append(f"bridge.attention: {short(b.attention)} is not one of {BRIDGES.names()}")
        side = math.isqrt(b.image_tokens)
        if side * side != b.image_tokens or 8 % side:
            out.append(f"bridge.image_tokens: {b.image_tokens}, expected 1, 4, 16 or 64")
        if g.cross_hand not in CROSS_HAND:
            out.append(f"graph.cross_hand: {short(g.cross_hand)} is not one of {CROSS_HAND.names()}")
        if len(g.dims) < b.levels + 1:
            out.append(f"graph.dims: {len(g.dims)} widths, need levels + 1 = {b.levels + 1}")
        elif any(d % g.heads for d in g.dims[1:b.levels + 1]):
            out.append(f"graph.dims: widths must be multiples of graph.heads ({g.heads})")
        if len(cfg.fusion.channels) < b.levels:
            out.append(f"fusion.channels: {len(cfg.fusion.channels)} values, need {b.levels}")
        if g.dims and g.dims[0] <= 3:
            out.append("graph.dims[0]: must exceed 3 (3 channels hold the positional code)")
    return out


def input_problems(cfg: ModelCfg, size, field: str = "size") -> list[str]:
    """Problems of an input side ``size`` for ``cfg``: what the network's shapes require.

    Every model needs a multiple of 32 (five stride-2 stages, decoders back to stride 4); MobileViT
    stages unfold 2x2 patches, so their feature map must be even (a multiple of 64 when the
    stride-32 stage has attention); an ``mhsa`` bridge with g x g grid tokens needs 256 / g pixels.
    """
    out: list[str] = []
    if not _int_in(out, field, size, 32, MAX_SIZE):
        return out
    if size % 32:
        return [f"{field}: {size}, expected a multiple of 32 (the encoder's output stride)"]
    if cfg.encoder.type != "resnet50":
        st = 2
        for s in cfg.encoder.stages:
            st *= s.stride if s.stride in (1, 2) else 1
            if s.attn_dim and (size // st) % 2:
                need = 2 * st
                return [f"{field}: {size}, expected a multiple of {need} (MobileViT attention at stride {st} "
                        "unfolds 2x2 patches)"]
    bridge = BRIDGES.get(cfg.bridge.attention) if cfg.head == "graph" and cfg.bridge.attention in BRIDGES else None
    least = bridge.min_input(cfg.bridge.image_tokens) if bridge is not None else 0
    if size < least:
        out.append(f"{field}: {size}, expected at least {least} (an {cfg.bridge.attention} bridge with "
                   f"{cfg.bridge.image_tokens} grid tokens)")
    return out


def train_problems(cfg: TrainCfg, flags: bool = False) -> list[str]:
    """Every problem of a proxy-training config; ``flags`` names fields as CLI options (--eval-every)."""
    def f(name: str) -> str:
        return "--" + name.replace("_", "-") if flags else name

    out: list[str] = []
    _int_in(out, f("resolution"), cfg.resolution, 32, MAX_SIZE)
    if not out and cfg.resolution % 32:
        out.append(f"{f('resolution')}: {cfg.resolution}, expected a multiple of 32 (the encoder's output stride)")
    _int_in(out, f("steps"), cfg.steps, 1, MAX_STEPS)
    _int_in(out, f("batch"), cfg.batch, 1, MAX_BATCH)
    _num_in(out, f("lr"), cfg.lr, 0.0, 10.0, lo_open=True)
    _int_in(out, f("warmup"), cfg.warmup, 0, MAX_STEPS)
    _int_in(out, f("decay_step"), cfg.decay_step, 0, MAX_STEPS)
    _num_in(out, f("weight_decay"), cfg.weight_decay, 0.0, 10.0)
    _int_in(out, f("eval_every"), cfg.eval_every, 0, MAX_STEPS)
    _num_in(out, f("val_fraction"), cfg.val_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
    _int_in(out, f("seed"), cfg.seed, 0, 2 ** 32 - 1)
    _int_in(out, f("workers"), cfg.workers, 0, 256)
    _num_in(out, f("ema"), cfg.ema, 0.0, 1.0, hi_open=True)
    if cfg.losses not in LOSS_SETS:
        out.append(f"{f('losses')}: {short(cfg.losses)}, expected one of {', '.join(LOSS_SETS)}")
    return out


def check(source: str, model: ModelCfg | None = None, train: TrainCfg | None = None,
          sizes: dict[str, int] | None = None, numbers: dict[str, tuple] | None = None,
          flags: bool = False) -> None:
    """Raise the first problem of everything a command read as ``HandNasError('<source>: <problem>')``.

    Args:
        source: what the configs came from (a config file, a preset name, 'command line').
        model: the model config, checked by ``problems``.
        train: a training config, checked by ``train_problems`` (``flags``: named as CLI options).
        sizes: input sides to check against ``model`` ({'--size': 256}); the model's training
            resolution is checked against it too.
        numbers: other CLI numbers to bound, {'--threads': (value, low, high)}: integers when the bounds
            are ints; finite numbers when a bound is a float (a low bound of 0.0 is exclusive). None
            values (options left at their default of none) are not checked.
    """
    issues: list[str] = []
    if model is not None:
        issues += problems(model)
    if train is not None:
        issues += train_problems(train, flags)
    for name, (value, lo, hi) in (numbers or {}).items():
        if value is None:
            continue
        if isinstance(lo, float) or isinstance(hi, float):
            _num_in(issues, name, value, lo, hi, lo_open=lo == 0.0)
        else:
            _int_in(issues, name, value, lo, hi)
    if model is not None and not issues:
        sizes = dict(sizes or {})
        if train is not None:
            sizes["--resolution" if flags else "resolution"] = train.resolution
        for name, size in sizes.items():
            issues += input_problems(model, size, name)
    if issues:
        raise HandNasError(f"{source}: {issues[0]}")
