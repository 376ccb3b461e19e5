"""The package's shape: each module imports only from the layers below it, as the data flows.

Read from the source (every import, also those inside functions), so a new module must be
given its place here before it can import anything of the project.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vis_pipeline

PACKAGE = Path(vis_pipeline.__file__).parent

LAYERS: list[set[str]] = [
    {"errors", "spec", "records", "settings", "sqlfiles", "request_pool", "envfile", "locking"},
    {"progress", "catalog"},
    {"webhook_signing", "spool"},
    {"retry"},
    {"auth"},
    {"client"},
    {"receiver", "subscriptions"},
    {"extract"},
    {"extract_process"},
    {"batch"},
    {"normalize"},
    {"warehouse"},
    {"ad_hoc", "old_warehouse"},
    {"sync", "user_directory", "maintenance"},
    {"reports"},
    {"live"},
    {"health"},
    {"dashboard"},
    {"exports"},
    {"defs"},
    {"webhook_commands"},
    {"cli"},
]
"""Lowest first: ``errors`` < ``client`` < ``extract`` < ... < ``defs`` < ``cli``."""

RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}

SIMULATOR = "simulator"
"""A product of its own beside the pipeline: only the command line starts it."""


def _unit(module: str) -> str:
    """The layer unit of a dotted module name inside the package (its first part)."""
    return module.split(".")[1] if module.count(".") else "__init__"


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if SIMULATOR not in p.relative_to(PACKAGE).parts)


def _imports(path: Path) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(name for name in names if name.startswith("vis_pipeline."))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("vis_pipeline."))
    return {_unit(name) for name in found if _unit(name) != "__init__"} - {""}


def _own_unit(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_from_layers_below_it(path: Path) -> None:
    unit = _own_unit(path)
    if unit == "__init__":
        return
    assert unit in RANK, f"{unit} has no place in LAYERS"
    imported = _imports(path) - {unit}
    # A name imported from a module (``from vis_pipeline import warehouse``) is that module.
    above = {name for name in imported if name in RANK and RANK[name] > RANK[unit]}
    unknown = {name for name in imported if name not in RANK and name != SIMULATOR}
    assert not above, f"{unit} imports {sorted(above)}, which sit above it"
    assert not unknown, f"{unit} imports {sorted(unknown)}, which have no place in LAYERS"
    if unit != "cli":
        assert SIMULATOR not in imported, f"{unit} imports the simulator"


def test_the_client_knows_nothing_of_windows_or_days() -> None:
    imported = _imports(PACKAGE / "client.py")
    assert not imported & {"extract", "extract_process", "sync"}


def test_every_vis_error_is_defined_in_errors() -> None:
    errors = ast.parse((PACKAGE / "errors.py").read_text(encoding="utf-8"))
    error_names = {node.name for node in errors.body if isinstance(node, ast.ClassDef)}
    exceptions = error_names | {"Exception", "ValueError", "RuntimeError", "OSError"}
    elsewhere = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {base.id for base in node.bases if isinstance(base, ast.Name)}
            is_vis_error = bool(bases & error_names) or (
                node.name.startswith("VIS") and bool(bases & exceptions)
            )
            if is_vis_error and path.name != "errors.py":
                elsewhere.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert not elsewhere
