"""The persist process: every discovery, thesis, trade and price event into PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime
from typing import Any

from amc_learning.consumers import ops
from amc_learning.consumers.loop import (
    BatchResult,
    Grace,
    Handler,
    LoopStats,
    consume,
    loop_health,
    start_clients,
)
from amc_learning.schemas import topics
from amc_learning.service.deps import Deps
from amc_learning.store import RowRefused
from amc_learning.store.rows import PERSIST_TOPICS, Plan, dead_letter, plan_batch
from amc_learning.store.sink import BatchStore
from amc_learning.streams.kafka import stop_client
from amc_learning.streams.topics import TopicNames

log = logging.getLogger(__name__)
CONSUMER_NAME = "persist"


def persist_handler(store: BatchStore, names: TopicNames, max_event_bytes: int) -> Handler:
    """decode -> validate -> store; rows the database refuses are dead-lettered one by one."""

    def prepare(records: list[Any]) -> Plan:
        return plan_batch(records, consumer=CONSUMER_NAME, base_topic=names.base,
                          max_event_bytes=max_event_bytes)

    def write(plan: Plan) -> BatchResult:
        try:
            return BatchResult(store.write(plan), plan.dead_letters)
        except RowRefused:
            log.warning("batch refused by the database: isolating the offending rows")
            return _write_row_by_row(store, plan)

    return Handler(prepare, write)


def _write_row_by_row(store: BatchStore, plan: Plan) -> BatchResult:
    inserted: dict[str, int] = {}
    refused = []
    for table, rows in plan.rows.items():
        for row, record in zip(rows, plan.sources[table], strict=True):
            try:
                n = store.write(Plan(rows={table: [row]})).get(table.name, 0)
                inserted[table.name] = inserted.get(table.name, 0) + n
            except RowRefused as exc:
                refused.append(dead_letter(record, CONSUMER_NAME, "store_rejected",
                                           str(exc)[:1000], datetime.now(UTC)))
    letters = plan.dead_letters + refused
    store.write(Plan(dead_letters=letters))
    return BatchResult(inserted, letters)


async def run_persist(
    deps: Deps,
    *,
    stop: asyncio.Event | None = None,
    max_records: int | None = None,
    idle_exit_s: float | None = None,
    stats: LoopStats | None = None,
) -> LoopStats:
    """Consume until stopped (or until `max_records` / idle, for tests and benchmarks)."""
    settings = deps.settings
    stop = stop or asyncio.Event()
    names = TopicNames(settings.topic_prefix)
    stats = stats or LoopStats()
    stats.name = CONSUMER_NAME
    started = await start_clients(lambda: (
        deps.kafka.consumer(*(names(t) for t in PERSIST_TOPICS), group=settings.persist_group),
        deps.kafka.producer(),
    ), stop=stop, stats=stats)
    if started is None:
        return stats
    consumer, producer = started
    store = BatchStore(deps.db)
    grace = Grace(settings.stop_grace_s)
    try:
        return await consume(
            consumer,
            persist_handler(store, names, settings.max_event_bytes),
            dlq_producer=producer,
            dlq_topic=names(topics.DLQ),
            stop=stop,
            batch_max_records=settings.batch_max_records,
            batch_max_wait_ms=settings.batch_max_wait_ms,
            max_records=max_records,
            idle_exit_s=idle_exit_s,
            stats=stats,
            grace=grace,
        )
    finally:
        # what is left of the grace, and a second at least to leave the group and flush
        await stop_client(consumer, max(1.0, grace.left()))
        await stop_client(producer, max(1.0, grace.left()))
        store.close()


def main(deps: Deps) -> int:
    """Entry of `amc-learning consume persist`: run until SIGTERM/SIGINT, then drain and exit."""
    settings = deps.settings

    stats = LoopStats(name=CONSUMER_NAME)
    ops.serve(settings, CONSUMER_NAME, lambda: loop_health(stats))

    async def _run() -> LoopStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_persist(deps, stop=stop, stats=stats)

    asyncio.run(_run())
    log.info("persist stopped: consumed=%d inserted=%s dead_lettered=%d retries=%d",
             stats.consumed, dict(stats.inserted), stats.dead_lettered, stats.retries)
    return 0
