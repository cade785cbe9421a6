"""A dependency-free progress bar for long commands and benchmarks (writes to stderr).

Redraws in place on a terminal; elsewhere (CI logs) prints a line every tenth of the way so
logs stay short.
"""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, total: int, label: str, *, stream=None, width: int = 30):
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_decile = -1

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        decile = self.done * 10 // self.total
        if self._tty or decile != self._last_decile:
            self._last_decile = decile
            self._draw()

    def _draw(self) -> None:
        filled = self.width * self.done // self.total
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        line = (
            f"{self.label:<24} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{self.done}/{self.total} {rate:,.0f}/s"
        )
        self.stream.write(f"\r{line}" if self._tty else f"{line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    @classmethod
    def over(cls, items, label: str, **kwargs):
        """Each of ``items`` (a sized collection), the bar advancing as they are consumed."""
        with cls(len(items), label, **kwargs) as bar:
            for item in items:
                yield item
                bar.advance()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
