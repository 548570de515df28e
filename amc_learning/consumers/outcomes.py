"""The outcomes worker: a Faust app that follows every decision to its market outcome.

Per-symbol state (`intelligence.tracking.SymbolState`) lives in the Faust table
`outcome_state`, backed by a changelog topic, so a restarted or moved worker recovers it.
Input topics are keyed by symbol; the table uses the same key and partitioner, so the
worker that owns partition p of the inputs owns partition p of the state.

Per batch (at-least-once): decode and validate each record (rejects go to the DLQ),
apply the facts of each symbol to its state, publish the outcomes worth publishing,
write the state back. Faust flushes every produced record (outcomes, changelog, dead
letters) before it commits the input offsets. Facts are idempotent and outcomes are a
function of the set of facts, so the records replayed after a crash change nothing.

Continuity: faust-streaming 0.15 can, after a restart or rebalance, deliver a stream
partition from past its committed offset, and its gap handling (meant for compacted
topics) then commits over the records it never delivered: they would be lost for good.
Our input topics have no gaps, so the worker checks that every partition continues where
it must (`Continuity`) and, on a skip, restarts itself in place from the committed offsets
before anything past the hole is acknowledged (`restart_in_place`).
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
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any, NoReturn

import faust
from aiokafka import AIOKafkaProducer
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaDriverConsumer
from faust.types import TP, EventT

from amc_learning.consumers import ops
from amc_learning.consumers.loop import BROKER_BACKOFF, LoopStats, start_clients
from amc_learning.consumers.metrics import (
    CONSUMED,
    LAG,
    OUTCOMES_PUBLISHED,
    OUTCOMES_RESTARTS,
    REJECTED,
)
from amc_learning.intelligence.tracking import (
    Fact,
    Outcome,
    SymbolState,
    TrackerConfig,
    apply,
    fact_day,
    low_watermark,
    outcomes,
    prune,
    updates,
)
from amc_learning.schemas import topics
from amc_learning.schemas.dlq import DeadLetter
from amc_learning.schemas.outcomes import OutcomeUpdated
from amc_learning.settings import Settings
from amc_learning.store.rows import accept, dead_letter
from amc_learning.streams.kafka import client_options, producer_options
from amc_learning.streams.topics import TopicNames

log = logging.getLogger(__name__)
CONSUMER_NAME = "outcomes"
PRODUCER = "learning-outcomes"
INPUT_TOPICS = (topics.DISCOVERY, topics.THESIS, topics.TRADES, topics.PRICES, topics.CATALYSTS)
_NAMESPACE = uuid.UUID("0b6f4f51-54f1-4c4d-9a55-0a3b0c1f2e7d")


def tracker_config(settings: Settings) -> TrackerConfig:
    short, mid, long = (int(n) for n in settings.outcome_horizons.split(","))
    return TrackerConfig(horizons=(short, mid, long))


def outcome_event(outcome: Outcome) -> OutcomeUpdated:
    """The published form of an outcome; its event_id is a function of its content."""
    fields = {k: v for k, v in outcome.items() if k != "final"}
    fingerprint = "|".join(f"{k}={fields[k]!r}" for k in sorted(fields))
    return OutcomeUpdated(
        event_id=uuid.uuid5(_NAMESPACE, fingerprint), occurred_at=datetime.now(UTC),
        producer=PRODUCER, **fields,
    )


#: Restarts in place in a row before the worker gives up and exits for its supervisor.
MAX_RESTARTS = 10
_RESTARTS_ENV = "LEARNING_OUTCOMES_RESTARTS"


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


_CONTINUITY: dict[str, Continuity] = {}


#: Set by SIGTERM/SIGINT: the worker is draining and must exit, never restart itself.
_STOPPING = threading.Event()


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
    if _STOPPING.is_set():
        exit_now(f"{reason} while stopping")
    restarts = int(os.environ.get(_RESTARTS_ENV, "0")) + 1
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
    os.environ[_RESTARTS_ENV] = str(restarts)
    os.execv(sys.executable, [sys.executable, "-m", "amc_learning.cli", "consume", CONSUMER_NAME])


class _Worker(faust.Worker):
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
        if not _STOPPING.is_set():
            _STOPPING.set()
            timer = threading.Timer(self.grace_s, exit_now,
                                    (f"Kafka did not let the worker drain within "
                                     f"{self.grace_s:.0f} s of the stop",))
            timer.daemon = True
            timer.start()


class _SnapshotConsumer(AIOKafkaDriverConsumer):
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


class _SeekFirstRecovery(Recovery):
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
        continuity = _CONTINUITY.setdefault(self.app.conf.id, Continuity())
        continuity.reset({tp: committed.get(tp) for tp in streams})
        continuity.progressed = time.monotonic()


class _TableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = _SeekFirstRecovery(self.app, self, beacon=self.beacon,
                                                loop=self.loop)
        return self._recovery


def build_app(settings: Settings) -> faust.App:
    """The Faust app of the outcomes worker, configured from the settings."""
    if not settings.kafka_bootstrap:
        raise ValueError("no Kafka bootstrap servers: set LEARNING_KAFKA_BOOTSTRAP")
    names = TopicNames(settings.topic_prefix)
    cfg = tracker_config(settings)
    app = faust.App(
        f"{settings.topic_prefix}{settings.outcomes_group}",
        broker=[f"kafka://{hp.strip()}" for hp in settings.kafka_bootstrap.split(",")],
        broker_credentials=_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        # See FACTS.md: the defaults make every group join wait ~30 s.
        broker_session_timeout=6,
        broker_rebalance_timeout=6,
        broker_heartbeat_interval=1,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_linger_ms=0,
        producer_max_batch_size=settings.outcomes_producer_batch_bytes,
        producer_max_request_size=max(1_048_576, settings.max_event_bytes * 2),
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        web_enabled=False,
        TableManager=_TableManager,
        key_serializer="raw",
        value_serializer="raw",
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
                           "value_serializer": "raw"}
    source = app.topic(*(names(t) for t in INPUT_TOPICS), **raw)
    outcomes_topic = app.topic(names(topics.OUTCOMES), **raw)
    dlq_topic = app.topic(names(topics.DLQ), **raw)
    table = app.Table("outcome_state", default=None, partitions=settings.topic_partitions,
                      use_partitioner=True, key_type=bytes, value_type=bytes)
    app.transport.Consumer = _SnapshotConsumer  # type: ignore[misc]  # before it is made
    continuity = _CONTINUITY.setdefault(app.conf.id, Continuity(client_options(settings)))
    published: dict[str, Outcome] = {}
    #: input partition -> [newest day read, next offset to read]
    progress: dict[TP, list[Any]] = {}
    inputs = {names(t) for t in INPUT_TOPICS}

    @app.agent(source)
    async def track(stream: Any) -> None:  # faust's StreamT stub lacks take_events
        async for events in stream.take_events(settings.batch_max_records,
                                               within=settings.batch_max_wait_ms / 1000):
            for event in events:
                tp, offset = event.message.tp, event.message.offset
                if continuity.unconfirmed(tp, offset):
                    continuity.confirm(tp, await continuity.earliest(tp))
                if (hole := continuity.skipped(tp, offset)) is not None:
                    restart_in_place(f"{tp.topic}[{tp.partition}] jumped from offset {hole} "
                                     f"to {offset}")
            facts, letters = _decode(events, names, settings.max_event_bytes, progress)
            watermark = _watermark(app, progress, inputs)
            for key, letter in letters:
                await dlq_topic.send(key=key, value=letter.model_dump_json().encode())
                REJECTED.labels("outcomes", letter.source_topic, letter.reason).inc()
            for topic, n in Counter(e.message.tp.topic for e in events).items():
                CONSUMED.labels("outcomes", topic).inc(n)
            for symbol, symbol_facts in facts.items():
                key = symbol.encode()
                before = table.get(key)
                state = SymbolState.loads(before)
                for fact in symbol_facts:
                    apply(state, fact)
                current = outcomes(state, cfg)
                for changed in updates(current, published):
                    event = outcome_event(changed)
                    await outcomes_topic.send(key=key, value=event.model_dump_json().encode())
                    OUTCOMES_PUBLISHED.inc()
                for decision_id in prune(state, current, cfg, watermark):
                    published.pop(decision_id, None)
                after = state.dumps()
                if after != before:
                    table[key] = after
            os.environ.pop(_RESTARTS_ENV, None)  # a batch went through: no longer "in a row"
            OUTCOMES_RESTARTS.set(0)
            continuity.progressed = time.monotonic()

    @app.timer(interval=max(1.0, settings.outcomes_stall_s / 3))
    async def watchdog() -> None:
        """A safety net: a worker that recovered and then never got a record was seen
        (`_SnapshotConsumer` removes the cause found). Nothing moves for
        `outcomes_stall_s` while the inputs hold records past the committed offsets:
        restart in place, from those offsets."""
        if app.rebalancing:
            return
        committed = app.consumer._committed_offset  # type: ignore[attr-defined]
        inputs_now = [tp for tp in app.consumer.assignment() if tp.topic in inputs]
        behind = {tp: max(0, end - (committed.get(tp) or 0))
                  for tp, end in (await continuity.ends(inputs_now)).items()}
        for tp, n in behind.items():
            LAG.labels("outcomes", tp.topic, str(tp.partition)).set(n)
        waiting = sum(behind.values())
        quiet = time.monotonic() - continuity.progressed
        if quiet < settings.outcomes_stall_s:
            return
        if waiting:
            restart_in_place(f"no progress for {quiet:.0f} s while {waiting} input records "
                             "wait past the committed offsets")
        continuity.progressed = time.monotonic()  # idle and caught up: look again later

    return app


def _watermark(app: faust.App, progress: dict[TP, list[Any]], inputs: set[str]) -> str | None:
    """`tracking.low_watermark` over the assigned input partitions; "" (forget nothing)
    when the consumer cannot tell where it stands."""
    consumer = app.consumer
    try:
        committed = consumer._committed_offset  # type: ignore[attr-defined]  # faust: recovered
        rows = []
        for tp in consumer.assignment():
            if tp.topic not in inputs:
                continue
            newest, position = progress.get(tp, (None, None))
            rows.append((newest, position if position is not None else committed.get(tp),
                         consumer.highwater(tp)))
        return low_watermark(rows)
    except Exception:  # pragma: no cover - a faust internal moved: keep everything
        log.warning("outcomes: cannot tell the input positions; retention paused",
                    exc_info=True)
        return ""


def _decode(
    events: Any, names: TopicNames, max_event_bytes: int, progress: dict[TP, list[Any]]
) -> tuple[dict[str, list[Fact]], list[tuple[bytes | None, DeadLetter]]]:
    facts: dict[str, list[Fact]] = defaultdict(list)
    letters = []
    now = datetime.now(UTC)
    for event in events:
        record = _Record(event)
        seen = progress.setdefault(event.message.tp, [None, None])
        seen[1] = max(seen[1] or 0, record.offset + 1)
        result = accept(record, names.base(record.topic), max_event_bytes)
        if not isinstance(result, tuple) and record.key != result.symbol.encode():
            result = "invalid_event", (
                f"record key {record.key!r} is not the symbol {result.symbol!r}: events must "
                "be keyed by symbol so that one worker sees all of a symbol's facts"
            )
        if isinstance(result, tuple):
            letter = dead_letter(record, CONSUMER_NAME, result[0], result[1], now)
            letters.append((record.key, letter))
            continue
        facts[result.symbol].append(result)
        day = fact_day(result)
        seen[0] = day if seen[0] is None else max(seen[0], day)
    return facts, letters


class _Record:
    """A Faust event seen as the consumer-record shape `store.rows` expects."""

    def __init__(self, event: EventT) -> None:
        message = event.message
        self.topic: str = message.topic
        self.partition: int = message.partition
        self.offset: int = message.offset
        self.key: bytes | None = message.key
        self.value: bytes | None = message.value


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        context = create_ssl_context(
            cafile=settings.kafka_ssl_cafile, certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username or "",
            password=password.get_secret_value() if password else "",
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def main(settings: Settings) -> int:
    """Entry of `amc-learning consume outcomes`: run the worker until SIGTERM/SIGINT."""
    app = build_app(settings)
    OUTCOMES_RESTARTS.set(int(os.environ.get(_RESTARTS_ENV, "0")))

    def health() -> tuple[ops.Status, str]:
        if app.rebalancing:
            return "degraded", "rebalancing or recovering the state table"
        if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return "down", "starting: joining the group and recovering the state table"
        return "ready", f"{int(os.environ.get(_RESTARTS_ENV, '0'))} restarts in a row"

    ops.serve(settings, "outcomes", health)
    if not _broker_answers(settings):
        return 0  # stopped while waiting
    worker = _Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False,
                     grace_s=settings.stop_grace_s)
    try:
        worker.execute_from_commandline()
    except SystemExit as done:
        if _STOPPING.is_set():
            raise SystemExit(0) from None  # stopped: an error on the way out changes nothing
        if done.code not in (0, None):  # an error faust logged
            restart_in_place(f"the worker stopped on an error (exit {done.code})", backoff=True)
        raise
    return 0


def _broker_answers(settings: Settings) -> bool:
    """Wait until the broker answers, as persist does: faust gives up at the first
    connection error of its start. False when SIGTERM/SIGINT came first. Faults after
    this point (the broker lost while faust starts or runs) restart the worker in place."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)

    async def probe() -> bool:
        clients = await start_clients(lambda: (AIOKafkaProducer(**producer_options(settings)),),
                                      stop=stop, stats=LoopStats(name=CONSUMER_NAME))
        for client in clients or ():
            await client.stop()
        return clients is not None

    try:
        return loop.run_until_complete(probe())
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)  # leaves the default (die on SIGTERM): restore
            signal.signal(sig, previous[sig])
        loop.close()
