"""LearningPublisher's caller side: never raises, never blocks, bounded, counts drops."""

from __future__ import annotations

from streams.publisher import LearningPublisher
from tests import factories


def unstarted(queue_size: int = 3) -> LearningPublisher:
    return LearningPublisher({"bootstrap_servers": "127.0.0.1:1"}, queue_size=queue_size)


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
