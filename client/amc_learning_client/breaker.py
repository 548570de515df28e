"""The client's circuit breaker: it opens after failures in a row and closes again."""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional


class Breaker:
    """Closed: calls go. After `threshold` failures in a row: open for `cooldown_s`
    (doubling, up to `max_cooldown_s`, while trials fail); then one trial call (half
    open): a success closes it, a failure opens it again."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 1.0,
                 max_cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.threshold, self.base, self.max = threshold, cooldown_s, max_cooldown_s
        self.clock = clock
        self.failures = 0
        self.cooldown = cooldown_s
        self.open_until: Optional[float] = None
        self.trial = False
        self.lock = threading.Lock()

    @property
    def state(self) -> str:
        if self.open_until is None:
            return "closed"
        return "half_open" if self.clock() >= self.open_until else "open"

    def allow(self) -> bool:
        with self.lock:
            if self.open_until is None:
                return True
            if self.clock() < self.open_until or self.trial:
                return False
            self.trial = True  # one trial at a time
            return True

    def success(self) -> None:
        with self.lock:
            self.failures, self.open_until, self.trial = 0, None, False
            self.cooldown = self.base

    def failure(self) -> None:
        with self.lock:
            self.failures += 1
            if self.trial:  # the trial failed: open again, for longer
                self.cooldown = min(self.max, self.cooldown * 2)
            if self.trial or self.failures >= self.threshold:
                self.open_until = self.clock() + self.cooldown
            self.trial = False

    def wait(self) -> float:
        """Seconds until a call may go (0: now)."""
        until = self.open_until
        return 0.0 if until is None else max(0.0, until - self.clock())
