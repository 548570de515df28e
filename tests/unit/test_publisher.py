"""LearningPublisher's caller side: never raises, never blocks, bounded, counts drops."""

from __future__ import annotations

from amc_learning.streams.kafka import KafkaConfig
from amc_learning.streams.publisher import LearningPublisher
from tests import factories


def unstarted(queue_size: int = 3) -> LearningPublisher:
    return LearningPublisher(KafkaConfig("127.0.0.1:1"), queue_size=queue_size)


def test_a_full_queue_drops_the_oldest_and_counts_it():
    publisher = unstarted(queue_size=3)
    events = [factories.bar() for _ in range(5)]
    assert all(publisher.publish(e) for e in events)
    assert publisher.stats.dropped == 2
    assert publisher.stats.accepted == 5
    assert list(publisher._queue) == events[2:]


def test_invalid_input_is_refused_and_counted_not_raised():
    publisher = unstarted()
    assert publisher.publish({"event_type": "thesis_decided", "symbol": "nope"}) is False
    assert publisher.publish(object()) is False  # type: ignore[arg-type]
    assert publisher.stats.invalid == 2
    assert publisher.queue_depth == 0


def test_a_valid_dict_is_validated_into_an_event():
    publisher = unstarted()
    raw = factories.thesis().model_dump(mode="json")
    assert publisher.publish(raw) is True
    assert publisher._queue[0].decision_id == raw["decision_id"]


def test_close_without_a_broker_counts_unsent_events_as_dropped():
    publisher = unstarted()
    publisher.publish(factories.bar())
    publisher.close(timeout=0.1)
    assert publisher.stats.dropped == 1
    assert publisher.stats.sent == 0


def test_its_counters_and_breaker_are_in_the_default_registry_at_no_cost_to_publish():
    from prometheus_client import REGISTRY, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from amc_learning.streams.metrics import COLLECTOR

    publisher = unstarted(queue_size=2)
    number = next(n for n, p in COLLECTOR.publishers.items() if p is publisher)
    for _ in range(3):
        assert publisher.publish(factories.bar())
    assert not publisher.publish({"event_type": "nonsense"})

    def mine():
        text = generate_latest(REGISTRY).decode()
        return {(s.name, s.labels.get("state")): s.value
                for f in text_string_to_metric_families(text) for s in f.samples
                if s.labels.get("publisher") == number}

    seen = mine()
    assert seen[("learning_publisher_accepted_total", None)] == 3
    assert seen[("learning_publisher_dropped_total", None)] == 1
    assert seen[("learning_publisher_invalid_total", None)] == 1
    assert seen[("learning_publisher_queue_depth", None)] == 2
    assert seen[("learning_publisher_circuit_state", "closed")] == 1
    assert seen[("learning_publisher_circuit_state", "open")] == 0
