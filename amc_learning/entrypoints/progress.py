"""Progress of long commands: a bar with rate and ETA on a terminal, plain periodic lines
otherwise (logs, CI), so neither gets flooded."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Call `update(done)` as work advances and `finish()` at the end."""

    def __init__(self, label: str, total: int | None = None, *, stream: TextIO | None = None,
                 every_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s if not self.tty else 0.1
        self._clock = clock
        self.started = self._clock()
        self._last = float("-inf")
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            self._show(now, final=False)

    def finish(self) -> None:
        self._show(self._clock(), final=True)

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = min(1.0, self.done / self.total)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            bar = "#" * int(share * 24) + "-" * (24 - int(share * 24))
            left = f"ETA {eta:,.0f}s" if eta != float("inf") else "ETA ?"
            return (f"{self.label} [{bar}] {share:4.0%} {self.done:,}/{self.total:,} "
                    f"{rate:,.0f}/s {left}")
        return f"{self.label}: {self.done:,} ({rate:,.0f}/s, {elapsed:,.0f}s)"

    def _show(self, now: float, final: bool) -> None:
        text = self.line(now)
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
