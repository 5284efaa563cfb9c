"""The dependency rules the layout promises (README, HOUSE_STYLE): checked on the source, not by convention.

Every import counts, the ones inside functions included: a function-level import is deferred, not exempt.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The storage (trials, attributes), the optuna strategy and its sampler adapters, the pruner (an optuna
# BasePruner that optuna calls with the study) and the dashboard; everything else goes through the storage.
OPTUNA_MODULES = ("hand_nas/search/storage/", "hand_nas/search/optuna_strategy.py",
                  "hand_nas/search/optuna_samplers.py", "hand_nas/search/pruning.py", "hand_nas/report/dashboard.py")
# The declared layer order, lowest first: a module may import its own layer and the ones before it, never a
# later one. A module belongs to the layer of its longest listed prefix.
LAYERS = (
    ("base", ("hand_nas", "hand_nas.errors", "hand_nas.config", "hand_nas.registry", "hand_nas.atomic",
              "hand_nas.files", "hand_nas.paths", "hand_nas.threads", "hand_nas.json_stream", "hand_nas.device",
              "hand_nas.stats")),
    ("hand, data", ("hand_nas.hand", "hand_nas.data", "hand_nas.metrics")),
    ("layers", ("hand_nas.layers",)),
    ("models", ("hand_nas.models", "hand_nas.checkpoint", "hand_nas.export", "hand_nas.export_executorch",
                "hand_nas.predict")),
    ("cost", ("hand_nas.cost",)),
    ("train", ("hand_nas.losses", "hand_nas.train", "hand_nas.baseline", "hand_nas.proxy_runs")),
    ("search", ("hand_nas.search", "hand_nas.supernet", "hand_nas.retrain")),
    ("report", ("hand_nas.report",)),
    ("compress", ("compress",)),
    ("app", ("hand_nas.app", "hand_nas.cli")),
)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=1)
def _modules() -> dict[str, Path]:
    return {_module(p): p for pkg in ("hand_nas", "compress") for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every name an import statement of ``path`` mentions (module and module.name), at any depth."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _resolve(name: str) -> str | None:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in _modules():
            return ".".join(parts[:i])
    return None


@lru_cache(maxsize=1)
def _edges() -> frozenset[tuple[str, str]]:
    out = set()
    for mod, path in _modules().items():
        for name in _imports(path):
            target = _resolve(name)
            if target is not None and target != mod:
                out.add((mod, target))
    return frozenset(out)


def _layer(mod: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    assert best is not None, f"{mod}: in no declared layer (tests/test_structure.py LAYERS)"
    return best[0]


def test_no_import_points_up_the_layer_order():
    up = sorted(f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
                for a, b in _edges() if _layer(b) > _layer(a))
    assert len(_edges()) > 400  # every import of both packages, function-level ones included
    assert not up, "\n".join(up)


def test_no_import_cycles():
    graph: dict[str, list[str]] = {}
    for a, b in _edges():
        graph.setdefault(a, []).append(b)
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(_modules()):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_no_private_name_is_imported_across_packages():
    bad = []
    for mod, path in _modules().items():
        package = ".".join(mod.split(".")[:2])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("hand_nas", "compress"):
                if ".".join(node.module.split(".")[:2]) != package:
                    bad += [f"{mod}: from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
    assert not bad, bad


def test_only_the_storage_the_optuna_strategy_the_pruner_and_the_dashboard_import_optuna():
    users = {str(p.relative_to(ROOT)) for p in _modules().values()
             if any(n.split(".")[0] == "optuna" for n in _imports(p))}
    outside = {u for u in users if not u.startswith(OPTUNA_MODULES)}
    assert not outside, outside
    private = {str(p.relative_to(ROOT)): n for p in _modules().values() for n in _imports(p)
               if n.startswith("optuna") and any(part.startswith("_") for part in n.split("."))}
    assert not private, private


def test_hand_nas_imports_compress_only_from_the_application_layer():
    users = {m for m, p in _modules().items()
             if m.startswith("hand_nas") and any(n.split(".")[0] == "compress" for n in _imports(p))}
    assert {u for u in users if LAYERS[_layer(u)][0] != "app"} == set(), users


def test_shipped_spaces_are_found_by_name():
    from hand_nas.search.space import load_space, shipped_spaces

    assert {"tiny", "lwa", "lagc", "joint"} <= set(shipped_spaces())
    assert load_space("tiny").name == "tiny"


def test_every_package_is_installed():
    """pyproject's package list is explicit: a new package missing from it would work in an editable install
    and be absent from a wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module(p.parent / "__init__.py") for pkg in ("hand_nas", "compress") for p in (ROOT / pkg).rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def test_report_trains_nothing():
    """report/ is pure (its __init__ says so): what trains for a report lives in the application layer."""
    training = ("hand_nas.train", "hand_nas.proxy_runs", "hand_nas.supernet.training", "hand_nas.retrain")
    bad = sorted(f"{a} imports {b}" for a, b in _edges() if a.startswith("hand_nas.report") and b in training)
    assert not bad, bad
