"""The package's layers, from every import of every module (those inside functions too).

Bottom up: the foundations (errors and version, then atomic, whose refusals are errors),
the extension loader, the ops, the modules over them, config and checkpoints, then data
and the model side by side (neither knows the other), metrics, rendering, and the two
jobs (evaluation, training); the command line on top. A package imports only from
layers below its own, so no two packages import each other (docs/development.md).
"""

import ast
from pathlib import Path

import pytest

import s3d_fast

PACKAGE = Path(s3d_fast.__file__).resolve().parent

LAYERS = [
    {"errors", "version"},
    {"atomic"},  # its refusals are user errors
    {"_ext"},
    {"ops"},
    {"nn"},
    {"compat"},  # other projects' APIs over ops and nn; nothing of the product imports it
    {"config", "checkpoint"},
    {"data", "model"},
    {"metrics"},
    {"render"},
    {"evaluation", "training"},
    {"serve"},  # the web layer over rendering
    {"doctor", "cli"},
    {"__main__", "__init__"},
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path):
    """(line, dotted name) of every s3d_fast module ``path`` imports, wherever it does."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import ops` imports the module s3d_fast.ops
                sub = f"{target}.{alias.name}"
                yield node.lineno, sub if _is_module(sub) else target


def _is_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != "s3d_fast":
        return False
    path = PACKAGE.joinpath(*parts[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def part_of(dotted: str) -> str:
    """The top-level part of the package a module belongs to (``__init__`` for the root)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def product_modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "assets" not in p.parts)


def test_every_part_of_the_package_has_a_layer():
    parts = {part_of(module_name(p)) for p in product_modules()}
    assert parts <= set(RANK), f"parts without a layer: {sorted(parts - set(RANK))}"


@pytest.mark.parametrize("path", product_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_from_layers_below(path):
    here = part_of(module_name(path))
    upward = []
    for line, target in imported_modules(path):
        if not target.startswith("s3d_fast"):
            continue
        there = part_of(target)
        if there != here and RANK[there] >= RANK[here]:
            upward.append(f"line {line}: {target} ({there}, layer {RANK[there]}; {here} is layer {RANK[here]})")
    assert not upward, "imports from the same layer or above:\n" + "\n".join(upward)


def test_the_table_encodes_the_layering_rules():
    """A reorder of LAYERS that loosened one of these rules fails here."""
    assert RANK["nn"] > RANK["ops"] and RANK["model"] > RANK["ops"]  # ops know no nn or model
    for job in ("data", "metrics", "training", "evaluation", "render"):
        assert RANK[job] >= RANK["model"], f"model could import {job}"
    assert RANK["data"] == RANK["model"]  # data imports nothing above it; the model no data
    assert RANK["model"] < RANK["metrics"] < min(RANK["training"], RANK["evaluation"])  # metrics run the expert
