"""The one consume -> handle -> store -> commit loop that every consumer process runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from amc_learning.consumers import ops
from amc_learning.consumers.metrics import (
    BATCH,
    CONSUMED,
    INSERTED,
    LAG,
    LATENCY,
    REJECTED,
    RETRIED,
    STORE,
    STORED,
)
from amc_learning.consumers.ops import UP
from amc_learning.schemas.dlq import DeadLetter
from amc_learning.store import Unavailable
from amc_learning.store.rows import Record
from amc_learning.streams.kafka import stop_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    """What a handler did with a batch: rows inserted per table, and what it rejected."""

    inserted: dict[str, int]
    dead_letters: list[DeadLetter]


@dataclass(frozen=True)
class Handler:
    """What a consumer does with a batch, in two steps that the loop overlaps.

    `prepare` (pure CPU: decode, validate, map to rows) runs on the loop for batch k+1
    while `store` (one database transaction, in a worker thread, mostly waiting on the
    server) runs for batch k. Batches are stored and committed strictly in order.
    """

    prepare: Callable[[list[Any]], Any]
    store: Callable[[Any], BatchResult]


@dataclass
class LoopStats:
    name: str = "consumer"  # the `consumer` label of the metrics
    consumed: int = 0
    batches: int = 0
    inserted: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0
    retries: int = 0
    health: Literal["starting", "ready", "degraded", "stopped"] = "starting"
    last_error: str = ""


def loop_health(stats: LoopStats) -> tuple[ops.Status, str]:
    """/healthz of a consumer process from its loop's state."""
    if stats.health == "ready":
        return "ready", f"{stats.consumed:,} records handled"
    if stats.health == "degraded":
        return "degraded", f"retrying a batch: {stats.last_error}"
    if stats.health == "starting":
        return "down", f"starting: {stats.last_error or 'joining the group, no batch handled yet'}"
    return "down", "stopped"


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with a ceiling, for transient failures."""

    first_s: float = 0.2
    max_s: float = 10.0

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.first_s * 2 ** max(0, attempt - 1))


Clients = TypeVar("Clients", bound=tuple[AIOKafkaConsumer | AIOKafkaProducer, ...])

#: How long a worker waits for an unreachable broker: 0.5 s, doubling, up to 30 s.
BROKER_BACKOFF = Backoff(first_s=0.5, max_s=30.0)


async def start_clients(
    make: Callable[[], Clients], *, stop: asyncio.Event, stats: LoopStats,
    backoff: Backoff = BROKER_BACKOFF,
) -> Clients | None:
    """Start the clients `make` builds, waiting out a broker that cannot be reached (down,
    not yet up, or a network fault while joining): a warning with the cause and the next
    attempt, then fresh clients (a half-started aiokafka client cannot start again). A
    worker started before its broker begins when the broker does. None once `stop` is set."""
    attempt = 0
    while True:
        attempt += 1
        clients = make()
        try:
            for client in clients:
                if not await until_stopped(client.start(), stop, Grace(0.0)):
                    await _stop_all(clients)
                    return None
            return clients
        except (KafkaError, OSError) as exc:
            await _stop_all(clients)
            delay = backoff.delay(attempt)
            stats.last_error = f"cannot reach Kafka: {exc}"
            log.warning("%s: %s; retrying in %.1f s (attempt %d; check LEARNING_KAFKA_BOOTSTRAP "
                        "if it never comes)", stats.name, stats.last_error, delay, attempt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return None


async def _stop_all(clients: tuple[AIOKafkaConsumer | AIOKafkaProducer, ...]) -> None:
    for client in clients:
        await stop_client(client, timeout_s=2.0)


@dataclass
class Grace:
    """One grace period for a whole stop, counted from the first wait that sees the stop:
    the last batch's dead letters, its commit and closing the clients share it."""

    seconds: float
    since: float | None = None

    def left(self) -> float:
        if self.since is None:
            self.since = time.monotonic()
        return max(0.0, self.since + self.seconds - time.monotonic())


