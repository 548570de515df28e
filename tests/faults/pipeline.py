"""The consumer processes of one test, to kill and restart, and the events they are fed."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from amc_learning.run import committed_offsets, spawn_consumer, stop_processes
from amc_learning.settings import Settings
from consumers.outcomes import INPUT_TOPICS
from schemas.common import Event
from simulator.world import SimConfig, simulate
from streams.publisher import LearningPublisher


@functools.cache
def stream(seed: int, symbols: int, days: int) -> tuple[Event, ...]:
    """The simulated market's events, in the order the services publish them."""
    return tuple(e for day in simulate(SimConfig(seed=seed, symbols=symbols, days=days))
                 for e in day)


@dataclass
class Pipeline:
    """persist and outcomes as real processes, restartable by name."""

    settings: Settings
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)

    def start(self, *names: str) -> Pipeline:
        for name in names or ("persist", "outcomes"):
            self.procs[name] = spawn_consumer(self.settings, name, self.settings.data_dir / "logs")
        return self

    def kill(self, name: str) -> None:
        """SIGKILL: no drain, no final commit, no flush; then start a new one."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.kills[name] = self.kills.get(name, 0) + 1
        self.start(name)

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def stop(self) -> None:
        stop_processes(*self.procs.values())

    def group(self, name: str) -> str:
        if name == "persist":
            return self.settings.persist_group
        return self.settings.topic_prefix + self.settings.outcomes_group

    def consumed(self, name: str) -> int:
        """Input records the worker's group has committed (its progress through the stream)."""
        partitions = [(self.settings.topic_prefix + t, p) for t in INPUT_TOPICS
                      for p in range(self.settings.topic_partitions)]
        return sum(asyncio.run(committed_offsets(self.settings, self.group(name),
                                                 partitions)).values())

    @property
    def list(self) -> list[subprocess.Popen[bytes]]:
        return list(self.procs.values())


def run_calm(settings: Settings, events, timeout_s: float = 600) -> None:  # type: ignore[no-untyped-def]
    """persist and outcomes over `events`, uninterrupted, until everything is stored."""
    from tests.integration.helpers import publish, settle

    pipeline = Pipeline(settings).start()
    try:
        publisher = publish(settings, events)
        settle(settings, dict(publisher.stats.acked_end_offsets), pipeline.list, timeout_s)
    finally:
        pipeline.stop()


class Feeder(threading.Thread):
    """Publishes events in the background in chunks, the way the services would."""

    def __init__(self, settings: Settings, events: list[Event] | tuple[Event, ...],
                 chunk: int = 2000, pause_s: float = 0.0,
                 publisher: LearningPublisher | None = None) -> None:
        super().__init__(name="feeder", daemon=True)
        self.events, self.chunk, self.pause_s = events, chunk, pause_s
        self.publisher = publisher or LearningPublisher.from_settings(settings)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.publisher.start()
            for i in range(0, len(self.events), self.chunk):
                for event in self.events[i:i + self.chunk]:
                    if not self.publisher.publish(event):
                        raise AssertionError(f"the publisher refused {event!r}")
                if not self.publisher.flush(timeout=120):
                    raise AssertionError(f"the broker stopped acknowledging: "
                                         f"{self.publisher.stats}")
                time.sleep(self.pause_s)
        except BaseException as exc:
            self.error = exc
        finally:
            self.publisher.close()

    def targets(self) -> dict[tuple[str, int], int]:
        self.join(300)
        if self.error is not None:
            raise self.error
        stats = self.publisher.stats
        assert stats.dropped == 0 and stats.invalid == 0, stats
        return dict(stats.acked_end_offsets)
