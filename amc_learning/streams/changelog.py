"""What the outcome tracker's state holds, read from its changelog topic without joining
its group: the decisions each symbol's state tracks or has finished.

The outcomes worker keeps each symbol's `tracking.SymbolState` in a Faust table whose
changelog is the topic `<app id>-<table>-changelog` (compacted; the key is the symbol, the
value the state's JSON, the newest value of a key is the state). A broker that forgot its
topics, or a changelog that was deleted, leaves the worker with nothing, while PostgreSQL
still holds every decision it was following (`service.rebuild`).
"""

from __future__ import annotations

import asyncio
import json

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


async def held(settings: Settings, timeout_s: float = 300.0) -> dict[str, set[str]]:
    """Per symbol, the decision ids its state tracks or has finished, as of the
    changelog's end now ({} for a changelog that is missing or empty). Only the ids are
    kept, so memory grows with the decisions, not with the bars. TimeoutError when the
    changelog is not read to its end within `timeout_s`."""
    return await asyncio.wait_for(_held(settings), timeout_s)


async def _held(settings: Settings) -> dict[str, set[str]]:
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    out: dict[str, set[str]] = {}
    try:
        topic = changelog_topic(settings)
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end}
        if not ends:
            return out
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        left = dict(ends)
        while left:
            batches = await consumer.getmany(*left, timeout_ms=1000, max_records=5_000)
            for records in batches.values():
                for record in records:
                    symbol = (record.key or b"").decode()
                    if record.value is None:  # a tombstone: the symbol's state is gone
                        out.pop(symbol, None)
                        continue
                    state = json.loads(record.value)
                    out[symbol] = set(state.get("tracked", ())) | set(state.get("done", ()))
            for tp in list(left):
                if await consumer.position(tp) >= left[tp]:
                    del left[tp]
        return out
    finally:
        await stop_client(consumer, timeout_s=5.0)
