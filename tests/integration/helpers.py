"""Helpers of the integration tests: publish for real, read tables and topics for real."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from amc_learning.settings import Settings
from schemas.common import Event
from streams.kafka import client_options, producer_options
from streams.publisher import LearningPublisher


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
