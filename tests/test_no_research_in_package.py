"""effvid is the product: no module of it imports the research beside it (research/). Every
effvid module is imported in a fresh process, which must then hold no module from research/
and none of the research's own names."""

import subprocess
import sys

from tests.conftest import REPO_ROOT

IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
from pathlib import Path
import effvid
failed = []
for module in pkgutil.walk_packages(effvid.__path__, "effvid."):
    try:
        importlib.import_module(module.name)
    except ImportError as error:  # an optional dependency missing: not the question here
        failed.append(f"{module.name}: {error}")
research = Path(sys.argv[1]).resolve()
for name, module in sorted(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if path and Path(path).resolve().is_relative_to(research):
        print("RESEARCH", name, path)
for name in ("register", "remedies", "relation_scenes", "tsn", "study_trainer", "vmf_tokens"):
    if name in sys.modules:
        print("RESEARCH", name)
print("IMPORTED", len([m for m in sys.modules if m.startswith("effvid")]))
print("\\n".join("FAILED " + line for line in failed))
"""


def test_no_effvid_module_imports_research_code():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING, str(REPO_ROOT / "research")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("RESEARCH")], result.stdout
    imported = int(next(line for line in lines if line.startswith("IMPORTED")).split()[1])
    assert imported > 50, result.stdout  # the walk reached the package


def test_no_effvid_source_names_the_research():
    """Also the imports a run would only reach lazily, or under a condition."""
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in (REPO_ROOT / "effvid").rglob("*.py")
        if any(
            word in line
            for line in path.read_text().splitlines()
            if line.lstrip().startswith(("import ", "from "))
            for word in ("research", "vmf_tokens", "relation_scenes", "remedies")
        )
    ]
    assert not offenders
