"""Progress bars for long loops: tqdm with effvid's settings."""

import sys

from tqdm.auto import tqdm


def progress_bar(total: int, description: str, *, enabled: bool = True, unit: str = "it") -> tqdm:
    """A tqdm bar on stderr with the rate and the time left: redrawn in place on a terminal or
    in a notebook; where stderr is a log file or a CI console, a line at most every 30 s.
    `enabled=False` gives a silent bar (the same calls work)."""
    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        disable=not enabled,
        mininterval=0.1 if interactive else 30.0,
        dynamic_ncols=True,
    )
