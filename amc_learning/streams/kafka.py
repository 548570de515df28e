"""Connection options shared by every aiokafka client, built from the settings; and how to
stop one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context

from amc_learning.settings import Settings

log = logging.getLogger(__name__)
AIOKafkaClient: TypeAlias = AIOKafkaConsumer | AIOKafkaProducer


def client_options(settings: Settings) -> dict[str, Any]:
    """bootstrap_servers plus security options, ready to splat into any aiokafka client."""
    if not settings.kafka_bootstrap:
        raise ValueError("no Kafka bootstrap servers: set LEARNING_KAFKA_BOOTSTRAP")
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=_path(settings.kafka_ssl_cafile),
            certfile=_path(settings.kafka_ssl_certfile),
            keyfile=_path(settings.kafka_ssl_keyfile),
        )
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        password = settings.kafka_sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def consumer_options(settings: Settings, group_id: str) -> dict[str, Any]:
    """A manually committing group consumer that joins fast.

    Tansu holds a join for about half the session timeout (measured: 10 s -> 5 s, 6 s ->
    3 s); 6 s is the smallest Kafka accepts by default (group.min.session.timeout.ms)."""
    return {
        **client_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 1_000,
        "rebalance_timeout_ms": 10_000,
        "max_partition_fetch_bytes": max(1_048_576, settings.max_event_bytes * 2),
        "fetch_max_bytes": 52_428_800,
    }


def producer_options(settings: Settings) -> dict[str, Any]:
    """acks=all, batched, idempotence only where the broker supports it."""
    return {
        **client_options(settings),
        "acks": "all",
        "linger_ms": 10,
        "max_batch_size": 262_144,
        "max_request_size": max(1_048_576, settings.max_event_bytes * 2),
        "enable_idempotence": settings.kafka_enable_idempotence,
        "request_timeout_ms": 10_000,
    }


def _path(value: object) -> str | None:
    return str(value) if value else None


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
