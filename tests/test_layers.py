"""The architecture, enforced: the pure core imports no I/O, bleak or Qt, and
the simulator's physics imports nothing from hipimu (it is the independent truth)."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "hipimu"
FORBIDDEN_IN_CORE = {"bleak", "PySide6", "pyqtgraph", "qasync", "sqlite3", "hipimu.storage", "hipimu.sources", "hipimu.apps", "asyncio"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def under(mod: str, roots: set[str]) -> bool:
    return any(mod == r or mod.startswith(r + ".") for r in roots)


@pytest.mark.parametrize("path", sorted((SRC / "core").rglob("*.py")), ids=lambda p: p.name)
def test_core_is_pure(path):
    bad = {m for m in imports_of(path) if under(m, FORBIDDEN_IN_CORE)}
    assert not bad, f"{path.name} imports {bad}"


def test_simulator_physics_is_independent():
    files = [p for p in (SRC / "sources" / "simulate").glob("_*.py") if p.name != "__init__.py"]
    assert files, "simulator physics modules missing"
    for path in files:
        allowed = {"numpy", "scipy", "__future__", "dataclasses", "math", "typing", "collections", "functools", "itertools"}
        for m in imports_of(path):
            assert not m.startswith("hipimu"), f"{path.name} imports {m}"
            assert under(m, allowed) or m.startswith("_") or m.startswith("."), f"{path.name} imports {m}"
