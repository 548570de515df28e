"""Bring a user's history in from files, as `run` brings a simulation in: through the
normal topics and the real consumers, started and stopped here, waiting until every event
is stored and every outcome tracked (what `backtest --events F --bars F` does first)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amc_learning.entrypoints.run import prepare
from amc_learning.entrypoints.supervise import (
    spawn_consumer,
    stop_processes,
    wait_until_settled,
    wait_until_started,
)
from amc_learning.schemas import topics
from amc_learning.service.deps import Deps
from amc_learning.service.event_files import read_events
from amc_learning.service.imports import publish
from amc_learning.service.prices import import_bars
from amc_learning.streams.offsets import end_offsets
from amc_learning.streams.topics import TopicNames

#: the topics a history's events and bars go to
TOPICS = (topics.DISCOVERY, topics.THESIS, topics.TRADES, topics.PRICES)


def bring_in(deps: Deps, *, events: list[Path], bars: list[Path], producer: str | None,
             say: Callable[[str], None]) -> dict[str, Any]:
    """Publish the contract events of `events` and the bars of `bars` with persist and the
    outcome tracker running, and wait until both have consumed everything; per file, what
    it held (every line and row accounted for)."""
    prepare(deps)
    settings = deps.settings
    logs = settings.data_dir / "logs"
    consumers = [spawn_consumer(settings, name, logs) for name in ("persist", "outcomes")]
    out: dict[str, Any] = {"events": None, "bars": []}
    try:
        wait_until_started(settings, consumers)
        if events:
            imported = read_events(events, producer)
            summary = imported.summary()
            say(f"events: {summary['read']:,} read, {len(imported.events):,} valid, "
                f"{sum(summary['rejected'].values()):,} rejected")
            summary["published"] = publish(settings, imported.events)
            out["events"] = summary
        for path in bars:
            out["bars"].append(import_bars(deps, path, say=say))
        names = TopicNames(settings.topic_prefix)
        targets: dict[Any, int] = {}
        for topic in TOPICS:
            targets |= asyncio.run(end_offsets(settings, names(topic)))
        say("waiting for persist and outcomes to store and track everything")
        wait_until_settled(settings, targets, consumers, say)
    finally:
        stop_processes(*consumers)
    return out
