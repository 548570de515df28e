"""Replay and backfill: re-read topics into a database through persist's own handler.

No consumer group and no commits: every partition of the chosen topics is assigned, read
from the start of the window to the end it had when the replay began, and each record whose
timestamp lies in [from, to) goes through `persist_handler` (the live consumer's decode,
validate, map and idempotent store; rejects are dead-lettered in the target's table), so
replaying twice changes nothing.

Time bounds are exact on any broker. `offsets_for_times` only chooses where to start, and
the choice is verified: the record just before it must be older than `from`, else (a
missing or wrong time index: Tansu answers 0, see FACTS.md) the partition is scanned from
its beginning. Every record is then filtered on its own timestamp, and a partition is read
to its end, because producer timestamps need not be monotone. The end is the fetch
high-water mark (Tansu's ListOffsets end is wrong, the fetch's is right).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from amc_learning.consumers.loop import BatchResult, Handler
from amc_learning.consumers.persist import persist_handler
from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.store.rows import PERSIST_TOPICS
from amc_learning.store.sink import BatchStore
from amc_learning.streams.kafka import client_options
from amc_learning.streams.topics import TopicNames

log = logging.getLogger(__name__)


@dataclass
class ReplayStats:
    read: int = 0  # records fetched
    in_window: int = 0  # of them, inside [from, to)
    stored: dict[str, int] = field(default_factory=dict)  # rows inserted per table
    dead_lettered: int = 0
    scanned_partitions: int = 0  # partitions whose time index was missing or wrong
    total: int = 0  # records to read (known once every partition was fetched once)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


async def replay(
    settings: Settings, topics: list[str], into: Database, *,
    since: datetime | None = None, until: datetime | None = None,
    progress: Callable[[ReplayStats], None] | None = None, batch: int = 5000,
) -> ReplayStats:
    """Replay `topics` (base names) into the database `into`; see the module docstring."""
    unknown = [t for t in topics if t not in PERSIST_TOPICS]
    if unknown:
        raise ValueError(f"cannot replay {', '.join(unknown)}: replayable topics are "
                         f"{', '.join(PERSIST_TOPICS)}")
    names = TopicNames(settings.topic_prefix)
    handler = persist_handler(BatchStore(into), names, settings.max_event_bytes)
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False,
                                max_partition_fetch_bytes=max(1_048_576,
                                                              settings.max_event_bytes * 2))
    stats = ReplayStats()
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            found = consumer.partitions_for_topic(names(topic))
            if not found:
                raise ValueError(f"topic {names(topic)} does not exist on the broker")
            partitions += [TopicPartition(names(topic), p) for p in sorted(found)]
        consumer.assign(partitions)
        starts = await window_starts(consumer, partitions, _ms(since), stats)
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        ends: dict[TopicPartition, int] = {}
        left = set(partitions)
        first_ms, last_ms = _ms(since), _ms(until)
        while left:
            fetched = await consumer.getmany(*left, timeout_ms=500, max_records=batch)
            for tp in list(left):
                if tp not in ends and consumer.highwater(tp) is not None:
                    ends[tp] = consumer.highwater(tp)
                    stats.total += max(0, ends[tp] - starts[tp])
            records = []
            for tp, rows in fetched.items():
                end = ends.get(tp)
                for r in rows:
                    if end is not None and r.offset >= end:
                        break
                    stats.read += 1
                    if ((first_ms is None or r.timestamp >= first_ms)
                            and (last_ms is None or r.timestamp < last_ms)):
                        records.append(r)
            for tp in list(left):
                end = ends.get(tp)
                if end is not None and await consumer.position(tp) >= end:
                    left.discard(tp)
            if records:
                result = await asyncio.to_thread(_store, handler, records)
                stats.in_window += len(records)
                for table, n in result.inserted.items():
                    stats.stored[table] = stats.stored.get(table, 0) + n
                stats.dead_lettered += len(result.dead_letters)
            if progress is not None:
                progress(stats)
    finally:
        await consumer.stop()
    return stats


def _store(handler: Handler, records: list[Any]) -> BatchResult:
    return handler.store(handler.prepare(records))


async def window_starts(consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                  since_ms: int | None, stats: ReplayStats) -> dict[TopicPartition, int]:
    """Where each partition's window begins: the time index's answer when verified, else
    the beginning (see the module docstring)."""
    earliest = await consumer.beginning_offsets(partitions)
    if since_ms is None:
        return dict(earliest)
    found = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
    starts = {}
    for tp in partitions:
        answer = found.get(tp)
        offset = answer.offset if answer is not None else None
        if offset is not None and offset > earliest[tp] and await _older(consumer, tp,
                                                                         offset - 1, since_ms):
            starts[tp] = offset
        else:
            if offset is not None and offset > earliest[tp]:
                log.warning("replay: the time index of %s is wrong; scanning it", tp)
            stats.scanned_partitions += 1
            starts[tp] = earliest[tp]
    return starts


async def _older(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int,
                 since_ms: int) -> bool:
    """Is the record at `offset` older than `since_ms` (so the window cannot start earlier)?"""
    consumer.seek(tp, offset)
    for _ in range(20):
        rows = (await consumer.getmany(tp, timeout_ms=500, max_records=1)).get(tp, [])
        if rows:
            return bool(rows[0].offset == offset and rows[0].timestamp < since_ms)
    return False
