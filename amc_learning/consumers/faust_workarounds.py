"""faust-streaming 0.15's bugs, worked around in one place (docs/decisions/001).

Each piece names what it works around; the outcomes worker (`consumers.outcomes`) plugs
them in. Remove a piece when the faust release that fixes it is pinned, and its test
(named beside it) still passes without it.

* `SeekFirstRecovery` (+ `SeekFirstTableManager`): faust-streaming #596, recovery resumes
  the input partitions before it seeks them: records fetched in between are delivered
  twice or never. Test: `tests/unit/test_faust_workarounds.py`.
* `SnapshotConsumer`: faust hands aiokafka its live set of active partitions, which is
  empty for a moment at the end of a recovery, and aiokafka reads empty as "all": the
  sought partitions were drained and dropped. Test: `tests/unit/test_continuity.py`.
* `Continuity` + `restart_in_place`: faust's gap handling commits over records it never
  delivered; the worker checks every partition continues where it resumed and, on a
  skip, replaces itself before anything past the hole is acknowledged. Also the restart
  after any error that stops faust (it gives up at the first connection error while it
  starts). Tests: `tests/unit/test_continuity.py`, `tests/faults/test_crashes.py`.
* `DeadlineWorker`: faust's stop waits for the agent's batch in hand, forever when the
  broker does not answer; past the grace it exits 0 without the final commit.
  Test: `tests/faults/test_shutdown.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, NoReturn

import faust
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaDriverConsumer
from faust.types import TP

from amc_learning.consumers.loop import BROKER_BACKOFF

log = logging.getLogger(__name__)

#: Restarts in place in a row before the worker gives up and exits for its supervisor.
MAX_RESTARTS = 10
RESTARTS_ENV = "LEARNING_OUTCOMES_RESTARTS"


class Continuity:
    """Where each input partition must continue: a record past that point means faust
    skipped records (see the module docstring)."""

    #: A never-committed partition: it must start at its first offset (usually 0).
    BEGINNING = -1

    def __init__(self, client: dict[str, Any] | None = None) -> None:
        self.expected: dict[TP, int] = {}
        self._client = client
        #: when the worker last made progress (a batch, or the end of a recovery)
        self.progressed = time.monotonic()

    def reset(self, starts: dict[TP, int | None]) -> None:
        """After a rebalance: where the partitions resume (their committed offsets; None:
        never committed, so from the beginning)."""
        self.expected = {tp: self.BEGINNING if o is None else o for tp, o in starts.items()}

    def unconfirmed(self, tp: TP, offset: int) -> bool:
        """A never-committed partition whose first record is not offset 0: only the
        broker can say whether that is its beginning (see `confirm`)."""
        return self.expected.get(tp) == self.BEGINNING and offset != 0

    def confirm(self, tp: TP, earliest: int | None) -> None:
        if earliest is None:
            self.expected.pop(tp, None)  # the broker did not say: unguarded until a rebalance
        else:
            self.expected[tp] = earliest

    def skipped(self, tp: TP, offset: int) -> int | None:
        """Record a delivered offset; return the first skipped offset if records were skipped.
        Offsets below the expected one are redeliveries (harmless: facts are idempotent)."""
        expected = self.expected.get(tp)
        if expected == self.BEGINNING:
            expected = 0
        if expected is not None and offset > expected:
            return expected
        self.expected[tp] = max(expected or 0, offset + 1)
        return None

    async def ends(self, partitions: list[TP]) -> dict[TP, int]:
        """End offsets; {} when the broker does not answer. (On Tansu an end offset can
        lag the true end, never lead it: lag seen is real.)"""
        return await self._ask("end_offsets", partitions) if partitions else {}

    async def earliest(self, tp: TP) -> int | None:
        """The first offset of a partition; None when the broker does not answer."""
        return (await self._ask("beginning_offsets", [tp])).get(tp)

    async def _ask(self, question: str, partitions: list[TP]) -> dict[TP, int]:
        """Offsets through a client of our own (faust's consumer thread is not asked: it
        was seen to never answer in the middle of a recovery); {} on any failure."""
        if self._client is None:
            return {}
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(**self._client, enable_auto_commit=False)
        try:
            await asyncio.wait_for(consumer.start(), 15)
            found = await asyncio.wait_for(getattr(consumer, question)(
                [TopicPartition(tp.topic, tp.partition) for tp in partitions]), 15)
            return {TP(tp.topic, tp.partition): int(offset) for tp, offset in found.items()}
        except Exception as exc:
            log.warning("outcomes: no answer to %s for %d partition(s) (%s)", question,
                        len(partitions), exc)
            return {}
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 5)


CONTINUITY: dict[str, Continuity] = {}


#: Set by SIGTERM/SIGINT: the worker is draining and must exit, never restart itself.
STOPPING = threading.Event()


def exit_now(reason: str) -> NoReturn:
    """Exit 0 at once, without a final commit or flush: what was not committed is read
    again by the next worker (records are idempotent facts), as after a SIGKILL."""
    log.warning("outcomes: %s; exiting without a final commit (the next worker reads the "
                "uncommitted records again)", reason)
    logging.shutdown()
    os._exit(0)


def restart_in_place(reason: str, backoff: bool = False) -> None:
    """Replace this process by a fresh worker (same pid, arguments and environment): no
    commit, no flush, as after a SIGKILL, which the worker is built to survive. With
    `backoff`, after the wait for an unreachable broker (BROKER_BACKOFF), by restarts in a row.
    A worker told to stop exits instead."""
    if STOPPING.is_set():
        exit_now(f"{reason} while stopping")
    restarts = int(os.environ.get(RESTARTS_ENV, "0")) + 1
    if restarts > MAX_RESTARTS:
        log.critical("outcomes: %s; %d restarts in a row, giving up", reason, restarts - 1)
        os._exit(70)
    delay = BROKER_BACKOFF.delay(restarts) if backoff else 0.0
    log.error("outcomes: %s; restarting from the committed offsets in %.1f s (%d)",
              reason, delay, restarts)
    for sig in (signal.SIGTERM, signal.SIGINT):  # a stop during the wait ends it
        signal.signal(sig, lambda *_: exit_now("stopped while waiting to restart"))
    time.sleep(delay)
    for sig in (signal.SIGTERM, signal.SIGINT):  # the new image starts with the defaults
        signal.signal(sig, signal.SIG_DFL)
    logging.shutdown()
    os.environ[RESTARTS_ENV] = str(restarts)
    os.execv(sys.executable, [sys.executable, "-m", "amc_learning.cli", "consume", "outcomes"])


class DeadlineWorker(faust.Worker):
    """faust's worker with a deadline on its drain after SIGTERM/SIGINT.

    faust stops by waiting for the agent's batch in hand (`stream_wait_empty`), then
    commits and flushes. With a broker that does not answer, the agent waits for producer
    buffer space and the stop never ends (seen: a worker still stopping 45 s after SIGTERM
    in a blackhole). Past `grace_s` the worker exits 0 without the final commit.
    """

    def __init__(self, *args: Any, grace_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grace_s = grace_s

    def _on_sigterm(self) -> None:
        self._deadline()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._deadline()
        super()._on_sigint()

    def _deadline(self) -> None:
        if not STOPPING.is_set():
            STOPPING.set()
            timer = threading.Timer(self.grace_s, exit_now,
                                    (f"Kafka did not let the worker drain within "
                                     f"{self.grace_s:.0f} s of the stop",))
            timer.daemon = True
            timer.start()


class SnapshotConsumer(AIOKafkaDriverConsumer):
    """faust's aiokafka consumer, handing the consumer thread a snapshot of the active
    partitions instead of the live set.

    faust-streaming 0.15 passes its own mutable set of active partitions to the thread
    that runs aiokafka, and aiokafka's `Fetcher.fetched_records` re-reads it at every
    wake-up, treating an *empty* set as "every partition". When a recovery ends, faust
    pauses the changelog partitions and the set is empty for a moment: a fetch waiting
    in the thread then drained the stream partitions just sought to their committed
    offsets, moved their positions to the end, and faust dropped the records because
    those partitions were not active. Nothing was delivered, nothing acknowledged, the
    commit stayed behind and the worker never read those partitions again (seen as a
    worker that recovered, logged Ready and stalled; about one restart in seven, traced
    on 2026-11-24). With a snapshot the thread drains only what was active when it was
    asked.
    """

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        snapshot = None if active_partitions is None else set(active_partitions)
        return await super()._getmany(snapshot, timeout)


class SeekFirstRecovery(Recovery):
    """faust's recovery with the stream partitions sought *before* they are resumed.

    faust-streaming 0.15 (`Recovery.on_recovery_completed`) resumes the input partitions
    and only then seeks them to the committed offsets. Its fetcher is already running
    (it read the changelog), so records fetched in that window race the seek: some are
    delivered twice and some never, and because faust commits only contiguous acks the
    worker stalls behind the hole until restarted (faust-streaming issue #596). Seeking
    while the partitions are still paused closes the window.
    """

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        # faust's own method, reordered: seek, then resume (see the class docstring).
        consumer = self.app.consumer
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(table.on_recovery_completed(
                self.actives_for_table[table], self.standbys_for_table[table]))
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        assignment = consumer.assignment()
        streams = {tp for tp in assignment if not self._is_changelog_tp(tp)}
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(),
                             timeout=self.app.conf.broker_request_timeout)
        self._expect_from(streams)
        consumer.resume_partitions(streams)
        self.completed.set()
        self.app.flow_control.resume()
        consumer.resume_flow()
        await self.app._fetcher.maybe_start()  # type: ignore[attr-defined]
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")


    def _expect_from(self, streams: set[TP]) -> None:
        """Tell `Continuity` where the stream partitions resume (they are still paused).
        Synchronous on purpose: a wait here (asking the broker for the beginnings of
        never-committed partitions) was seen to leave the partitions never delivering; the
        agent asks instead, when such a partition's first record is not offset 0."""
        committed = self.app.consumer._committed_offset  # type: ignore[attr-defined]
        continuity = CONTINUITY.setdefault(self.app.conf.id, Continuity())
        continuity.reset({tp: committed.get(tp) for tp in streams})
        continuity.progressed = time.monotonic()


class SeekFirstTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon,
                                                loop=self.loop)
        return self._recovery
