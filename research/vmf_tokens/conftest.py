"""The research tests import the study's modules as its scripts do, from this folder, with the
study's pieces registered with effvid (register.py)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import register  # noqa: E402, F401
