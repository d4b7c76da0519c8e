"""Build a cache folder under a private name, then publish it whole (the demo dataset, the frame
cache): readers never see a half-built folder, and several processes building the same folder
at once (two lanes of a study starting on a fresh cache) do not disturb each other.

    partial = staging_folder(final)       # <final>.partial-<pid>, empty
    ...write into partial...
    publish(partial, final, done=lambda: (final / "index.json").is_file())
"""

import glob
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def staging_folder(final: Path) -> Path:
    """A fresh private folder beside `final` for this process to build in. Folders that builders
    no longer running (killed) left beside `final` are removed; a running builder's are kept."""
    for stale in final.parent.glob(f"{glob.escape(final.name)}.partial-*"):
        pid = stale.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    partial = final.with_name(f"{final.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    return partial


def publish(partial: Path, final: Path, done: Callable[[], bool]) -> None:
    """Move the finished `partial` to `final`, replacing whatever incomplete folder is there,
    unless another process published a complete one first (`done()`): that one is kept, since
    it may be in use already, and `partial` removed."""
    if done():
        shutil.rmtree(partial)
        return
    shutil.rmtree(final, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(final)
