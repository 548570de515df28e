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
from pathlib import Path

from amc_learning.consumers import ops
from amc_learning.consumers.outcomes import INPUT_TOPICS
from amc_learning.entrypoints.run import RunError
from amc_learning.entrypoints.status import health
from amc_learning.entrypoints.supervise import spawn_consumer, stop_processes, wait_until_consumed
from amc_learning.schemas.common import Event
from amc_learning.settings import Settings
from amc_learning.simulator.world import SimConfig, simulate
from amc_learning.streams.offsets import committed_offsets
from amc_learning.streams.publisher import LearningPublisher


@functools.cache
def stream(seed: int, symbols: int, days: int) -> tuple[Event, ...]:
    """The simulated market's events, in the order the services publish them."""
    return tuple(e for day in simulate(SimConfig(seed=seed, symbols=symbols, days=days))
                 for e in day)


@dataclass(frozen=True)
class Budget:
    """The time a test has before pytest-timeout ends it (counted from its setup, session
    fixtures included). Long waits take their deadlines from here, so a test that runs out
    says what was stuck instead of being killed mid-wait."""

    started: float
    seconds: float

    def left(self, reserve_s: float = 0.0) -> float:
        """Seconds left, keeping `reserve_s` for what comes after (checks, teardown)."""
        return self.started + self.seconds - reserve_s - time.monotonic()


#: What a test keeps after its waits: the checks that follow and the teardown.
RESERVE_S = 45.0


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

    def settle(self, targets: dict[tuple[str, int], int], budget: Budget,
               reserve_s: float = RESERVE_S) -> None:
        """`helpers.settle` within the test's budget; if it runs out, what was stuck."""
        from tests.integration.helpers import settle

        try:
            settle(self.settings, targets, self.list, timeout_s=budget.left(reserve_s))
        except RunError as exc:
            raise AssertionError(f"{exc}\n{self.report(targets=targets)}") from None

    def wait_consumed(self, name: str, targets: dict[tuple[str, int], int], budget: Budget,
                      reserve_s: float = RESERVE_S) -> None:
        """Until `name`'s group committed `targets`, within the budget; else what was stuck."""
        try:
            wait_until_consumed(self.settings, self.group(name), targets, self.list,
                                lambda _: None, timeout_s=budget.left(reserve_s))
        except RunError as exc:
            raise AssertionError(f"{name}: {exc}\n{self.report(targets=targets)}") from None

    def wait_for_log(self, names: tuple[str, ...], text: str, timeout_s: float) -> None:
        """Until each named worker's log says `text`; fail saying who had not."""
        deadline = time.monotonic() + timeout_s
        logs = self.settings.data_dir / "logs"
        while (silent := [n for n in names if not (logs / f"{n}.log").exists()
                          or text not in (logs / f"{n}.log").read_text(errors="replace")]):
            if time.monotonic() > deadline:
                raise AssertionError(f"{silent} never said {text!r} in {timeout_s:.0f} s: "
                                     f"{self.report(*silent)}")
            time.sleep(0.2)

    def wait_until_serving(self, names: tuple[str, ...], timeout_s: float) -> None:
        """Until each named worker answers on /healthz (it is past its start-up)."""
        deadline = time.monotonic() + timeout_s
        def serving(name: str) -> bool:
            said = self._health(self.procs[name].pid)  # one registry read and one request
            return not ("not registered" in said or said.startswith("down (unreachable"))

        while (quiet := [n for n in names if not serving(n)]):
            if time.monotonic() > deadline:
                raise AssertionError(f"{quiet} not serving /healthz after {timeout_s:.0f} s: "
                                     f"{self.report(*quiet)}")
            time.sleep(0.2)

    def wait_for_progress(self, names: tuple[str, ...], timeout_s: float) -> None:
        """Until each named worker has committed something; fail saying who had not."""
        deadline = time.monotonic() + timeout_s
        while (behind := [n for n in names if self.consumed(n) == 0]):
            if time.monotonic() > deadline:
                raise AssertionError(f"no progress in {timeout_s:.0f} s: "
                                     f"{self.report(*behind)}")
            time.sleep(0.2)

    def report(self, *names: str, targets: dict[tuple[str, int], int] | None = None) -> str:
        """What each worker was doing, for a test that ran out of time: alive or its exit
        code, kills so far, its /healthz, its group's committed offsets against `targets`
        (the end offsets it must reach), and the end of its log."""
        lines = []
        for name in names or tuple(self.procs):
            proc = self.procs[name]
            state = "alive" if proc.poll() is None else f"exited {proc.returncode}"
            lines.append(f"{name} pid {proc.pid} ({state}, kills {self.kills.get(name, 0)}); "
                         f"/healthz: {self._health(proc.pid)}; {self._behind(name, targets)}; "
                         f"log ends:\n{tail(self.settings.data_dir / 'logs' / f'{name}.log')}")
        return "\n".join(lines)

    def _health(self, pid: int) -> str:
        for entry in ops.registered(self.settings.data_dir):
            if entry["pid"] == pid:
                status, why, _ = health(str(entry["url"]))
                return f"{status} ({why})"
        return "not registered (not started yet, or gone)"

    def _behind(self, name: str, targets: dict[tuple[str, int], int] | None) -> str:
        partitions = sorted(targets) if targets else [
            (self.settings.topic_prefix + t, p) for t in INPUT_TOPICS
            for p in range(self.settings.topic_partitions)]
        try:
            got = asyncio.run(asyncio.wait_for(committed_offsets(
                self.settings, self.group(name), partitions), 15))
        except Exception as exc:
            return f"committed offsets unknown ({type(exc).__name__}: {exc})"
        if not targets:
            return f"committed {sum(got.values())} records"
        behind = {f"{t.removeprefix(self.settings.topic_prefix)}[{p}]": end - got[(t, p)]
                  for (t, p), end in targets.items() if got[(t, p)] < end}
        return (f"committed {sum(got.values())} of {sum(targets.values())}, "
                f"behind: {behind or 'none'}")

    @property
    def list(self) -> list[subprocess.Popen[bytes]]:
        return list(self.procs.values())


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, indented, for a failure message."""
    if not path.exists():
        return f"    ({path} does not exist)"
    return "\n".join("    " + line for line in path.read_text(errors="replace")
                     .splitlines()[-lines:])


def run_calm(settings: Settings, events, budget: Budget) -> None:  # type: ignore[no-untyped-def]
    """persist and outcomes over `events`, uninterrupted, until everything is stored."""
    from tests.integration.helpers import publish

    pipeline = Pipeline(settings).start()
    try:
        publisher = publish(settings, events)
        pipeline.settle(dict(publisher.stats.acked_end_offsets), budget)
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

    def targets(self, timeout_s: float = 300) -> dict[tuple[str, int], int]:
        """The end offsets of what was published, once everything is."""
        self.join(timeout_s)
        if self.is_alive():
            raise AssertionError(f"still publishing after {timeout_s:.0f} s: "
                                 f"{self.publisher.stats}")
        if self.error is not None:
            raise self.error
        stats = self.publisher.stats
        assert stats.dropped == 0 and stats.invalid == 0, stats
        return dict(stats.acked_end_offsets)
