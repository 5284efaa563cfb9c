"""Search spaces: YAML data mapping ModelCfg fields to choices or ranges, a budget and objectives.

Format (see ``search_spaces/*.yaml``)::

    name: lwa
    base: lwa_hand               # preset the sampled fields are applied to (a list searches over presets)
    budget: {gmacs: 0.47}        # at 1x3x256x256, fvcore convention
    objectives: [mpjpe, gmacs]   # mpjpe (single objective) | mpjpe, gmacs | mpjpe, gmacs, latency
    latency_runtime: onnxruntime # what latency objectives and budgets are read on (hand_nas.cost.predictor.RUNTIMES)
    proxy: {resolution: 64, steps: 60, batch: 8, eval_every: 20}   # TrainCfg fields
    reference: {losses: intaghand}   # optional: what the proxy check's long run changes in proxy x factor
    data: {synthetic_n: 600}     # size of the embedded synthetic set for this space
    params:
      encoder.tokens: {choices: [2, 3, 4, 6]}
      bridge.blocks: {low: 1, high: 4}                  # integers; floats take `log: true`
      encoder.stages.*.width: {scale: [0.75, 1.0, 1.25], round: 8}
      graph.dims: {choices: [[256, 128, 96, 64], [192, 128, 64, 48]]}

Paths are dotted ModelCfg fields; tuple elements by index (``encoder.stages.3.width``); ``*`` with
``scale`` multiplies every element's base value and rounds to a multiple of ``round``. List-valued
per-level fields (graph.dims, fusion.channels, bridge.grid_dims) may be longer than the sampled
number of levels; the extra entries are ignored. Every error names the file and the field.

``extends: lwa`` (a shipped space's name, or a path relative to the file) starts from that space's fields; each
top-level field the file gives replaces the parent's whole (``search_spaces/lwa_mobile.yaml``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hand_nas.config import ModelCfg, TrainCfg, from_dict
from hand_nas.errors import HandNasError, short

OBJECTIVES = ("mpjpe", "gmacs", "latency")
TOP_KEYS = ("name", "base", "budget", "objectives", "latency_runtime", "proxy", "reference", "data", "params",
            "description")
# bounds that keep loading and validating a space to seconds (validation builds every choice)
MAX_PARAMS = 64
MAX_CHOICES = 1000
MAX_CORNERS = 2000
MAX_PATH = 200
MAX_SYNTHETIC = 1_000_000


def budget_problem(value, field: str = "budget.gmacs") -> str | None:
    """'field: ...' unless ``value`` is a finite number of GMACs above 0 (NaN and inf are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return f"{field}: expected a finite number of GMACs above 0, got {short(value)}"
    return None


@dataclass(frozen=True)
class ParamSpec:
    """One searched field.

    Attributes:
        path: dotted ModelCfg path (``*`` for every element with ``scale``).
        kind: 'choices', 'int', 'float' or 'scale'.
        values: choices, or the multipliers of 'scale'.
        low, high, log: range of 'int' / 'float'.
        round_to: 'scale' rounds to multiples of this.
    """

    path: str
    kind: str
    values: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    round_to: int = 8

    @property
    def label(self) -> str:
        return self.path


@dataclass(frozen=True)
class SearchSpace:
    name: str
    base: tuple[str, ...]
    budget_gmacs: float
    objectives: tuple[str, ...]
    params: tuple[ParamSpec, ...]
    proxy: TrainCfg
    synthetic_n: int = 600
    source: str = ""
    budget_latency_ms: float | None = None  # on latency_runtime, 1 thread, batch 1, 256 px (hand_nas.cost.predictor)
    latency_runtime: str = "onnxruntime"
    # TrainCfg fields in which the proxy check's long run differs from the proxy x factor (the training the
    # proxy must rank like: a proxy may train differently, e.g. fewer loss terms, and still be judged by it)
    reference: tuple[tuple[str, typing.Any], ...] = ()

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def uses_latency(self) -> bool:
        """Latency is an objective or bounded: it is predicted before training (``hand-nas latency calibrate``)."""
        return "latency" in self.objectives or self.budget_latency_ms is not None

    def base_cfg(self, name: str | None = None) -> ModelCfg:
        from hand_nas.models.presets import resolve_model

        return resolve_model(name or self.base[0])

    def spread(self, n: int, seed: int = 0) -> list[tuple[str, ModelCfg, float]]:
        """(label, config, GMACs): the base preset plus ``n`` feasible samples at evenly spaced cost quantiles
        (what a proxy check trains and a latency calibration measures)."""
        from hand_nas.cost.gate import estimate_gmacs, gate

        rng = np.random.default_rng(seed)
        pool: list[tuple[float, ModelCfg]] = []
        for _ in range(200 * n):
            if len(pool) >= 20 * n:
                break
            try:
                cfg = self.build(self.random_params(rng))
            except HandNasError:
                continue
            g = gate(cfg, self.budget_gmacs)
            if g.feasible:
                pool.append((g.gmacs_total, cfg))
        pool.sort(key=lambda x: x[0])
        picks = sorted({int(round(i)) for i in np.linspace(0, len(pool) - 1, min(n, len(pool)))})
        base = self.base_cfg(self.base[0] if len(self.base) > 1 else None)
        out = [(base.name, base, estimate_gmacs(base))]
        out += [(f"sample{k}", dataclasses.replace(pool[i][1], name=f"{self.name}-sample{k}"), pool[i][0])
                for k, i in enumerate(picks)]
        return out

    def all_params(self) -> tuple[ParamSpec, ...]:
        """The searched fields, with the base model as a choice when the space has several."""
        if len(self.base) > 1:
            return (ParamSpec("base", "choices", self.base),) + self.params
        return self.params

    def build(self, params: dict) -> ModelCfg:
        """The ModelCfg for sampled values (validated; raises HandNasError naming the field)."""
        cfg = self.base_cfg(params.get("base") if len(self.base) > 1 else None)
        d = cfg.to_dict()
        for p in self.params:
            if p.label not in params:
                raise HandNasError(f"{self.source}: params.{p.label}: no value sampled")
            _apply(d, p, params[p.label])
        d["name"] = f"{self.name}-trial"
        try:
            cfg = ModelCfg.from_dict(d)
        except HandNasError as exc:
            raise HandNasError(f"{self.source}: {exc}") from None
        from hand_nas.models.validate import input_problems, problems

        issues = problems(cfg)
        issues = issues or input_problems(cfg, self.proxy.resolution, "proxy.resolution")
        if issues:
            raise HandNasError(f"{self.source}: sampled configuration is invalid: {issues[0]}")
        return cfg

    def corner_values(self, p: ParamSpec) -> list:
        """Values tried when validating: every choice, or a range's ends and middle."""
        if p.kind in ("choices", "scale"):
            return list(p.values)
        if p.kind == "int":
            return sorted({int(p.low), int(p.high), int((p.low + p.high) // 2)})
        return [p.low, p.high]

    def random_params(self, rng: np.random.Generator) -> dict:
        out = {}
        for p in self.all_params():
            if p.kind in ("choices", "scale"):
                out[p.label] = p.values[rng.integers(len(p.values))]
            elif p.kind == "int":
                out[p.label] = int(rng.integers(int(p.low), int(p.high) + 1))
            else:
                out[p.label] = float(np.exp(rng.uniform(np.log(p.low), np.log(p.high))) if p.log
                                     else rng.uniform(p.low, p.high))
        return out


def encode(value):
    """Categorical values in storage must be scalars: lists and tuples go in as JSON strings."""
    return json.dumps(list(value)) if isinstance(value, (list, tuple)) else value


def decode(value):
    """The inverse of ``encode``."""
    return json.loads(value) if isinstance(value, str) and value[:1] == "[" else value


def _resolve(d, parts: list[str], path: str, source: str):
    """(container, key) of the last path part inside the nested dict/list ``d``."""
    cur = d
    for i, part in enumerate(parts[:-1]):
        cur = _step(cur, part, ".".join(parts[:i + 1]), path, source)
    last = parts[-1]
    if isinstance(cur, list):
        if not last.isdigit() or int(last) >= len(cur):
            raise HandNasError(f"{source}: params.{path}: index {last!r} out of range (0..{len(cur) - 1})")
        return cur, int(last)
    if not isinstance(cur, dict) or last not in cur:
        raise HandNasError(f"{source}: params.{path}: unknown field {last!r}")
    return cur, last


def _step(cur, part, prefix, path, source):
    if isinstance(cur, list):
        if not part.isdigit() or int(part) >= len(cur):
            raise HandNasError(f"{source}: params.{path}: index {part!r} out of range at {prefix}")
        return cur[int(part)]
    if not isinstance(cur, dict) or part not in cur:
        raise HandNasError(f"{source}: params.{path}: unknown field {part!r}")
    return cur[part]


def _apply(d: dict, p: ParamSpec, value) -> None:
    parts = p.path.split(".")
    if p.kind == "scale":
        star = parts.index("*")
        container = d
        for part in parts[:star]:
            container = container[int(part)] if isinstance(container, list) else container[part]
        for elem in container:
            c, k = _resolve(elem, parts[star + 1:], p.path, "")
            c[k] = max(p.round_to, int(round(c[k] * value / p.round_to)) * p.round_to)
        return
    c, k = _resolve(d, parts, p.path, "")
    c[k] = list(value) if isinstance(value, (list, tuple)) else value


def _field_type(cfg: ModelCfg, path: str):
    """The annotated type of a dotted path (indices skipped), or None."""
    tp = ModelCfg
    for part in path.split("."):
        if part.isdigit() or part == "*":
            args = typing.get_args(tp)
            tp = args[0] if args else None
            continue
        if not dataclasses.is_dataclass(tp):
            return None
        hints = typing.get_type_hints(tp)
        if part not in hints:
            return None
        tp = hints[part]
    return tp


def shipped_spaces() -> dict[str, Path]:
    """{name: file} of the search spaces shipped with hand-nas (``search_spaces/*.yaml``)."""
    try:  # installed: the folder is the package data ``hand_nas.search_spaces`` (see pyproject.toml)
        import hand_nas.search_spaces as shipped

        folder = Path(shipped.__file__).parent
    except ImportError:  # a source checkout put on PYTHONPATH without installing
        folder = Path(__file__).resolve().parents[2] / "search_spaces"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def resolve_space(path: str | Path) -> Path:
    """A space file path, or the name of a shipped space (``shipped_spaces()``: 'tiny', 'lwa', 'lwa_mobile', ...)."""
    path = Path(path)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        return shipped_spaces().get(str(path), path)
    return path


def read_space_fields(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A space file's top-level fields, with ``extends: PARENT`` (a shipped space's name, or a YAML path relative
    to this file) resolved: the parent's fields, each one this file gives replacing the parent's whole (``params``
    too), and ``name`` this file's own (its stem unless it says)."""
    from hand_nas.files import read_yaml

    src = str(path)
    raw = read_yaml(path, "search space file")
    if not isinstance(raw, dict):
        raise HandNasError(f"{src}: expected a mapping at the top level")
    unknown = sorted(map(str, set(raw) - set(TOP_KEYS) - {"extends"}))
    if unknown:
        raise HandNasError(f"{src}: {unknown[0][:MAX_PATH]}: unknown field (known: {', '.join(TOP_KEYS)}, extends)")
    if "extends" not in raw:
        return raw
    parent = raw.pop("extends")
    if not isinstance(parent, str) or not parent:
        raise HandNasError(f"{src}: extends: expected a shipped space's name or a YAML path, got {short(parent)}")
    parent_path = resolve_space(parent)
    if parent_path.suffix and not parent_path.is_absolute():
        parent_path = path.parent / parent_path
    if not parent_path.is_file():
        raise HandNasError(f"{src}: extends: {short(parent)}: no such space (shipped: {', '.join(shipped_spaces())})")
    if parent_path.resolve() in seen + (path.resolve(),):
        raise HandNasError(f"{src}: extends: {short(parent)}: a cycle of spaces extending each other")
    try:
        fields = read_space_fields(parent_path, seen + (path.resolve(),))
    except HandNasError as exc:
        raise HandNasError(f"{src}: extends: {exc}") from None
    return {**fields, "name": path.stem, **raw}


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a space file (or a shipped space's name); one-line errors name the file and the field."""
    path = resolve_space(path)
    src = str(path)
    raw = read_space_fields(path)
    from hand_nas.models.validate import name_problem, train_problems

    name = raw.get("name", path.stem)
    if issue := name_problem(name, "name", limit=64):
        raise HandNasError(f"{src}: {issue}")
    for key in ("base", "budget", "params"):
        if key not in raw:
            raise HandNasError(f"{src}: {key}: missing")
    from hand_nas.models.presets import resolve_model

    names = raw["base"] if isinstance(raw["base"], list) else [raw["base"]]
    if not names or not all(isinstance(n, str) for n in names):
        raise HandNasError(f"{src}: base: expected a preset name or a non-empty list of them")
    bases = []
    for n in names:
        try:
            bases.append(resolve_model(n))
        except HandNasError as exc:
            raise HandNasError(f"{src}: base: {exc}") from None
    budget = raw["budget"]
    if not isinstance(budget, dict) or "gmacs" not in budget or set(budget) - {"gmacs", "latency_ms"}:
        raise HandNasError(f"{src}: budget: expected {{gmacs: <number>}} or {{gmacs: <number>, latency_ms: <number>}}")
    if issue := budget_problem(budget["gmacs"]):
        raise HandNasError(f"{src}: {issue}")
    latency_ms = budget.get("latency_ms")
    if latency_ms is not None and (isinstance(latency_ms, bool) or not isinstance(latency_ms, (int, float))
                                   or not math.isfinite(latency_ms) or not 0 < latency_ms <= 1e6):
        raise HandNasError(f"{src}: budget.latency_ms: expected a finite number of milliseconds above 0, "
                           f"got {short(latency_ms)}")
    objectives = raw.get("objectives", ["mpjpe"])
    if not isinstance(objectives, list) or not objectives or objectives[0] != "mpjpe" \
            or any(o not in OBJECTIVES for o in objectives) or len(set(map(str, objectives))) != len(objectives):
        raise HandNasError(f"{src}: objectives: expected mpjpe first, then any of gmacs, latency; got {short(objectives)}")
    objectives = tuple(objectives)
    from hand_nas.cost.predictor import RUNTIMES

    latency_runtime = raw.get("latency_runtime", "onnxruntime")
    if latency_runtime not in RUNTIMES:
        raise HandNasError(f"{src}: latency_runtime: expected one of {', '.join(RUNTIMES)}, got {short(latency_runtime)}")
    try:
        proxy = from_dict(TrainCfg, raw.get("proxy", {}) or {}, "proxy")
    except HandNasError as exc:
        raise HandNasError(f"{src}: {exc}") from None
    if issues := train_problems(proxy):
        raise HandNasError(f"{src}: proxy.{issues[0]}")
    reference = raw.get("reference", {}) or {}
    if not isinstance(reference, dict):
        raise HandNasError(f"{src}: reference: expected a mapping of training fields, got {short(reference)}")
    if scaled := sorted(set(map(str, reference)) & {"steps", "warmup", "eval_every", "seed"}):
        raise HandNasError(f"{src}: reference.{scaled[0]}: set by the proxy check (the proxy's x --factor, or its "
                           "seeds), not by the space")
    try:
        issues = train_problems(from_dict(TrainCfg, {**proxy.to_dict(), **reference}, "reference"))
    except HandNasError as exc:
        raise HandNasError(f"{src}: {exc}") from None
    if issues:
        raise HandNasError(f"{src}: reference.{issues[0]}")
    data = raw.get("data", {}) or {}
    if not isinstance(data, dict):
        raise HandNasError(f"{src}: data: expected a mapping {{synthetic_n: <integer>}}, got {short(data)}")
    if set(data) - {"synthetic_n"}:
        raise HandNasError(f"{src}: data.{sorted(map(str, set(data) - {'synthetic_n'}))[0][:MAX_PATH]}: unknown field "
                           "(known: synthetic_n)")
    n = data.get("synthetic_n", 600)
    if not isinstance(n, int) or isinstance(n, bool) or not 8 <= n <= MAX_SYNTHETIC:
        raise HandNasError(f"{src}: data.synthetic_n: expected an integer in 8..{MAX_SYNTHETIC}, got {short(n)}")
    if not isinstance(raw["params"], dict) or not raw["params"]:
        raise HandNasError(f"{src}: params: expected a non-empty mapping of field -> choices/range")
    if len(raw["params"]) > MAX_PARAMS:
        raise HandNasError(f"{src}: params: {len(raw['params'])} fields, at most {MAX_PARAMS}")
    for k in raw["params"]:
        if not isinstance(k, str) or not k or len(k) > MAX_PATH:
            raise HandNasError(f"{src}: params: {short(k)}: expected a dotted field path of at most {MAX_PATH} "
                               "characters")
    params = tuple(_param(src, str(k), v, bases) for k, v in raw["params"].items())
    space = SearchSpace(name=name, base=tuple(names), budget_gmacs=float(budget["gmacs"]),
                        objectives=objectives, params=params, proxy=proxy, synthetic_n=n, source=src,
                        budget_latency_ms=None if latency_ms is None else float(latency_ms),
                        latency_runtime=latency_runtime,
                        reference=tuple(sorted(reference.items())))
    corners = sum(len(space.corner_values(p)) for p in space.all_params())
    if corners > MAX_CORNERS:
        raise HandNasError(f"{src}: params: {corners} values to validate (choices, and three per range), at most "
                           f"{MAX_CORNERS}")
    _check_values(space)
    return space


def _param(src: str, key: str, spec, bases: list[ModelCfg]) -> ParamSpec:
    where = f"{src}: params.{key}"
    if key == "base":
        raise HandNasError(f"{where}: 'base' is set at the top level (a list of presets searches over them)")
    out = None
    for base in bases:
        out = _param_for(src, key, spec, base, base.to_dict(), where)
    return out


def _param_for(src: str, key: str, spec, base: ModelCfg, base_dict: dict, where: str) -> ParamSpec:
    if not isinstance(spec, dict):
        raise HandNasError(f"{where}: expected a mapping with 'choices', 'low'/'high' or 'scale'")
    allowed = {"choices", "low", "high", "log", "scale", "round"}
    if set(spec) - allowed:
        raise HandNasError(f"{where}.{sorted(set(spec) - allowed)[0]}: unknown key (known: {', '.join(sorted(allowed))})")
    parts = key.split(".")
    if "*" in parts:
        if "scale" not in spec:
            raise HandNasError(f"{where}: a '*' path needs 'scale'")
        star = parts.index("*")
        cont = base_dict
        for part in parts[:star]:
            cont = _step(cont, part, part, key, src)
        if not isinstance(cont, list) or not cont:
            raise HandNasError(f"{where}: '*' must stand for the elements of a non-empty list")
        _resolve(cont[0], parts[star + 1:], key, src)
    else:
        _resolve(base_dict, parts, key, src)
    ftype = _field_type(base, key)
    if "scale" in spec:
        vals = spec["scale"]
        if not isinstance(vals, list) or not vals or len(vals) > MAX_CHOICES:
            raise HandNasError(f"{where}.scale: expected a non-empty list of at most {MAX_CHOICES} multipliers")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= 16
               for v in vals):
            raise HandNasError(f"{where}.scale: multipliers must be finite numbers in (0, 16]")
        if ftype is not int:
            raise HandNasError(f"{where}.scale: only integer fields can be scaled")
        round_to = spec.get("round", 8)
        if isinstance(round_to, bool) or not isinstance(round_to, int) or not 1 <= round_to <= 1024:
            raise HandNasError(f"{where}.round: expected an integer in 1..1024, got {short(round_to)}")
        return ParamSpec(key, "scale", tuple(float(v) for v in vals), round_to=round_to)
    if "choices" in spec:
        vals = spec["choices"]
        if not isinstance(vals, list) or not vals:
            raise HandNasError(f"{where}.choices: expected a non-empty list")
        if len(vals) > MAX_CHOICES:
            raise HandNasError(f"{where}.choices: {len(vals)} choices, at most {MAX_CHOICES}")
        for v in vals:
            _check_type(where, ftype, v)
        return ParamSpec(key, "choices", tuple(tuple(v) if isinstance(v, list) else v for v in vals))
    if "low" in spec and "high" in spec:
        lo, hi = spec["low"], spec["high"]
        if ftype is int:
            if any(isinstance(v, bool) or not isinstance(v, int) for v in (lo, hi)):
                raise HandNasError(f"{where}: low/high must be integers for an integer field")
            kind = "int"
        elif ftype is float:
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (lo, hi)):
                raise HandNasError(f"{where}: low/high must be numbers")
            kind = "float"
        else:
            raise HandNasError(f"{where}: a range needs a numeric field; use 'choices'")
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise HandNasError(f"{where}: low/high must be finite, got {short(lo)} and {short(hi)}")
        if lo > hi:
            raise HandNasError(f"{where}: low ({short(lo)}) is above high ({short(hi)})")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise HandNasError(f"{where}.log: expected true or false, got {short(log)}")
        if log and lo <= 0:
            raise HandNasError(f"{where}: a log range needs low > 0, got {short(lo)}")
        # the field's own upper bound (models/validate.py) is checked when the ends are built
        return ParamSpec(key, kind, low=lo, high=hi, log=log)
    raise HandNasError(f"{where}: expected 'choices', 'low' and 'high', or 'scale'")


def _check_type(where: str, ftype, v) -> None:
    origin = typing.get_origin(ftype)
    ok = True
    if ftype is int:
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif ftype is float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif ftype is str:
        ok = isinstance(v, str)
    elif ftype is bool:
        ok = isinstance(v, bool)
    elif origin is tuple:
        inner = typing.get_args(ftype)[0]
        ok = isinstance(v, list) and all(
            (isinstance(x, int) and not isinstance(x, bool)) if inner is int else isinstance(x, (int, float)) for x in v)
    if not ok:
        name = getattr(ftype, "__name__", str(ftype))
        raise HandNasError(f"{where}.choices: {short(v)} is not a valid {name} for this field")


def _check_values(space: SearchSpace) -> None:
    """Every value builds a valid config with the others at their base; the budget is reachable."""
    from hand_nas.cost.gate import estimate_gmacs

    base = {p.label: space.corner_values(p)[0] for p in space.all_params()}
    cheapest: dict = {}
    for p in space.all_params():
        best = None
        for v in space.corner_values(p):
            params = dict(base, **{p.label: v})
            try:
                cfg = space.build(params)
            except HandNasError as exc:
                raise HandNasError(f"{space.source}: params.{p.label}: value {short(v)} gives an invalid model "
                                   f"({str(exc).split(': ', 1)[-1]})") from None
            g = estimate_gmacs(cfg)
            if best is None or g < best[0]:
                best = (g, v)
        cheapest[p.label] = best[1]
    candidates = [cheapest] + [space.random_params(np.random.default_rng(i)) for i in range(64)]
    lowest = np.inf
    for params in candidates:
        try:
            lowest = min(lowest, estimate_gmacs(space.build(params)))
        except HandNasError:
            continue
    if lowest > space.budget_gmacs:
        raise HandNasError(f"{space.source}: budget.gmacs: {space.budget_gmacs} is below every configuration of "
                           f"the space (cheapest found {lowest:.4f} GMACs); refused before any training")



def with_budget(space: SearchSpace, gmacs: float | None) -> SearchSpace:
    """The space under another GMACs budget (None keeps its own); checked like the file's budget."""
    if gmacs is None:
        return space
    if issue := budget_problem(gmacs, "--budget"):
        raise HandNasError(issue)
    out = dataclasses.replace(space, budget_gmacs=float(gmacs))
    _check_values(out)
    return out
