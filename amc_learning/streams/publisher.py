"""LearningPublisher: the producer SDK for the discovery, thesis and trading services.

`publish()` is safe on any hot path: it validates cheaply, appends to a bounded
in-memory queue and returns. A background thread with its own event loop serialises
and sends in batches through aiokafka. When the queue is full the oldest event is
dropped and counted; when the broker fails a circuit breaker stops the attempts and
later tries again. Nothing in here raises into the caller or waits on the broker.

The sender thread is Python code and holds the GIL while it works; CPython hands the GIL
to a waiting thread only every `sys.getswitchinterval()` (5 ms by default), so a caller
could wait that long behind it. `start()` therefore lowers the interval to
`switch_interval_s` (0.2 ms; never raises it; None leaves it alone), which bounds how long
any thread of the trading process waits behind the sender (see BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError
from pydantic_core import to_json

from amc_learning.schemas.common import Event
from amc_learning.schemas.registry import EVENT_ADAPTER, TOPIC_OF_EVENT
from amc_learning.settings import Settings
from amc_learning.streams.breaker import CircuitBreaker
from amc_learning.streams.kafka import KafkaConfig
from amc_learning.streams.metrics import track_publisher
from amc_learning.streams.topics import TopicNames

log = logging.getLogger(__name__)


@dataclass
class PublisherStats:
    """Counters of what happened to published events (read them any time)."""

    accepted: int = 0
    invalid: int = 0
    dropped: int = 0
    failed_sends: int = 0
    sent_by_topic: Counter[str] = field(default_factory=Counter)
    #: (topic, partition) -> next offset after the highest acknowledged record.
    acked_end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return sum(self.sent_by_topic.values())


class LearningPublisher:
    """Fire-and-forget event publishing that can never hurt its caller."""

    def __init__(
        self,
        kafka: KafkaConfig,
        *,
        topic_names: TopicNames = TopicNames(),  # noqa: B008 - immutable
        queue_size: int = 100_000,
        breaker: CircuitBreaker | None = None,
        batch_size: int = 2_000,
        switch_interval_s: float | None = 0.0002,
    ) -> None:
        self._options = kafka.producer()
        self._names = topic_names
        self._queue: deque[Event] = deque(maxlen=queue_size)
        self._in_flight = 0
        self._batch_size = batch_size
        self._switch_interval_s = switch_interval_s
        self.breaker = breaker or CircuitBreaker()
        self.stats = PublisherStats()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        track_publisher(self)

    @classmethod
    def from_settings(cls, settings: Settings) -> LearningPublisher:
        return cls(
            KafkaConfig.from_settings(settings),
            topic_names=TopicNames(settings.topic_prefix),
            queue_size=settings.publisher_queue_size,
            breaker=CircuitBreaker(settings.breaker_failure_threshold, settings.breaker_cooldown_s),
        )

    # -- the caller's side: never blocks, never raises ---------------------------------

    def publish(self, event: Event | dict[str, Any]) -> bool:
        """Queue one event for sending. False when it was invalid (counted, never raised)."""
        try:
            if not isinstance(event, Event):
                # the consumer's JSON semantics, whether values are native or already strings
                event = EVENT_ADAPTER.validate_json(to_json(event))
            if len(self._queue) == self._queue.maxlen:
                self.stats.dropped += 1  # the deque discards the oldest on append
            self._queue.append(event)
            self.stats.accepted += 1
            return True
        except ValidationError as exc:
            self.stats.invalid += 1
            log.warning("publisher: invalid event not queued: %s", exc.errors()[:3])
            return False
        except Exception:  # the contract: nothing escapes into trading code
            self.stats.invalid += 1
            log.exception("publisher: unexpected error in publish()")
            return False

    @property
    def queue_depth(self) -> int:
        return len(self._queue) + self._in_flight

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> LearningPublisher:
        """Start the background sender; returns at once even if the broker is down."""
        wanted = self._switch_interval_s
        if wanted is not None and sys.getswitchinterval() > wanted:
            sys.setswitchinterval(wanted)
        if self._thread is None:
            self._thread = threading.Thread(
                target=asyncio.run, args=(self._send_forever(),), name="learning-publisher",
                daemon=True,
            )
            self._thread.start()
        return self

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait (outside any hot path) until everything queued was sent; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.queue_depth and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.queue_depth == 0

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (up to `timeout`), then stop; what is left is counted dropped."""
        self.flush(timeout)
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        left = len(self._queue)
        if left:
            self.stats.dropped += left
            self._queue.clear()
            log.warning("publisher closed with %d unsent events (counted as dropped)", left)

    def __enter__(self) -> LearningPublisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the background side ------------------------------------------------------------

    async def _send_forever(self) -> None:
        producer: AIOKafkaProducer | None = None
        try:
            while not self._closing.is_set():
                if not self.breaker.allow():
                    await asyncio.sleep(0.05)
                    continue
                if producer is None:
                    producer = await self._connect()
                    continue
                if not self._queue:
                    await asyncio.sleep(0.002)
                    continue
                if not await self._send_batch(producer):
                    await _stop_quietly(producer)
                    producer = None
        finally:
            if producer is not None:
                await _stop_quietly(producer)

    async def _connect(self) -> AIOKafkaProducer | None:
        producer = AIOKafkaProducer(**self._options)
        try:
            await producer.start()
        except Exception as exc:
            self.breaker.record_failure()
            log.warning("publisher: broker unreachable (%s); breaker %s", exc, self.breaker.state)
            await _stop_quietly(producer)
            return None
        return producer

    async def _send_batch(self, producer: AIOKafkaProducer) -> bool:
        batch = self._take_batch()
        try:
            futures = []
            for event in batch:
                topic = self._names(TOPIC_OF_EVENT[event.event_type])
                value = event.model_dump_json().encode()
                futures.append(await producer.send(topic, value, key=event.key.encode()))
            results = await asyncio.gather(*futures, return_exceptions=True)
        except Exception as exc:
            results = [exc] * len(batch)
        failed = [event for event, result in zip(batch, results, strict=False)
                  if isinstance(result, BaseException)]
        for result in results:
            if not isinstance(result, BaseException):
                self._record_ack(result)
        if not failed:
            self.breaker.record_success()
            self._in_flight = 0
            return True
        self.stats.failed_sends += len(failed)
        self.breaker.record_failure()
        self._requeue(failed)
        self._in_flight = 0  # only now: until the requeue, flush() must still see them pending
        log.warning("publisher: %d sends failed; breaker %s", len(failed), self.breaker.state)
        return False

    def _take_batch(self) -> list[Event]:
        batch: list[Event] = []
        while self._queue and len(batch) < self._batch_size:
            self._in_flight += 1  # before the pop, so queue_depth never under-counts
            batch.append(self._queue.popleft())
        return batch

    def _requeue(self, failed: list[Event]) -> None:
        """Put failed events back at the front, oldest first, as far as the bound allows."""
        room = (self._queue.maxlen or 0) - len(self._queue)
        keep = failed[-room:] if room > 0 else []
        self.stats.dropped += len(failed) - len(keep)
        self._queue.extendleft(reversed(keep))

    def _record_ack(self, metadata: Any) -> None:
        topic = self._names.base(metadata.topic)
        self.stats.sent_by_topic[topic] += 1
        key = (metadata.topic, metadata.partition)
        end = metadata.offset + 1
        if end > self.stats.acked_end_offsets.get(key, 0):
            self.stats.acked_end_offsets[key] = end


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), timeout=5)
    except Exception:
        log.debug("publisher: producer stop failed", exc_info=True)
