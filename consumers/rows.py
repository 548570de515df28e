"""Pure mapping of consumed records to table rows and dead letters (no IO)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from schemas import topics
from schemas.discovery import CandidateScored
from schemas.dlq import DeadLetter, RejectionReason
from schemas.prices import PriceBarClosed
from schemas.registry import decode_event
from schemas.thesis import ThesisDecided
from schemas.trades import TradeFilled

#: How much of a rejected payload the dead letter keeps (the original stays in its topic).
DEAD_LETTER_RAW_CAP = 64 * 1024


class Record(Protocol):
    """What we need of a consumed Kafka record (aiokafka's ConsumerRecord fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]


@dataclass
class Plan:
    """What one batch of records becomes: rows per table, plus rejected records."""

    rows: dict[Table, list[tuple[Any, ...]]] = field(default_factory=dict)
    #: The record each row came from, aligned with `rows` (to dead-letter a row the DB refuses).
    sources: dict[Table, list[Record]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


DECISIONS = Table("learning_decisions", (
    "event_id", "decision_id", "symbol", "decision_type", "recommendation_source",
    "confidence_score", "price_at_decision", "position_size_pct", "market_time", "reasoning",
    "discovery_run_id", "discovery_timestamp", "discovery_scores", "discovery_features",
    "thesis_data", "market_conditions", "decision_data", "decided_at", "producer",
    "schema_version",
))
CANDIDATES = Table("discovery_candidates", (
    "event_id", "run_id", "symbol", "rank", "composite_score", "threshold", "passed",
    "score_volume_momentum", "score_squeeze", "score_catalyst", "score_options",
    "score_technical", "score_sentiment", "features", "price", "discovered_at", "producer",
    "schema_version",
))
TRADES = Table("learning_trades", (
    "event_id", "fill_id", "trade_id", "decision_id", "symbol", "fill_type", "side", "quantity",
    "price", "position_size_pct", "exit_reason", "executed_at", "producer", "schema_version",
))
BARS = Table("price_bars", (
    "event_id", "symbol", "session", "open", "high", "low", "close", "volume", "producer",
))


def _decision_row(e: ThesisDecided, raw: bytes) -> tuple[Any, ...]:
    scores = e.discovery_scores.model_dump() if e.discovery_scores else None
    return (
        e.event_id, e.decision_id, e.symbol, e.decision_type, e.decision_source,
        e.confidence_score, e.entry_price, e.position_size_pct, e.market_time, e.reasoning,
        e.discovery_run_id, e.discovery_timestamp, None if scores is None else _json(scores),
        _json(e.discovery_features), e.thesis.model_dump_json(),
        e.market_conditions.model_dump_json(), raw.decode(), e.occurred_at, e.producer,
        e.schema_version,
    )


def _candidate_row(e: CandidateScored, _raw: bytes) -> tuple[Any, ...]:
    s = e.scores
    return (
        e.event_id, e.run_id, e.symbol, e.rank, e.composite_score, e.threshold, e.passed,
        s.volume_momentum, s.squeeze, s.catalyst, s.options, s.technical, s.sentiment,
        _json(e.features), e.price, e.occurred_at, e.producer, e.schema_version,
    )


def _trade_row(e: TradeFilled, _raw: bytes) -> tuple[Any, ...]:
    return (
        e.event_id, e.fill_id, e.trade_id, e.decision_id, e.symbol, e.fill_type, e.side,
        e.quantity, e.price, e.position_size_pct, e.exit_reason, e.occurred_at, e.producer,
        e.schema_version,
    )


def _bar_row(e: PriceBarClosed, _raw: bytes) -> tuple[Any, ...]:
    return (e.event_id, e.symbol, e.session, e.open, e.high, e.low, e.close, e.volume, e.producer)


#: event_type -> (table, row builder). The persist consumer stores exactly these.
PERSISTED: dict[str, tuple[Table, Callable[[Any, bytes], tuple[Any, ...]]]] = {
    "thesis_decided": (DECISIONS, _decision_row),
    "candidate_scored": (CANDIDATES, _candidate_row),
    "trade_filled": (TRADES, _trade_row),
    "price_bar_closed": (BARS, _bar_row),
}
PERSIST_TOPICS = (topics.DISCOVERY, topics.THESIS, topics.TRADES, topics.PRICES)
ALL_TABLES = tuple(table for table, _ in PERSISTED.values())


def plan_batch(
    records: Iterable[Record],
    *,
    consumer: str,
    base_topic: Callable[[str], str] = lambda name: name,
    max_event_bytes: int,
    now: datetime | None = None,
) -> Plan:
    """Decode, validate and route each record; anything unacceptable becomes a dead letter."""
    plan = Plan()
    failed_at = now or datetime.now(UTC)
    seen: set[Any] = set()
    for record in records:
        raw = record.value or b""
        outcome = _accept(record, raw, base_topic(record.topic), max_event_bytes)
        if isinstance(outcome, tuple):
            reason, error = outcome
            plan.dead_letters.append(dead_letter(record, consumer, reason, error, failed_at))
            continue
        if outcome.event_id in seen:  # a duplicate within the batch: the sink would ignore it
            continue
        seen.add(outcome.event_id)
        table, build = PERSISTED[outcome.event_type]
        plan.rows.setdefault(table, []).append(build(outcome, raw))
        plan.sources.setdefault(table, []).append(record)
    return plan


def _accept(
    record: Record, raw: bytes, topic: str, max_event_bytes: int
) -> Any | tuple[RejectionReason, str]:
    if len(raw) > max_event_bytes:
        return "too_large", f"{len(raw)} bytes exceeds the limit of {max_event_bytes}"
    try:
        event = decode_event(raw)
    except ValidationError as exc:
        return _classify(exc)
    allowed = topics.EVENT_TYPES_BY_TOPIC.get(topic, frozenset())
    if event.event_type not in allowed or event.event_type not in PERSISTED:
        return "wrong_topic", f"event type {event.event_type!r} does not belong on {topic}"
    return event


def _classify(exc: ValidationError) -> tuple[RejectionReason, str]:
    errors = exc.errors(include_url=False, include_input=False)
    kinds = {e["type"] for e in errors}
    if "json_invalid" in kinds or "json_type" in kinds:
        return "malformed_json", _summarise(errors)
    if kinds & {"union_tag_invalid", "union_tag_not_found"}:
        return "unknown_event_type", _summarise(errors)
    return "invalid_event", _summarise(errors)


def _summarise(errors: list[Any]) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors[:5]]
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts)[:1000] + more


def dead_letter(
    record: Record, consumer: str, reason: RejectionReason, error: str, failed_at: datetime
) -> DeadLetter:
    raw = record.value or b""
    return DeadLetter(
        consumer=consumer,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        key_b64=None if record.key is None else base64.b64encode(record.key).decode(),
        reason=reason,
        error=error,
        raw_b64=base64.b64encode(raw[:DEAD_LETTER_RAW_CAP]).decode(),
        raw_size=len(raw),
        raw_truncated=len(raw) > DEAD_LETTER_RAW_CAP,
        failed_at=failed_at,
    )


DEAD_LETTERS = Table("dead_letters", (
    "consumer", "source_topic", "source_partition", "source_offset", "reason", "error", "raw",
    "raw_size", "raw_truncated", "raw_sha256", "failed_at",
))


def dead_letter_row(d: DeadLetter) -> tuple[Any, ...]:
    raw = base64.b64decode(d.raw_b64)
    return (
        d.consumer, d.source_topic, d.source_partition, d.source_offset, d.reason, d.error, raw,
        d.raw_size, d.raw_truncated, hashlib.sha256(raw).digest(), d.failed_at,
    )
