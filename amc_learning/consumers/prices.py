"""The `prices` process: a prices sync (`service.prices`) after every session close, until
SIGTERM; with its metrics and /healthz. A provider that cannot be reached costs this
process a degraded health and a retry at the next poll, never another process anything."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import date

from amc_learning.consumers import ops
from amc_learning.consumers.metrics import (
    PRICES_FAILURES,
    PRICES_LAST_SUCCESS,
    PRICES_PUBLISHED,
    PRICES_THROTTLED,
    PRICES_WAITED,
    PRICES_WAITING,
)
from amc_learning.intelligence import calendar
from amc_learning.market.providers import Provider
from amc_learning.service.deps import Deps
from amc_learning.service.prices import plan, sync

log = logging.getLogger(__name__)


def main(deps: Deps, provider: Provider) -> int:
    """Entry of `amc-learning consume prices`: one sync per newly closed session."""
    settings = deps.settings
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    health: list[tuple[ops.Status, str]] = [("ready", "waiting for a session to close")]
    ops.serve(settings, "prices", lambda: health[0])
    done: date | None = None
    while not stop.is_set():
        closed = calendar.last_closed(deps.clock())
        if closed != done:
            try:
                summary = sync(deps, provider, say=log.info)
                done = closed
                PRICES_PUBLISHED.labels(provider.name).inc(summary["published"])
                PRICES_WAITED.labels(provider.name).inc(summary["waited_s"])
                PRICES_THROTTLED.labels(provider.name).inc(summary["throttled"])
                PRICES_LAST_SUCCESS.set_to_current_time()
                with deps.db.unit_of_work(snapshot=True) as uow:
                    PRICES_WAITING.set(len(plan(uow, settings, deps.clock()).missing))
                health[0] = ("ready", f"synced through {closed}: {summary['published']} bars, "
                                      f"{len(summary['failed'])} symbols refused")
            except Exception as exc:  # the next poll tries again
                PRICES_FAILURES.labels(provider.name).inc()
                log.warning("prices: sync failed: %s: %s", type(exc).__name__, exc)
                health[0] = ("degraded", f"last sync failed: {type(exc).__name__}: {exc}")
        stop.wait(settings.prices_poll_s)
    return 0
