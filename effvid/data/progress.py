"""A small progress bar for long loops (on a terminal; plain lines when output is not one)."""

import sys
import time
from typing import TextIO


class ProgressBar:
    """`checked 120/500 [#####...............] 24% 41.2/s ETA 0:09 3 broken`, rewritten in place
    on a terminal; a plain line every tenth of the way otherwise."""

    def __init__(self, total: int, *, description: str = "", stream: TextIO | None = None):
        self.total = total
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.note = ""
        self._start = time.perf_counter()
        self._interactive = self.stream.isatty()
        self._last_tenth = -1

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def update(self, count: int = 1, *, note: str = "") -> None:
        self.done += count
        self.note = note
        tenth = 10 * self.done // max(self.total, 1)
        if self._interactive:
            self.stream.write("\r" + self._line())
            self.stream.flush()
        elif tenth > self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(self._line() + "\n")

    def _line(self) -> str:
        fraction = self.done / max(self.total, 1)
        bar = "#" * round(20 * fraction)
        rate = self.done / max(time.perf_counter() - self._start, 1e-9)
        remaining = (self.total - self.done) / rate if rate > 0 else 0.0
        minutes, seconds = divmod(round(remaining), 60)
        return (
            f"{self.description} {self.done}/{self.total} [{bar:.<20}] {fraction:4.0%} "
            f"{rate:.1f}/s ETA {minutes}:{seconds:02d} {self.note}".rstrip()
        )

    def close(self) -> None:
        if self._interactive:
            self.stream.write("\n")
            self.stream.flush()
