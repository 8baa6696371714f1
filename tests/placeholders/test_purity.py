"""The placeholders package stays pure: no I/O, clock or global RNG (that it imports only
the standard library is one of the layer rules of ``tests/test_layers.py``).

Checked on the source with ``ast`` so a stray import fails here, not in production.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "placeholders"
MODULES = sorted(PACKAGE.glob("*.py"))
FORBIDDEN_MODULES = {
    "asyncio",
    "datetime",
    "http",
    "io",
    "os",
    "pathlib",
    "shutil",
    "socket",
    "subprocess",
    "tempfile",
    "threading",
    "time",
    "urllib",
}
FORBIDDEN_CALLS = {"open", "input", "print", "exec", "eval"}


def imported_modules(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_package_has_its_modules() -> None:
    assert {path.stem for path in MODULES} >= {"__init__", "errors", "syntax", "substitute"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_module_reaches_for_files_network_processes_or_the_clock(path: Path) -> None:
    tops = {module.split(".")[0] for module in imported_modules(parsed(path))}
    assert not tops & FORBIDDEN_MODULES, f"{path.name} imports {tops & FORBIDDEN_MODULES}"
    calls = {
        node.func.id
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & FORBIDDEN_CALLS, f"{path.name} calls {calls & FORBIDDEN_CALLS}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_randomness_only_comes_from_a_random_instance_the_caller_passes(path: Path) -> None:
    module_calls = {
        node.func.attr
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "random"
    }
    assert not module_calls, f"{path.name} uses the global random source: {module_calls}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_each_module_stays_small(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400
