"""Ingest, end to end, beside the two raw limits of the same machine and the same data.

* `end_to_end`: the persist consumer (`consumers.persist.run_persist`, the code the
  process runs) started cold on a new consumer group, until every event is stored.
* `raw_consume`: a bare aiokafka consumer that fetches every record and `json.loads` it.
* `raw_copy`: a bare psycopg COPY of the very rows persist writes, into tables shaped like
  the real ones but without their indexes and conflict checks.
* `sink_only`: the sink alone (`store.sink.BatchStore`), the same COPY and upserts into the
  same indexed tables, the batches planned in advance: no Kafka, no decoding. End to end
  over it is the pipeline's overhead on its own database work.
* `scale`: 1, 2, 3 persist processes in one group, from spawn until every offset is
  committed (the process start-up is part of the figure, as it is in production).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from psycopg import sql

from amc_learning.consumers.loop import LoopStats
from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.entrypoints.supervise import spawn_consumer, stop_processes
from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.store.rows import ALL_TABLES, Plan, plan_batch
from amc_learning.store.sink import BatchStore
from amc_learning.streams.kafka import client_options
from amc_learning.streams.offsets import committed_offsets, send_records
from bench.workload import Record


@dataclass
class _Consumed:
    """The shape `store.rows.plan_batch` reads (an aiokafka ConsumerRecord's fields)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def publish(settings: Settings, records: list[Record]) -> dict[tuple[str, int], int]:
    """Send `records` (setup, not measured); return the end offset of every partition."""
    return asyncio.run(send_records(
        settings, [(settings.topic_prefix + r.topic, r.key, r.value) for r in records]))


def raw_consume(settings: Settings, ends: dict[tuple[str, int], int]) -> float:
    """Seconds for a bare consumer to fetch and json-decode every record up to `ends`."""
    import json

    async def go() -> float:
        consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False,
                                    max_partition_fetch_bytes=4 * 1024 * 1024)
        await consumer.start()
        try:
            partitions = [TopicPartition(t, p) for t, p in ends]
            consumer.assign(partitions)
            await consumer.seek_to_beginning()
            left = sum(ends.values())
            started = time.perf_counter()
            while left > 0:
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for rows in batch.values():
                    for r in rows:
                        json.loads(r.value)
                    left -= len(rows)
            return time.perf_counter() - started
        finally:
            await consumer.stop()

    return asyncio.run(go())


def rows_of(records: list[Record], prefix: str) -> dict[Any, list[tuple[Any, ...]]]:
    """The table rows persist makes of `records` (its own `plan_batch`)."""
    consumed = [_Consumed(prefix + r.topic, 0, i, r.key, r.value) for i, r in enumerate(records)]
    plan = plan_batch(consumed, consumer="bench", base_topic=lambda t: t.removeprefix(prefix),
                      max_event_bytes=1 << 20)
    assert not plan.dead_letters, plan.dead_letters[:1]
    return plan.rows


