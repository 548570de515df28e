"""Helpers of the integration tests: publish for real, read tables and topics for real."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from amc_learning.entrypoints.supervise import wait_until_consumed
from amc_learning.schemas import topics
from amc_learning.schemas.common import Event
from amc_learning.settings import Settings
from amc_learning.streams.kafka import client_options, producer_options
from amc_learning.streams.offsets import end_offsets
from amc_learning.streams.params import message_key
from amc_learning.streams.publisher import LearningPublisher


def publish(settings: Settings, events: Iterable[Event]) -> LearningPublisher:
    publisher = LearningPublisher.from_settings(settings).start()
    for event in events:
        assert publisher.publish(event)
    assert publisher.flush(timeout=30), publisher.stats
    publisher.close()
    return publisher


async def send_raw(
    settings: Settings, topic: str, values: list[bytes], key: bytes = b"AMC"
) -> None:
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.topic_prefix + topic, value, key=key)
    finally:
        await producer.stop()


async def send_params(settings: Settings, records: list[tuple[bytes | None, Any]],
                      name: str = "default", mode: str = "live") -> None:
    """Params records as they are: (value, its `Signature` or None for none)."""
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        for value, signature in records:
            await producer.send_and_wait(settings.topic_prefix + topics.PARAMS, value,
                                         key=message_key(name, mode),
                                         headers=signature.headers() if signature else None)
    finally:
        await producer.stop()


async def read_topic(
    settings: Settings, topic: str, expected: int, timeout: float = 20
) -> list[Any]:
    consumer = AIOKafkaConsumer(settings.topic_prefix + topic, **client_options(settings),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records.extend(r for rs in batch.values() for r in rs)
    finally:
        await consumer.stop()
    return records


def rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


OUTCOME_COLUMNS = (
    "outcome_type, is_counterfactual, tracked_from, price_at_outcome, return_pct, days_held,"
    " return_1d, return_7d, return_30d, max_favorable_excursion, max_adverse_excursion,"
    " volatility_realized, position_closed, exit_price, exit_reason, catalyst_materialized,"
    " volume_pattern_accuracy, thesis_accuracy_score, sessions_elapsed, revision, last_event_id"
)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def outcome_rows(settings: Settings) -> list[tuple[object, ...]]:
    return rows(settings.database_url,
                f"SELECT d.decision_id, {OUTCOME_COLUMNS} FROM learning_outcomes o"
                " JOIN learning_decisions d ON d.id = o.decision_id ORDER BY d.decision_id")


def publish_and_settle(settings: Settings, events: list, procs: list) -> None:
    """Publish, then wait until persist and outcomes consumed it and persist stored outcomes."""
    publisher = LearningPublisher.from_settings(settings).start()
    for event in events:
        assert publisher.publish(event)
    assert publisher.flush(timeout=60), publisher.stats
    publisher.close()
    settle(settings, dict(publisher.stats.acked_end_offsets), procs)


def settle(settings: Settings, targets: dict, procs: list, timeout_s: float = 120) -> None:
    """Wait until persist and outcomes committed `targets` and persist stored the outcomes."""
    def say(_: str) -> None:
        return None

    wait_until_consumed(settings, settings.persist_group, targets, procs, say, timeout_s)
    group = settings.topic_prefix + settings.outcomes_group
    wait_until_consumed(settings, group, targets, procs, say, timeout_s)
    ends = asyncio.run(end_offsets(settings, settings.topic_prefix + topics.OUTCOMES))
    wait_until_consumed(settings, settings.persist_group, ends, procs, say, timeout_s)


#: Every stored row that stands for a produced event, by its event id.
_STORED_EVENT_IDS = " UNION ALL ".join(
    f"SELECT event_id::text FROM {table}" + (" WHERE NOT is_synthetic" if synthetic else "")
    for table, synthetic in (("learning_decisions", True), ("discovery_candidates", False),
                             ("learning_trades", False), ("price_bars", False),
                             ("catalyst_events", False))
)


def stored_event_ids(database_url: str) -> Counter[str]:
    """How many times each event id is stored (a count above one would be a duplicate)."""
    return Counter(r[0] for r in rows(database_url, _STORED_EVENT_IDS))
