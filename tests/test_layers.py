"""No module of the library imports from a layer above its own."""

from __future__ import annotations

import ast

import pytest
from conftest import ROOT

PACKAGE = ROOT / "src" / "temflow"

#: Lower layers first. A module may import its own layer and the ones below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "io", "seeding", "config", "workflow"),
    ("md", "trajectories", "evaluation"),
    ("hrtem",),
    ("training",),  # the generic loop and model cards: knows no network
    ("models",),
    ("segmentation", "monet"),
    ("apply", "summary", "plots"),
    ("cli",),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def _unit(module: str) -> str:
    """``temflow.segmentation.card`` -> ``segmentation``."""
    return module.split(".")[1]


def _imports(path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names if node.module == "temflow"]
    return [m for m in out if m.startswith("temflow.")]


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_package_has_a_layer():
    units = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in MODULES}
    assert units - {"__init__"} == set(LAYER_OF), "add new packages to LAYERS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_up_the_layers(path):
    parts = path.relative_to(PACKAGE).parts
    own = parts[0].removesuffix(".py")
    if own == "__init__":
        return
    upward = [m for m in _imports(path) if LAYER_OF[_unit(m)] > LAYER_OF[own] and _unit(m) != own]
    assert not upward, f"{path.relative_to(ROOT)} ({own}) imports from a higher layer: {upward}"


def test_models_hold_networks_only():
    # temflow.models imports nothing of temflow but errors (no data, training or tasks).
    for path in (PACKAGE / "models").glob("*.py"):
        assert {_unit(m) for m in _imports(path)} <= {"errors", "models"}, path.name
