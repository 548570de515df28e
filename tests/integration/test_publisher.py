"""The publisher against a broker that is absent, then appears."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from amc_learning.entrypoints import infra
from amc_learning.streams.breaker import CircuitBreaker
from amc_learning.streams.kafka import KafkaConfig, client_options
from amc_learning.streams.publisher import LearningPublisher
from amc_learning.streams.topics import TopicNames, create_topics
from tests import factories

pytestmark = pytest.mark.integration


async def test_breaker_opens_while_the_broker_is_away_and_closes_when_it_returns(
    settings, tmp_path
):
    port = infra.free_port()
    absent = settings.with_overrides(kafka_bootstrap=f"127.0.0.1:{port}")
    publisher = LearningPublisher(
        replace(KafkaConfig.from_settings(absent), request_timeout_ms=1000),
        topic_names=TopicNames(settings.topic_prefix),
        breaker=CircuitBreaker(failure_threshold=2, cooldown_s=0.5),
    ).start()
    events = [factories.bar(symbol=s) for s in ("AMC", "GME", "BB")]
    try:
        assert all(publisher.publish(e) for e in events)  # accepted while nothing listens
        for _ in range(200):
            if publisher.breaker.times_opened:
                break
            await asyncio.sleep(0.05)
        assert publisher.breaker.times_opened >= 1
        assert publisher.stats.sent == 0 and publisher.queue_depth == 3

        pid, _ = infra.start_broker(tmp_path / "late-broker.log", port=port)
        try:
            await create_topics(client_options(absent), TopicNames(settings.topic_prefix), 3, 1)
            deadline = time.monotonic() + 30
            while publisher.stats.sent < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert publisher.stats.sent == 3
            assert publisher.breaker.state == "closed"
            assert publisher.stats.dropped == 0
        finally:
            publisher.close(timeout=2)
            infra.stop_process(pid)
    finally:
        publisher.close(timeout=0.1)
