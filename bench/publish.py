"""The publisher's hot path as the trading code sees it: the time one `publish()` takes.

Timed call by call (`perf_counter_ns` around each call) while the publisher's own sender
thread works in the same process, once with the broker up and once with the bootstrap
pointing at a port nobody listens on (the breaker opens and the queue fills).
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

from amc_learning.entrypoints import infra
from amc_learning.schemas.registry import EVENT_ADAPTER
from amc_learning.settings import Settings
from amc_learning.streams.publisher import LearningPublisher
from bench.workload import records

_NOISY = ("amc_learning.streams.publisher", "aiokafka")


def _percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def hot_path(settings: Settings, calls: int, broker_up: bool) -> dict[str, Any]:
    """Median, p99 and max of `calls` publish() calls, in microseconds."""
    if not broker_up:  # nobody listens there; the publisher's warnings say so, expectedly
        settings = settings.with_overrides(kafka_bootstrap=f"127.0.0.1:{infra.free_port()}")
        for name in _NOISY:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    events = [EVENT_ADAPTER.validate_json(r.value) for r in records(calls)]
    publisher = LearningPublisher.from_settings(settings).start()
    took: list[int] = []
    clock = time.perf_counter_ns
    try:
        time.sleep(0.5)  # let it connect (or fail to) first: the steady state is measured
        for event in events:
            started = clock()
            publisher.publish(event)
            took.append(clock() - started)
        if broker_up and not publisher.flush(timeout=60):
            raise RuntimeError(f"the publisher did not drain: {publisher.stats}")
    finally:
        publisher.close(timeout=0.1 if not broker_up else 10)
        for name in _NOISY:
            logging.getLogger(name).setLevel(logging.NOTSET)
    if broker_up and publisher.stats.dropped:
        raise RuntimeError(f"the publisher dropped events with the broker up: {publisher.stats}")
    return {
        "median_us": statistics.median(took) / 1000,
        "p99_us": _percentile(took, 0.99) / 1000,
        "max_us": max(took) / 1000,
        "over_1ms": sum(t > 1_000_000 for t in took),
        "calls": calls,
    }