async def until_stopped(work: Awaitable[Any], stop: asyncio.Event, grace: Grace) -> bool:
    """Await `work`; once `stop` is set, give it what is left of `grace` at most, then
    cancel it. True when it finished (its exception, if any, is raised), False when it was
    cut short. A worker told to stop never waits longer on a broker that does not answer."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and (left := grace.left()) > 0:
            await asyncio.wait({task}, timeout=left)
        if task.done():
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return False
    finally:
        stopping.cancel()
        if not task.done():  # our own task was cancelled while waiting
            task.cancel()


def failure_policy(exc: BaseException) -> Literal["retry", "raise"]:
    """The one place that decides what a failure means.

    Connectivity and availability problems of PostgreSQL or Kafka are transient: retry
    the batch (offsets stay uncommitted). Anything else is a bug: raise, so the process
    exits non-zero and its supervisor restarts it from the committed offsets.
    Data the database refuses is not a failure here: handlers dead-letter it themselves.
    """
    transient = (*Unavailable, KafkaError, OSError,
                 asyncio.TimeoutError)
    return "retry" if isinstance(exc, transient) else "raise"


async def consume(
    consumer: AIOKafkaConsumer,
    handler: Handler,
    *,
    dlq_producer: AIOKafkaProducer,
    dlq_topic: str,
    stop: asyncio.Event,
    batch_max_records: int = 5000,
    batch_max_wait_ms: int = 200,
    max_records: int | None = None,
    idle_exit_s: float | None = None,
    backoff: Backoff = Backoff(),
    stats: LoopStats | None = None,
    grace: Grace | None = None,
) -> LoopStats:
    """Run until `stop` is set, `max_records` were handled, or nothing came for `idle_exit_s`.

    Checkpoint order for every batch:
      1. fetch up to `batch_max_records` records, and `prepare` them;
      2. `store` writes the rows *and* dead letters in one database transaction
         (idempotent: replays insert nothing new);
      3. the dead letters are published to the DLQ topic and acknowledged;
      4. the batch's offsets are committed to Kafka.
    While batch k is in step 2, batch k+1 is fetched and prepared (one batch ahead, no
    more). If 2 or 3 fails transiently, 4 is skipped, every partition of both batches is
    rewound to its first offset, the batch ahead is dropped and the work is retried after
    a back-off: nothing is lost, and the idempotent sink makes the replay harmless.
    SIGTERM (via `stop`) lets the batch in hand finish all four steps before the loop
    returns, giving Kafka `grace` to acknowledge steps 3 and 4: a broker that does not
    answer leaves the batch stored but uncommitted, and the next worker reads it again.
    """
    stats = stats or LoopStats()
    grace = grace or Grace(10.0)
    idle_since = time.monotonic()
    attempt = 0
    pending: tuple[list[Any], asyncio.Task[BatchResult]] | None = None
    while True:
        ahead = len(pending[0]) if pending else 0
        records: list[Any] = []
        if not stop.is_set() and (max_records is None or stats.consumed + ahead < max_records):
            fetched = await consumer.getmany(timeout_ms=0 if pending else batch_max_wait_ms,
                                             max_records=batch_max_records)
            records = [r for batch in fetched.values() for r in batch]
        try:
            prepared = handler.prepare(records) if records else None
        except Exception:
            first = records[0]
            log.exception("unexpected failure preparing %s[%d]@%d: stopping", first.topic,
                          first.partition, first.offset)
            raise
        if pending is not None:
            done, pending = pending, None
            if not await _finish(consumer, done, dlq_producer, dlq_topic, stats, stop,
                                 grace):
                if stop.is_set():
                    break
                attempt += 1
                _rewind(consumer, done[0] + records)
                delay = backoff.delay(attempt)
                log.warning("batch of %d failed (%s); retry %d in %.1fs", len(done[0]),
                            stats.last_error, attempt, delay)
                await _sleep_unless(stop, delay)
                continue
            attempt = 0
        if records:
            idle_since = time.monotonic()
            pending = (records, asyncio.create_task(asyncio.to_thread(
                _timed, handler.store, prepared, STORE.labels(stats.name))))
            continue
        if stop.is_set() or (max_records is not None and stats.consumed >= max_records):
            break
        if stats.health == "starting":
            stats.health = "ready"
        if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
            break
    return stats


async def _finish(
    consumer: AIOKafkaConsumer, batch: tuple[list[Any], asyncio.Task[BatchResult]],
    dlq_producer: AIOKafkaProducer, dlq_topic: str, stats: LoopStats,
    stop: asyncio.Event, grace: Grace,
) -> bool:
    """Steps 2-4 of a batch whose store is under way; False on a transient failure, or
    when Kafka did not acknowledge steps 3-4 within the grace of a stop."""
    records, storing = batch
    try:
        result = await storing
        if not (await until_stopped(_publish_dead_letters(dlq_producer, dlq_topic,
                                                          result.dead_letters), stop, grace)
                and await until_stopped(_commit(consumer, records), stop, grace)):
            log.warning("%s: stopping before Kafka acknowledged the last batch (%d records, "
                        "stored): the next worker reads them again", stats.name, len(records))
            return False
    except Exception as exc:
        if failure_policy(exc) == "raise":
            first = records[0]
            log.exception("unexpected failure at %s[%d]@%d: stopping", first.topic,
                          first.partition, first.offset)
            raise
        stats.retries += 1
        stats.health = "degraded"
        stats.last_error = f"{type(exc).__name__}: {exc}"[:500]
        RETRIED.labels(stats.name).inc()
        UP.labels("kafka" if isinstance(exc, KafkaError) else "postgresql").set(0)
        return False
    stats.health = "ready"
    stats.batches += 1
    stats.consumed += len(records)
    stats.inserted.update(result.inserted)
    stats.dead_lettered += len(result.dead_letters)
    _observe(consumer, stats.name, records, result)
    return True


def _timed(store: Callable[[Any], BatchResult], prepared: Any, clock: Any) -> BatchResult:
    with clock.time():
        return store(prepared)


def _observe(consumer: AIOKafkaConsumer, name: str, records: list[ConsumerRecord[Any, Any]],
             result: BatchResult) -> None:
    """The metrics of a committed batch: a few dict operations per batch, not per record."""
    UP.labels("postgresql").set(1)
    UP.labels("kafka").set(1)
    BATCH.labels(name).observe(len(records))
    per_topic = Counter(r.topic for r in records)
    rejected = Counter((d.source_topic, d.reason) for d in result.dead_letters)
    for (topic, reason), n in rejected.items():
        REJECTED.labels(name, topic, reason).inc(n)
    refused = Counter(d.source_topic for d in result.dead_letters)
    for topic, n in per_topic.items():
        CONSUMED.labels(name, topic).inc(n)
        STORED.labels(name, topic).inc(n - refused[topic])
    for table, n in result.inserted.items():
        INSERTED.labels(name, table).inc(n)
    oldest: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        oldest[tp] = min(oldest.get(tp, r.timestamp), r.timestamp)
    now_ms = time.time() * 1000
    for tp, stamp in oldest.items():
        LATENCY.labels(name, tp.topic).observe(max(now_ms - stamp, 0.0) / 1000)
    for tp, committed in _ends(records).items():
        end = consumer.highwater(tp)
        if end is not None:
            LAG.labels(name, tp.topic, str(tp.partition)).set(max(end - committed, 0))


async def _publish_dead_letters(
    producer: AIOKafkaProducer, topic: str, letters: list[DeadLetter]
) -> None:
    futures = []
    for letter in letters:
        key = letter.key_b64.encode() if letter.key_b64 else None
        futures.append(await producer.send(topic, letter.model_dump_json().encode(), key=key))
    if futures:
        await asyncio.gather(*futures)


def _first_offsets(records: list[Record]) -> dict[TopicPartition, int]:
    first: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        first[tp] = min(first.get(tp, r.offset), r.offset)
    return first


def _rewind(consumer: AIOKafkaConsumer, records: list[Record]) -> None:
    assigned = consumer.assignment()
    for tp, offset in _first_offsets(records).items():
        if tp in assigned:
            consumer.seek(tp, offset)


def _ends(records: list[Record]) -> dict[TopicPartition, int]:
    """The offset after each partition's last record: what a commit of `records` says."""
    ends: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        ends[tp] = max(ends.get(tp, 0), r.offset + 1)
    return ends


async def _commit(consumer: AIOKafkaConsumer, records: list[Record]) -> None:
    assigned = consumer.assignment()
    owned = {tp: end for tp, end in _ends(records).items() if tp in assigned}
    try:
        if owned:
            await consumer.commit(owned)
    except CommitFailedError as exc:
        # A rebalance took the partitions away: the new owner re-reads from the last
        # committed offset and the idempotent sink ignores what we already stored.
        log.warning("offset commit lost to a rebalance: %s", exc)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
