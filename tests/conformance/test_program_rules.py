"""The conformance program is core-style code: it sees the world only through
`simlog.runtime` (ARCHITECTURE rule 1), so the same file runs in both worlds."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "simlog" / "examples"
ALLOWED = {"__future__", "collections", "dataclasses", "typing", "zlib", "simlog.runtime"}


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in {"open", "__import__", "exec", "eval"}):
            found.append(f"{node.func.id}()")
    return found


def allowed(name: str) -> bool:
    return any(name == a or name.startswith(a + ".") for a in ALLOWED if a != "simlog.runtime") \
        or name == "simlog.runtime"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_example_uses_only_the_runtime(path: Path) -> None:
    assert [n for n in imports(path) if not allowed(n)] == []


def test_the_check_catches_io(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom simlog.sim import World\nimport asyncio.tasks\n"
                   "from . import x\nopen('f')\nfrom simlog.runtime import Message\n")
    assert [n for n in imports(bad) if not allowed(n)] == [
        "time", "simlog.sim", "asyncio.tasks", ".", "open()"]
