"""Prometheus metrics of the two pieces the trading side embeds: `LearningPublisher` and
`ParamsReader`, in the embedding process's default registry.

They are read at scrape time from the objects' own counters (one collector for every live
instance, labelled `publisher="1"`, `reader="1"`, ...), so the hot paths (`publish()`,
`get()`) pay nothing for them.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from amc_learning.streams.params import ParamsReader
    from amc_learning.streams.publisher import LearningPublisher

_BREAKER_STATES = ("closed", "half_open", "open")


class _Collector:
    def __init__(self) -> None:
        self.publishers: weakref.WeakValueDictionary[str, LearningPublisher] = (
            weakref.WeakValueDictionary())
        self.readers: weakref.WeakValueDictionary[str, ParamsReader] = (
            weakref.WeakValueDictionary())
        self._numbers = itertools.count(1)

    def number(self) -> str:
        return str(next(self._numbers))

    def describe(self) -> list[Metric]:
        return []  # names vary with the instances alive; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._publishers()
        yield from self._readers()

    def _publishers(self) -> Iterator[Metric]:
        label = ["publisher"]
        depth = GaugeMetricFamily("learning_publisher_queue_depth",
                                  "events queued or in flight", labels=label)
        totals = {name: CounterMetricFamily(f"learning_publisher_{name}", text, labels=label)
                  for name, text in (("accepted", "events queued"),
                                     ("invalid", "events refused by validation"),
                                     ("dropped", "events dropped: queue full or unsendable"),
                                     ("sent", "events acknowledged by the broker"))}
        breaker = GaugeMetricFamily("learning_publisher_circuit_state",
                                    "1 for the breaker's current state", labels=[*label, "state"])
        for number, publisher in list(self.publishers.items()):
            stats = publisher.stats
            depth.add_metric([number], publisher.queue_depth)
            for name, family in totals.items():
                family.add_metric([number], getattr(stats, name))
            for state in _BREAKER_STATES:
                breaker.add_metric([number, state], float(publisher.breaker.state == state))
        yield depth
        yield from totals.values()
        yield breaker

    def _readers(self) -> Iterator[Metric]:
        version = GaugeMetricFamily("learning_params_version", "the version get() returns "
                                    "without a decision key (0: fallback)",
                                    labels=["reader", "name"])
        age = GaugeMetricFamily("learning_params_age_seconds", "time since the version "
                                "get() returns was issued", labels=["reader", "name"])
        fallback = GaugeMetricFamily("learning_params_fallback", "1 when get() returns the "
                                     "fallback defaults", labels=["reader", "name"])
        connected = GaugeMetricFamily("learning_params_reader_connected",
                                      "1 while the reader follows the topic", labels=["reader"])
        now = time.time()
        for number, reader in list(self.readers.items()):
            connected.add_metric([number], float(reader.connected))
            for name in reader.names():
                view = reader.get(name)
                issued: Any = reader.issued_at(name)
                version.add_metric([number, name], view.version or 0)
                fallback.add_metric([number, name], float(view.source == "fallback"))
                if issued is not None and view.source != "fallback":
                    age.add_metric([number, name], now - issued.timestamp())
        yield from (version, age, fallback, connected)


COLLECTOR = _Collector()
REGISTRY.register(COLLECTOR)  # type: ignore[arg-type]


def track_publisher(publisher: LearningPublisher) -> None:
    COLLECTOR.publishers[COLLECTOR.number()] = publisher


def track_reader(reader: ParamsReader) -> None:
    COLLECTOR.readers[COLLECTOR.number()] = reader
