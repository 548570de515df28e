"""The topic registry (names, partitions, configs) and idempotent topic creation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from amc_learning.schemas import topics as names

TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


@dataclass(frozen=True)
class TopicSpec:
    name: str
    keyed_by: str
    partitions: int | None = None  # None: the configured partition count
    config: dict[str, str] = field(default_factory=dict)


REGISTRY: tuple[TopicSpec, ...] = (
    TopicSpec(names.DISCOVERY, "symbol"),
    TopicSpec(names.THESIS, "symbol"),
    TopicSpec(names.TRADES, "symbol"),
    TopicSpec(names.PRICES, "symbol"),
    TopicSpec(names.CATALYSTS, "symbol"),
    TopicSpec(names.OUTCOMES, "symbol"),
    TopicSpec(
        names.PARAMS, "param-set name", partitions=1,
        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
    ),
    TopicSpec(names.INSIGHTS, "insight kind", partitions=1),
    TopicSpec(names.DLQ, "original key"),
)


@dataclass(frozen=True)
class TopicNames:
    """Topic names under an optional prefix (tenancy, isolated tests)."""

    prefix: str = ""

    def __call__(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def base(self, full: str) -> str:
        return full.removeprefix(self.prefix)


async def create_topics(
    options: dict[str, Any], topic_names: TopicNames, partitions: int, replication: int
) -> dict[str, str]:
    """Create every registered topic; existing ones are left alone. Returns name -> status."""
    new = [
        NewTopic(
            topic_names(spec.name), spec.partitions or partitions, replication,
            topic_configs=dict(spec.config),
        )
        for spec in REGISTRY
    ]
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        response = await admin.create_topics(new)
    finally:
        await admin.close()
    status = {}
    for topic, code, message in response.topic_errors:
        if code not in (0, TOPIC_ALREADY_EXISTS):
            raise RuntimeError(f"creating topic {topic} failed: error {code} {message}")
        status[topic] = "created" if code == 0 else "exists"
    return status
