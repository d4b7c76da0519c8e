"""Outputs owned while written: a second writer is refused at once; a killed owner frees them."""

import subprocess
import sys

import pytest

from effvid.files import OutputLockedError, exclusive_lock

HOLD = """
import sys, time
from effvid.files import exclusive_lock
with exclusive_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    return process


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_second_writer_is_refused_and_a_killed_owner_frees_the_output(tmp_path, kind):
    target = tmp_path / ("run" if kind == "folder" else "predictions.jsonl")
    if kind == "folder":
        target.mkdir()
    holder = _holder(target)
    try:
        refused = pytest.raises(OutputLockedError, match="another effvid process is writing")
        with refused, exclusive_lock(target):
            pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive_lock(target):  # the killed process held nothing
        pass


def test_lock_is_released_after_the_block(tmp_path):
    with exclusive_lock(tmp_path / "a.jsonl"):
        pass
    with exclusive_lock(tmp_path / "a.jsonl"):
        pass
