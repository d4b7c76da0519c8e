"""Tests of the VMF token study beside effvid (research/vmf_tokens): its scripts, tasks, arms
and remedies. Run apart from effvid's tests: `make research-test`."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

STUDY = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    """research/vmf_tokens/<name>.py as a module (the scripts are not a package), with the
    folder on the path as when the script runs, for the modules it imports from beside it."""
    if str(STUDY) not in sys.path:
        sys.path.insert(0, str(STUDY))
    spec = importlib.util.spec_from_file_location(name, STUDY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
