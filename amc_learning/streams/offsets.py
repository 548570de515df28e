"""Kafka offset admin: where a consumer group has committed, where a topic ends, and the
raw sends a test or benchmark needs to know the end offsets of.

OffsetFetch through a consumer that never joins the group: it works on Tansu, unlike the
admin API. End offsets are exact on Tansu only because the outcomes worker produces one
record per batch (`LEARNING_OUTCOMES_PRODUCER_BATCH_BYTES`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from amc_learning.settings import Settings
from amc_learning.streams.kafka import client_options, producer_options, stop_client

#: (full topic name, partition)
Partition = tuple[str, int]


def group_client(settings: Settings, group: str) -> AIOKafkaConsumer:
    """A client that asks for `group`'s committed offsets and never joins it (start it)."""
    return AIOKafkaConsumer(**client_options(settings), group_id=group, enable_auto_commit=False)


async def committed(consumer: AIOKafkaConsumer,
                    partitions: Iterable[Partition]) -> dict[Partition, int]:
    """The committed offset of each partition through a started `group_client` (0: none)."""
    return {(topic, partition): await consumer.committed(TopicPartition(topic, partition)) or 0
            for topic, partition in partitions}


async def committed_offsets(settings: Settings, group: str, partitions: list[Partition],
                            timeout_s: float = 60.0) -> dict[Partition, int]:
    """The group's committed offsets. Raises TimeoutError when the broker does not answer
    within `timeout_s`."""
    consumer = group_client(settings, group)

    async def fetch() -> dict[Partition, int]:
        await consumer.start()
        return await committed(consumer, partitions)

    try:
        return await asyncio.wait_for(fetch(), timeout_s)
    finally:
        await stop_client(consumer, timeout_s=5.0)


async def end_offsets(settings: Settings, topic: str) -> dict[Partition, int]:
    """The end offset of each non-empty partition of `topic`."""
    consumer = AIOKafkaConsumer(**client_options(settings))
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): end for tp, end in ends.items() if end}
    finally:
        await consumer.stop()


async def send_records(settings: Settings,
                       records: list[tuple[str, bytes, bytes]]) -> dict[Partition, int]:
    """Send (full topic, key, value) records as they are; the end offset of each partition."""
    ends: dict[Partition, int] = {}
    if not records:
        return ends
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        futures = [await producer.send(t, value, key=key) for t, key, value in records]
        for metadata in await asyncio.gather(*futures):
            key = (metadata.topic, metadata.partition)
            ends[key] = max(ends.get(key, 0), metadata.offset + 1)
    finally:
        await producer.stop()
    return ends
