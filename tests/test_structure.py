"""The dependency rules the layout promises (README, HOUSE_STYLE): checked on the source, not by convention."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The storage (trials, attributes), the optuna strategy (samplers), the pruner (an optuna BasePruner that
# optuna calls with the study) and the dashboard; everything else goes through the storage module.
OPTUNA_MODULES = {"hand_nas/search/storage.py", "hand_nas/search/optuna_strategy.py", "hand_nas/search/pruning.py",
                  "hand_nas/report/dashboard.py"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _sources():
    for pkg in ("hand_nas", "compress"):
        yield from sorted((ROOT / pkg).rglob("*.py"))


def test_only_the_storage_the_optuna_strategy_the_pruner_and_the_dashboard_import_optuna():
    users = {str(p.relative_to(ROOT)) for p in _sources() if any(n.split(".")[0] == "optuna" for n in _imports(p))}
    assert users <= OPTUNA_MODULES, users - OPTUNA_MODULES
    private = {str(p.relative_to(ROOT)): n for p in _sources() for n in _imports(p)
               if n.startswith("optuna") and any(part.startswith("_") for part in n.split("."))}
    assert not private, private


def test_hand_nas_never_imports_compress_except_the_command_line():
    users = {str(p.relative_to(ROOT)) for p in (ROOT / "hand_nas").rglob("*.py")
             if any(n.split(".")[0] == "compress" for n in _imports(p))}
    assert users <= {"hand_nas/cli.py"}, users


def test_shipped_spaces_are_found_by_name():
    from hand_nas.search.space import load_space, shipped_spaces

    assert {"tiny", "lwa", "lagc", "joint"} <= set(shipped_spaces())
    assert load_space("tiny").name == "tiny"
