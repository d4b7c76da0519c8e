"""Layers one way: a module of effvid imports only from its own part or from parts below it.

    base       effvid.errors, .version, .tables, .files, .extras, .distributed
    models     effvid.models                        data   effvid.data
    train      effvid.train                         inference   effvid.inference
    deploy     effvid.deploy    explain   effvid.explain    demo   effvid.demo
    serving    effvid.serve
    command    effvid.cli

The base modules may use each other; other parts on one row do not import each other (models
and data are independent; training and inference are independent; deploy, explain and the demo
job are independent). Every import counts, also the ones inside functions that load lazily.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "effvid"

LAYERS = {
    "errors": 0, "version": 0, "tables": 0, "files": 0, "extras": 0, "distributed": 0,
    "models": 1, "data": 1,
    "train": 2, "inference": 2,
    "deploy": 3, "explain": 3, "demo": 3,
    "serve": 4,
    "cli": 5,
}  # fmt: skip


def part_of(module: str) -> str:
    """'effvid.inference.predictor' -> 'inference'."""
    return module.split(".")[1]


def imported_modules(path: Path) -> set[str]:
    """Every effvid module `path` imports, at any depth of its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.startswith("effvid.")}


def layer_violations(package: Path, layers: dict[str, int]) -> list[str]:
    """'importer -> imported' for every import that runs up or sideways between parts."""
    wrong = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        if module == "effvid":
            continue  # the public face names modules as strings and imports them lazily
        own = part_of(module)
        for target in imported_modules(path):
            other = part_of(target)
            if other == own or other not in layers:  # an attribute, e.g. effvid.__version__
                continue
            sideways = layers[other] == layers[own] > 0  # the base modules may use each other
            if layers[other] > layers[own] or sideways:
                wrong.append(f"{module} -> {target}")
    return wrong


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    parts = {p for p in parts if not p.startswith("__") and p not in {"configs", "py"}}
    assert parts - {"py"} <= set(LAYERS) | {"py.typed"}, parts - set(LAYERS)


def test_no_import_runs_up_or_sideways():
    assert layer_violations(PACKAGE, LAYERS) == []


def test_the_check_finds_an_import_running_up(tmp_path):
    (tmp_path / "effvid" / "models").mkdir(parents=True)
    (tmp_path / "effvid" / "train").mkdir()
    (tmp_path / "effvid" / "models" / "net.py").write_text(
        "def f():\n    from effvid.train.trainer import Trainer\n"
    )
    (tmp_path / "effvid" / "train" / "trainer.py").write_text("import effvid.models.net\n")
    found = layer_violations(tmp_path / "effvid", LAYERS)
    assert found == ["effvid.models.net -> effvid.train.trainer"]


@pytest.mark.parametrize("sibling", ["effvid.inference.predictor", "effvid.data.dataset"])
def test_the_check_finds_an_import_between_parts_of_one_layer(tmp_path, sibling):
    own = "train" if "inference" in sibling else "models"
    (tmp_path / "effvid" / own).mkdir(parents=True)
    (tmp_path / "effvid" / own / "x.py").write_text(f"from {sibling} import X\n")
    assert layer_violations(tmp_path / "effvid", LAYERS) == [f"effvid.{own}.x -> {sibling}"]