def raw_copy(database_url: str, rows: dict[Any, list[tuple[Any, ...]]]) -> float:
    """Seconds to COPY `rows` into index-free copies of their tables (made and dropped here)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        names = {t: sql.Identifier(f"bench_copy_{t.name}") for t in rows}
        for table, name in names.items():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(name))
            conn.execute(sql.SQL("CREATE TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
                name, sql.SQL(", ").join(map(sql.Identifier, table.columns)),
                sql.Identifier(table.name)))
        started = time.perf_counter()
        for table, batch in rows.items():
            for chunk in _chunks(batch, 5000):
                with conn.transaction(), conn.cursor().copy(
                    sql.SQL("COPY {} ({}) FROM STDIN").format(
                        names[table], sql.SQL(", ").join(map(sql.Identifier, table.columns)))
                ) as copy:
                    for row in chunk:
                        copy.write_row(row)
        elapsed = time.perf_counter() - started
        for name in names.values():
            conn.execute(sql.SQL("DROP TABLE {}").format(name))
    return elapsed


def plans_of(records: list[Record], prefix: str, batch: int) -> list[Plan]:
    """The batches persist would store (its own `plan_batch`, `batch` records each)."""
    plans = []
    for start in range(0, len(records), batch):
        consumed = [_Consumed(prefix + r.topic, 0, start + i, r.key, r.value)
                    for i, r in enumerate(records[start:start + batch])]
        plans.append(plan_batch(consumed, consumer="bench",
                                base_topic=lambda t: t.removeprefix(prefix),
                                max_event_bytes=1 << 20))
    assert not any(p.dead_letters for p in plans)
    return plans


def sink_only(database_url: str, plans: list[Plan]) -> float:
    """Seconds for the sink to store `plans` into the empty real tables, one transaction each."""
    truncate(database_url)
    store = BatchStore(Database(database_url))
    try:
        started = time.perf_counter()
        for plan in plans:
            store.write(plan)
        return time.perf_counter() - started
    finally:
        store.close()


def truncate(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(t.name for t in ALL_TABLES) + ", dead_letters,"
                     " outcome_backlog")


@dataclass(frozen=True)
class EndToEnd:
    seconds: float  # cold start (group join included) to every event stored
    steady_per_s: float  # from the first stored batch on


def end_to_end(settings: Settings, total: int) -> EndToEnd:
    """A cold persist consumer (new group) until every event is stored."""
    truncate(settings.database_url or "")
    cold = settings.with_overrides(persist_group=f"bench-{uuid.uuid4().hex[:8]}")
    stats = LoopStats()
    first: list[tuple[float, int]] = []

    async def go() -> None:
        async def watch() -> None:
            while not stats.consumed:
                await asyncio.sleep(0.002)
            first.append((time.perf_counter(), stats.consumed))

        watcher = asyncio.create_task(watch())
        await run_persist(bootstrap(cold), max_records=total, stats=stats)
        await watcher

    started = time.perf_counter()
    asyncio.run(go())
    ended = time.perf_counter()
    if stats.consumed != total or stats.dead_lettered:
        raise RuntimeError(f"persist consumed {stats.consumed} of {total} events, "
                           f"dead-lettered {stats.dead_lettered}")
    at, done = first[0]
    return EndToEnd(ended - started, (total - done) / max(ended - at, 1e-9))


def profile_end_to_end(settings: Settings, total: int, out: Path) -> Path:
    """One more end-to-end run with py-spy sampling this process (every thread, idle time
    included: a thread waiting on PostgreSQL shows as `Connection.wait`); a flame graph."""
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--output", str(out),
         "--format", "flamegraph", "--rate", "200", "--threads", "--idle",
         "--pid", str(os.getpid())],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # let it attach
    try:
        end_to_end(settings, total)
    finally:
        spy.send_signal(signal.SIGINT)
        _, err = spy.communicate(timeout=60)
    if spy.returncode not in (0, -signal.SIGINT) or not out.exists():
        raise RuntimeError(f"py-spy failed (it needs ptrace rights): {err.decode()[-500:]}")
    return out


def scale(settings: Settings, ends: dict[tuple[str, int], int], workers: int) -> float:
    """Seconds from spawning `workers` persist processes (one new group) to all committed."""
    truncate(settings.database_url or "")
    group = f"bench-{uuid.uuid4().hex[:8]}"
    cold = settings.with_overrides(persist_group=group)
    started = time.perf_counter()
    procs = [spawn_consumer(cold, "persist", settings.data_dir / "logs")
             for _ in range(workers)]
    try:
        while True:
            done = asyncio.run(committed_offsets(cold, group, sorted(ends)))
            if all(done[k] >= end for k, end in ends.items()):
                return time.perf_counter() - started
            dead = [p.returncode for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a persist worker exited ({dead}); see {cold.data_dir}/logs")
            time.sleep(0.05)
    finally:
        stop_processes(*procs)


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
