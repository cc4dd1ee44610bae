"""Imports point down the layers of design.md only: nothing in the model imports the checker,
and no layer reaches up into the front end."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "ffasim"

# Layers from the bottom up; modules in one layer may import each other.
LAYERS: list[set[str]] = [
    {"abi", "_suggest"},
    {"desc"},
    {"machine"},
    {"spmc"},
    {"xen", "pkvm"},
    {"guest"},
    {"system"},
    {"check"},
    {"trace"},
    {"scenario", "scenarios"},
    {"hunt"},
    {"cli", "strategies", "pytest_plugin", "api", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _top(module: Path) -> str:
    return module.relative_to(ROOT).parts[0].removesuffix(".py")


def _imported_layers(module: Path) -> set[str]:
    """The top-level ffasim packages ``module`` imports, lazily or not."""
    out: set[str] = set()
    package = list(module.relative_to(ROOT).parts[:-1])
    for node in ast.walk(ast.parse(module.read_text(), str(module))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("ffasim.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "ffasim":
                    continue
                if len(parts) > 1:
                    out.add(parts[1])
                else:
                    out |= {a.name for a in node.names}
            else:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
                if target:
                    out.add(target[0])
                else:
                    out |= {a.name for a in node.names}
    return {name for name in out if name in RANK}


MODULES = sorted(p for p in ROOT.rglob("*.py") if _top(p) in RANK)


def test_every_package_has_a_layer() -> None:
    tops = {_top(p) for p in ROOT.rglob("*.py")} - {"__init__"}
    assert tops <= set(RANK), tops - set(RANK)


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(module: Path) -> None:
    me = RANK[_top(module)]
    upward = {name for name in _imported_layers(module) if RANK[name] > me}
    assert not upward, f"{module.relative_to(ROOT)} imports {sorted(upward)} from above its layer"
