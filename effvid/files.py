"""Files that are whole or absent: what effvid writes appears under its name only when complete.

    with atomic_write(path) as temporary:
        save(..., temporary)          # any writer that takes a path
        check(temporary)              # optional: raise here and `path` is left as it was

The temporary file lies beside `path` (same file system, so the rename is atomic) under a name
private to this process; on success its content is flushed to disk, it replaces `path`, and
the folder entry is flushed too, so that a crash or power cut right after leaves either the
old file or the new one, never a torn one.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
