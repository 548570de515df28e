"""How to reach Kafka (`KafkaConfig`, typed, what the SDK classes take), the options of
every aiokafka client built from it, and how to stop a client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from amc_learning.settings import Settings
from amc_learning.streams.topics import TopicNames

log = logging.getLogger(__name__)
AIOKafkaClient: TypeAlias = AIOKafkaConsumer | AIOKafkaProducer


@dataclass(frozen=True)
class KafkaConfig:
    """How to reach Kafka, typed: what a producer service or a trading engine passes to
    `LearningPublisher` and `ParamsReader` (`from_settings` builds it from `LEARNING_*`)."""

    bootstrap_servers: str
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    #: Real Kafka only: Tansu refuses InitProducerId.
    enable_idempotence: bool = False
    #: The largest record a producer sends (and a consumer must fetch), in bytes.
    max_record_bytes: int = 262_144
    request_timeout_ms: int = 10_000

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise ValueError("no Kafka bootstrap servers: set LEARNING_KAFKA_BOOTSTRAP")

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaConfig:
        password = settings.kafka_sasl_password
        return cls(
            bootstrap_servers=settings.kafka_bootstrap or "",
            security_protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=password.get_secret_value() if password else None,
            ssl_cafile=_path(settings.kafka_ssl_cafile),
            ssl_certfile=_path(settings.kafka_ssl_certfile),
            ssl_keyfile=_path(settings.kafka_ssl_keyfile),
            enable_idempotence=settings.kafka_enable_idempotence,
            max_record_bytes=settings.max_event_bytes,
        )

    def client(self) -> dict[str, Any]:
        """bootstrap_servers plus security options, ready to splat into any aiokafka client."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                                   "security_protocol": self.security_protocol}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile)
        if self.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def producer(self) -> dict[str, Any]:
        """acks=all, batched, idempotence only where the broker supports it."""
        return {
            **self.client(),
            "acks": "all",
            "linger_ms": 10,
            "max_batch_size": 262_144,
            "max_request_size": max(1_048_576, self.max_record_bytes * 2),
            "enable_idempotence": self.enable_idempotence,
            "request_timeout_ms": self.request_timeout_ms,
        }

    def consumer(self, group_id: str) -> dict[str, Any]:
        """A manually committing group consumer that joins fast.

        Tansu holds a join for about half the session timeout (measured: 10 s -> 5 s, 6 s ->
        3 s); 6 s is the smallest Kafka accepts by default (group.min.session.timeout.ms)."""
        return {
            **self.client(),
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": 6_000,
            "heartbeat_interval_ms": 1_000,
            "rebalance_timeout_ms": 10_000,
            "max_partition_fetch_bytes": max(1_048_576, self.max_record_bytes * 2),
            "fetch_max_bytes": 52_428_800,
        }


def client_options(settings: Settings) -> dict[str, Any]:
    """`KafkaConfig.client` of the settings."""
    return KafkaConfig.from_settings(settings).client()


def consumer_options(settings: Settings, group_id: str) -> dict[str, Any]:
    """`KafkaConfig.consumer` of the settings."""
    return KafkaConfig.from_settings(settings).consumer(group_id)


def producer_options(settings: Settings) -> dict[str, Any]:
    """`KafkaConfig.producer` of the settings."""
    return KafkaConfig.from_settings(settings).producer()


def _path(value: object) -> str | None:
    return str(value) if value else None


class Kafka:
    """A process's way to Kafka: clients made with its settings' options, in one place
    (the composition root builds it; a unit test passes a fake with the same methods)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def producer(self, **overrides: Any) -> AIOKafkaProducer:
        """A producer (not started) with the settings' options, and `overrides`."""
        return AIOKafkaProducer(**{**producer_options(self.settings), **overrides})

    def consumer(self, *topics: str, group: str) -> AIOKafkaConsumer:
        """A consumer (not started) of `topics` (full names) in consumer group `group`."""
        return AIOKafkaConsumer(*topics, **consumer_options(self.settings, group))

    def topic(self, base: str) -> str:
        """The full name of a topic (the settings' prefix, then its base name)."""
        return TopicNames(self.settings.topic_prefix)(base)


async def stop_client(client: AIOKafkaClient, timeout_s: float = 10.0) -> bool:
    """Stop an aiokafka consumer or producer within `timeout_s`, whatever state it is in;
    True when it closed cleanly.

    Two things in aiokafka 0.14 would otherwise escape a worker told to stop:
    * `stop()` can raise a CancelledError of its own: the fetcher (and the group
      coordinator) cancel their background tasks and then await them unguarded
      (aio-libs/aiokafka#647), which happens when a fetch was retrying after a broker
      fault. Absorbed here; a cancellation of the caller's own task is re-raised.
    * leaving the group and flushing the producer wait on a broker that may not answer
      (a network partition): bounded by `timeout_s`.
    Nothing is lost by an unclean close: offsets are committed per batch, and what was not
    committed is read again by the next member of the group.
    """
    task = asyncio.current_task()
    try:
        await asyncio.wait_for(client.stop(), timeout_s)
        return True
    except asyncio.CancelledError:
        if task is not None and task.cancelling():
            raise
        why = "aiokafka cancelled its own background task (aio-libs/aiokafka#647)"
    except TimeoutError:
        why = f"the broker did not answer within {timeout_s:.0f} s"
    except (KafkaError, OSError) as exc:
        why = f"{type(exc).__name__}: {exc}"
    log.warning("%s closed uncleanly: %s", type(client).__name__, why)
    # stop() was cut short before it closed the connections: close them ourselves
    connections = getattr(client, "_client", None)
    if connections is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connections.close(), 2.0)
    return False
