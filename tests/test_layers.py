"""The architecture, enforced: the pure core imports no I/O, bleak or Qt.
(The simulator's independence from hipimu is enforced in test_simulator.py.)"""

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
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside core: resolve to hipimu.core[.module]
                out.add("hipimu.core" + (f".{node.module}" if node.module else ""))
            else:
                out.add(node.module)
    return out


def under(mod: str, roots: set[str]) -> bool:
    return any(mod == r or mod.startswith(r + ".") for r in roots)


@pytest.mark.parametrize("path", sorted((SRC / "core").rglob("*.py")), ids=lambda p: p.name)
def test_core_is_pure(path):
    bad = {m for m in imports_of(path) if under(m, FORBIDDEN_IN_CORE)}
    assert not bad, f"{path.name} imports {bad}"
