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

faust-streaming 0.15 loses or stalls records after restarts; the workarounds are in
`consumers.faust_workarounds` (the worker's own seek-first recovery, a snapshot of the
active partitions, a continuity guard that restarts the worker in place on a skip, and a
deadline on its drain).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import TP, EventT

from amc_learning.consumers import ops
from amc_learning.consumers.faust_workarounds import (
    CONTINUITY,
    RESTARTS_ENV,
    STOPPING,
    Continuity,
    DeadlineWorker,
    SeekFirstTableManager,
    SnapshotConsumer,
    restart_in_place,
)
from amc_learning.consumers.metrics import (
    CONSUMED,
    LAG,
    OUTCOMES_PUBLISHED,
    OUTCOMES_RESTARTS,
    REJECTED,
)
from amc_learning.consumers.outcome_start import broker_answers, rebuild_apart
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
from amc_learning.service.deps import Deps
from amc_learning.settings import Settings
from amc_learning.store.rows import accept, dead_letter
from amc_learning.streams.kafka import client_options
from amc_learning.streams.topics import TopicNames

log = logging.getLogger(__name__)
CONSUMER_NAME = "outcomes"
PRODUCER = "learning-outcomes"
INPUT_TOPICS = (topics.DISCOVERY, topics.THESIS, topics.TRADES, topics.PRICES, topics.CATALYSTS)
_NAMESPACE = uuid.UUID("0b6f4f51-54f1-4c4d-9a55-0a3b0c1f2e7d")


def tracker_config(settings: Settings) -> TrackerConfig:
    return TrackerConfig(horizons=settings.horizons)


def outcome_event(outcome: Outcome) -> OutcomeUpdated:
    """The published form of an outcome; its event_id is a function of its content."""
    fields = {k: v for k, v in outcome.items() if k != "final"}
    fingerprint = "|".join(f"{k}={fields[k]!r}" for k in sorted(fields))
    return OutcomeUpdated(
        event_id=uuid.uuid5(_NAMESPACE, fingerprint), occurred_at=datetime.now(UTC),
        producer=PRODUCER, **fields,
    )


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
        TableManager=SeekFirstTableManager,
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
    app.transport.Consumer = SnapshotConsumer  # type: ignore[misc]  # before it is made
    continuity = CONTINUITY.setdefault(app.conf.id, Continuity(client_options(settings)))
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
                continuity.progressed = time.monotonic()  # a long batch is not a stall
            os.environ.pop(RESTARTS_ENV, None)  # a batch went through: no longer "in a row"
            OUTCOMES_RESTARTS.set(0)
            continuity.progressed = time.monotonic()

    @app.timer(interval=max(1.0, settings.outcomes_stall_s / 3))
    async def watchdog() -> None:
        """A safety net: a worker that recovered and then never got a record was seen
        (`SnapshotConsumer` removes the cause found). Nothing moves for
        `outcomes_stall_s` while the inputs hold records past the committed offsets:
        restart in place, from those offsets. Every symbol a batch finishes is movement:
        a batch of thousands of records on a busy machine can take longer than the
        stall time, and restarting it would only start it over."""
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


def main(deps: Deps) -> int:
    """Entry of `amc-learning consume outcomes`: run the worker until SIGTERM/SIGINT."""
    settings = deps.settings
    app = build_app(settings)
    OUTCOMES_RESTARTS.set(int(os.environ.get(RESTARTS_ENV, "0")))
    rebuilding = threading.Event()
    ops.serve(settings, "outcomes", health_of(app, rebuilding))
    if not broker_answers(settings, CONSUMER_NAME):
        return 0  # stopped while waiting
    if RESTARTS_ENV not in os.environ:  # a restart in place held its state a moment ago
        rebuilding.set()
        try:
            rebuild_apart(settings, tracker_config(settings))
        finally:
            rebuilding.clear()
    worker = DeadlineWorker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False,
                     grace_s=settings.stop_grace_s)
    try:
        worker.execute_from_commandline()
    except SystemExit as done:
        if STOPPING.is_set():
            raise SystemExit(0) from None  # stopped: an error on the way out changes nothing
        if done.code not in (0, None):  # an error faust logged
            restart_in_place(f"the worker stopped on an error (exit {done.code})", backoff=True)
        raise
    return 0


def health_of(app: faust.App, rebuilding: threading.Event) -> ops.Health:
    """The worker's /healthz, answered from the server's own thread. Call it in the
    worker's thread, before the worker starts: it makes faust's recovery service here,
    which binds the table manager to this thread's event loop (decision 001, 6)."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]

    def health() -> tuple[ops.Status, str]:
        if rebuilding.is_set():
            return "down", "starting: rebuilding lost open state from PostgreSQL"
        if app.rebalancing:
            return "degraded", "rebalancing or recovering the state table"
        if not recovery.completed.is_set():
            return "down", "starting: joining the group and recovering the state table"
        return "ready", f"{int(os.environ.get(RESTARTS_ENV, '0'))} restarts in a row"

    return health
