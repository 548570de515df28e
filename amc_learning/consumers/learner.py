"""The `learner` process: it runs the daily learning cycle (`service.cycle`) for the newest
stored session once that session's data have settled, and the weekly one when a new ISO
week starts, until SIGTERM; with the cycles' metrics and its /healthz."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import date
from typing import Any

from amc_learning.consumers import ops
from amc_learning.consumers.metrics import (
    CYCLE_FAILURES,
    CYCLE_LAST_SUCCESS,
    CYCLE_SECONDS,
    DATA_QUALITY,
    LIVE_ECE,
    LIVE_HIT_RATE,
    LIVE_VERSION,
)
from amc_learning.consumers.ops import UP
from amc_learning.service.cycle import run_cycle
from amc_learning.service.deps import Deps
from amc_learning.store import Unavailable

log = logging.getLogger(__name__)


def main(deps: Deps) -> int:
    """Entry of `amc-learning consume learner`: a daily cycle per new session, until SIGTERM."""
    settings = deps.settings
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    last: date | None = None
    health: list[tuple[ops.Status, str]] = [("ready", "waiting for a settled session")]
    ops.serve(settings, "learner", lambda: health[0])
    while not stop.is_set():
        try:
            try:
                newest = due(deps, last)
            except Unavailable:
                UP.labels("postgresql").set(0)
                raise
            UP.labels("postgresql").set(1)
            if newest is not None:
                if last is not None and newest.isocalendar()[:2] != last.isocalendar()[:2]:
                    timed_cycle(deps, "weekly", last)
                summary = timed_cycle(deps, "daily", newest)
                log.warning("learner: daily cycle %s: %s", newest, summary.get("changes"))
                last = newest
                health[0] = ("ready", f"last daily cycle as of {newest}")
        except Exception as exc:  # the learner never dies of one bad cycle; it retries next poll
            log.exception("learner: cycle failed")
            health[0] = ("degraded", f"last cycle failed: {type(exc).__name__}: {exc}")
        stop.wait(settings.learner_poll_s)
    return 0


def due(deps: Deps, last: date | None) -> date | None:
    """The newest session once its data have settled, unless its cycle is `last`: one short
    unit of work on the process's pooled connection (an idle poll opens none)."""
    with deps.db.unit_of_work() as uow:
        newest = uow.frames.last_session(deps.settings.index_symbol)
        if newest is None or newest == last:
            return None
        return newest if uow.params.settled(newest, deps.settings.learner_settle_s) else None


def timed_cycle(deps: Deps, kind: str, as_of: date | None = None) -> dict[str, Any]:
    """`run_cycle` with its metrics: duration, failures, last success, live params quality."""
    try:
        with CYCLE_SECONDS.labels(kind).time():
            summary = run_cycle(deps, kind, as_of)
    except Exception:
        CYCLE_FAILURES.labels(kind).inc()
        raise
    CYCLE_LAST_SUCCESS.labels(kind).set_to_current_time()
    quality = summary.get("live_quality") or {}
    LIVE_VERSION.set(quality.get("version") or 0)
    for gauge, key in ((LIVE_ECE, "ece"), (LIVE_HIT_RATE, "hit_rate")):
        if quality.get(key) is not None:
            gauge.set(quality[key])
    if "data_quality" in summary:  # a cycle that ran: its findings replace the last ones
        DATA_QUALITY.clear()
        for f in summary["data_quality"]:
            DATA_QUALITY.labels(f["producer"], f["scoring_model"], f["kind"]).inc()
    return summary
