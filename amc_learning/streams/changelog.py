"""Whether the outcome tracker's changelog holds any state, asked without joining its group.

The outcomes worker keeps each symbol's `tracking.SymbolState` in a Faust table whose
changelog is the topic `<app id>-<table>-changelog` (compacted; the key is the symbol, the
value the state's JSON). A broker that forgot its topics, or a changelog that was deleted,
leaves the worker with nothing, while PostgreSQL still holds every decision it was
following (`service.rebuild`). A changelog that holds anything is the state: Faust
recovers it, and what the worker has not seen yet is still on the input topics.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from amc_learning.settings import Settings
from amc_learning.streams.kafka import client_options, stop_client

#: The outcomes worker's table of per-symbol state.
STATE_TABLE = "outcome_state"


def app_id(settings: Settings) -> str:
    """The outcomes worker's Faust app id (also its consumer group)."""
    return f"{settings.topic_prefix}{settings.outcomes_group}"


def changelog_topic(settings: Settings) -> str:
    return f"{app_id(settings)}-{STATE_TABLE}-changelog"


async def holds_state(settings: Settings) -> bool:
    """Does the changelog hold any record (False: missing or empty)?"""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        topic = changelog_topic(settings)
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return any((await consumer.end_offsets(partitions)).values())
    finally:
        await stop_client(consumer, timeout_s=5.0)  # aiokafka's stop() may raise its own
