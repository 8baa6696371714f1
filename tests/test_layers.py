"""The layers hold: faces → façade → engine parts → pure core, each importing only downward.

Checked on the source with ``ast``, every import statement of every module, those under
``if TYPE_CHECKING`` and inside functions included, relative ones resolved:

- the HTTP faces (``orchestrator/web/**``) import only the façade (``orchestrator.service``,
  or the package's own exports) and its public types, besides each other's ``web`` modules,
  the standard library and third-party packages; from ``outputs``, ``inputs`` and
  ``admission`` (the façade's records and request models) only classes;
- the panel (``ui/**``) imports nothing of the service at all: it is an HTTP client that
  runs on another machine;
- the pure core (``placeholders/**``) imports only the standard library and itself.

A failure lists each offending ``file:line → module``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = frozenset({"orchestrator", "placeholders", "ui", "tests", "bench"})
FACADE = "orchestrator.service"
PUBLIC_TYPES = frozenset({"orchestrator.errors", "orchestrator.jobs", "orchestrator.tokens",
                          "orchestrator.events", "orchestrator.nodes", "orchestrator.settings"})
# Modules a face may take classes from, but no function or constant: the work stays behind
# the façade. They hold the records the façade returns (``OutputRecord``, ``InputFile``) and
# its request models (``Orchestrator.admit(Admission)``).
TYPES_ONLY = frozenset({"orchestrator.outputs", "orchestrator.inputs", "orchestrator.admission"})
PACKAGE_EXPORTS = "orchestrator"  # orchestrator/__init__.py: the façade and public types


@dataclass(frozen=True)
class Import:
    """One imported module of ours, with the names taken from it ('' for ``import m``)."""

    path: str  # file:line
    module: str
    name: str

    def __str__(self) -> str:
        taken = f" ({self.name})" if self.name else ""
        return f"{self.path} → {self.module}{taken}"


Rule = Callable[[Import], bool]  # True: the import is allowed


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def absolute(node: ast.ImportFrom, path: Path) -> str:
    """The module ``node`` imports from, relative imports resolved against ``path``."""
    if node.level == 0:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(path: Path, source: str | None = None) -> Iterator[Import]:
    """Each import of ours in ``path``; ``from pkg import sub`` counts as ``pkg.sub``."""
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text, filename=str(path))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            yield from (Import(where, alias.name, "") for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node, path)
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                yield (Import(where, sub, "") if is_module(sub)
                       else Import(where, module, alias.name))


def ours(found: Import) -> bool:
    return found.module.split(".")[0] in OURS


def face_may(found: Import) -> bool:
    """A face may import the façade, its public types (types only from ``outputs``), the
    package's exports, the ``web`` modules, and anything not ours."""
    module = found.module
    if not ours(found) or module in (FACADE, PACKAGE_EXPORTS):
        return True
    if module == "orchestrator.web" or module.startswith("orchestrator.web."):
        return True
    if module in TYPES_ONLY:
        return is_class(module, found.name)
    return module in PUBLIC_TYPES


def is_class(module: str, name: str) -> bool:
    return bool(name) and inspect.isclass(getattr(importlib.import_module(module), name, None))


def panel_may(found: Import) -> bool:
    top = found.module.split(".")[0]
    return top not in ("orchestrator", "placeholders")


def core_may(found: Import) -> bool:
    top = found.module.split(".")[0]
    return top == "placeholders" or top in sys.stdlib_module_names


def violations(folder: str, rule: Rule) -> list[str]:
    return [str(found) for path in sorted((ROOT / folder).rglob("*.py"))
            for found in imports_of(path) if not rule(found)]


def test_the_faces_import_only_the_facade_and_its_public_types() -> None:
    found = violations("orchestrator/web", face_may)
    assert not found, "\n".join(["faces reach past the façade:", *found])


def test_the_panel_imports_nothing_of_the_service() -> None:
    found = violations("ui", panel_may)
    assert not found, "\n".join(["the panel imports the service's code:", *found])


# Imports every panel module in a fresh interpreter where the service's packages cannot
# be imported, as on a machine that has only the panel. (Page scripts, ``app.py`` and
# ``views/``, run Streamlit calls when imported; they import only these modules.)
PANEL_ALONE = """
import importlib, importlib.abc, pathlib, sys

class Elsewhere(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("orchestrator", "placeholders"):
            raise ImportError(f"the panel imports {name}")
        return None

sys.meta_path.insert(0, Elsewhere())
for path in sorted(pathlib.Path("ui").glob("*.py")):
    if path.stem != "app":
        importlib.import_module(f"ui.{path.stem}")
print(len([name for name in sys.modules if name.startswith("ui.")]))
"""


def test_the_panel_loads_where_the_service_code_is_out_of_reach() -> None:
    done = subprocess.run([sys.executable, "-c", PANEL_ALONE], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 10  # api, models, form, pool, state, widgets, ...


def test_the_pure_core_imports_only_the_standard_library_and_itself() -> None:
    found = violations("placeholders", core_may)
    assert not found, "\n".join(["the pure core imports outside the standard library:", *found])


FACE = ROOT / "orchestrator" / "web" / "gateway" / "example.py"


@pytest.mark.parametrize(("source", "allowed"), [
    ("from orchestrator.service import Orchestrator", True),
    ("from orchestrator import Orchestrator, JobNotFound", True),
    ("from orchestrator.errors import NotFound", True),
    ("from orchestrator.outputs import OutputRecord", True),
    ("from orchestrator.outputs import output_path", False),
    ("from orchestrator.admission import Admission", True),
    ("from orchestrator.admission import admit", False),
    ("from orchestrator.inputs import InputFile", True),
    ("from orchestrator.inputs import FOLDERS", False),
    ("import orchestrator.outputs", False),
    ("from ..schemas import JobOut", True),
    ("from . import routes", True),
    ("import fastapi\nimport json", True),
    ("from orchestrator.store import JobStore", False),
    ("from orchestrator import registry", False),
    ("from ...validation import check_graph_shape", False),
    ("import placeholders", False),
    ("def f():\n    from orchestrator.comfy.client import ComfyClient", False),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from orchestrator.pool import "
     "NodePool", False),
])
def test_the_face_rule_tells_the_facade_from_the_parts(source: str, allowed: bool) -> None:
    assert all(map(face_may, imports_of(FACE, source))) is allowed


def test_the_panel_rule_refuses_any_service_module() -> None:
    panel = ROOT / "ui" / "views" / "example.py"
    refused = ["from orchestrator.errors import OrchestratorError", "import placeholders",
               "from orchestrator import settings"]
    for source in refused:
        assert not all(map(panel_may, imports_of(panel, source))), source
    assert all(map(panel_may, imports_of(panel, "from ui.models import Job\nimport requests")))
