"""Files that are whole or absent: what effvid writes appears under its name only when complete.

    with atomic_write(path) as temporary:
        save(..., temporary)          # any writer that takes a path
        check(temporary)              # optional: raise here and `path` is left as it was

The temporary file lies beside `path` (same file system, so the rename is atomic) under a name
private to this process; on success its content is flushed to disk, it replaces `path`, and
the folder entry is flushed too, so that a crash or power cut right after leaves either the
old file or the new one, never a torn one.

Outputs that one process writes over time (a run folder, a prediction file) are owned while
written: `exclusive_lock(path)` holds an OS-level lock on `path + ".lock"` (released by the
operating system when the process ends, however it ends) and refuses a second writer at once.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from effvid.errors import EffvidError


class OutputLockedError(EffvidError):
    """Another process is writing the same output."""


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """A temporary path to write `path`'s new content to; it replaces `path` when the block
    ends without an error, and is removed otherwise (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}{path.suffix}")
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def exclusive_lock(path: str | Path, what: str = "output") -> Iterator[None]:
    """Own `path` (a file or a folder) for the block: OutputLockedError, at once, when another
    process owns it. The lock file (`<path>.lock`, or `.lock` inside a folder) is left behind;
    holding it is what counts, and a killed process holds nothing."""
    path = Path(path)
    lock_file = path / ".lock" if path.is_dir() else path.with_name(f"{path.name}.lock")
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputLockedError(
            f"another effvid process is writing the {what} {path}: wait for it to finish, "
            "or write elsewhere"
        ) from None
    try:
        yield
    finally:
        lock.release()
