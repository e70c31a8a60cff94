"""ARCHITECTURE rule 1: the protocol core does no I/O and reads no wall clock.

Scans the core packages' source (AST, so comments and strings do not count) for
imports of I/O or nondeterminism modules and for direct file access."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "simlog"
CORE = ["protocol", "records", "storage", "broker", "controller", "coordinator", "client"]
FORBIDDEN_MODULES = {"simpy", "asyncio", "socket", "time", "random", "threading",
                     "selectors", "subprocess", "multiprocessing", "os", "io", "pathlib",
                     "shutil", "tempfile", "datetime", "uuid", "secrets"}
FORBIDDEN_CALLS = {"open"}


def core_files() -> list[Path]:
    files = [ROOT / "runtime.py"]
    for pkg in CORE:
        files.extend(sorted((ROOT / pkg).rglob("*.py")))
    return files


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{path}:{node.lineno}: imports {name}")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in FORBIDDEN_CALLS):
            found.append(f"{path}:{node.lineno}: calls {node.func.id}()")
    return found


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_does_no_io(path: Path) -> None:
    assert violations(path) == []


def test_scanner_catches_forbidden_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom asyncio import sleep\nimport os.path\nx = open('f')\n")
    found = violations(bad)
    assert len(found) == 4, found
