"""Pure mapping of consumed records to table rows and dead letters (no IO)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError
from pydantic_core import to_json

from amc_learning.intelligence.tracking import never_decided_id
from amc_learning.schemas import topics
from amc_learning.schemas.catalysts import CatalystObserved
from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.dlq import DeadLetter, RejectionReason
from amc_learning.schemas.outcomes import OutcomeUpdated
from amc_learning.schemas.prices import PriceBarClosed
from amc_learning.schemas.registry import decode_event
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled

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
    #: Upserted through `amc_learning.store.sink` instead of inserted; staged like this table.
    upsert_staged_like: str | None = None


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
    """Compact JSON (pydantic-core: 8x json.dumps, measured). NaN and inf cannot occur:
    the contracts reject them."""
    return to_json(value).decode()


DECISIONS = Table("learning_decisions", (
    "event_id", "decision_id", "symbol", "decision_type", "recommendation_source",
    "confidence_score", "price_at_decision", "position_size_pct", "market_time", "reasoning",
    "discovery_run_id", "discovery_timestamp", "discovery_scores", "discovery_features",
    "thesis_data", "market_conditions", "decision_data", "decided_at", "producer",
    "schema_version", "is_synthetic", "params_version", "params_mode", "label",
    "size_change_pct", "scoring_model", "scoring_version",
))
CANDIDATES = Table("discovery_candidates", (
    "event_id", "run_id", "symbol", "rank", "composite_score", "threshold", "passed",
    "score_volume_momentum", "score_squeeze", "score_catalyst", "score_options",
    "score_technical", "score_sentiment", "features", "price", "discovered_at", "producer",
    "schema_version", "scoring_model", "scoring_version", "raw_score", "raw_low", "raw_high",
    "detail",
))
TRADES = Table("learning_trades", (
    "event_id", "fill_id", "trade_id", "decision_id", "symbol", "fill_type", "side", "quantity",
    "price", "position_size_pct", "exit_reason", "executed_at", "producer", "schema_version",
    "order_id", "mode",
))
BARS = Table("price_bars", (
    "event_id", "symbol", "session", "open", "high", "low", "close", "volume", "producer",
    "split_ratio",
))
CATALYSTS = Table("catalyst_events", (
    "event_id", "symbol", "session", "kind", "headline", "magnitude", "observed_at", "producer",
))
#: Upserted, not inserted: one row per decision, the last one on the outcomes topic wins.
#: The worker publishes a decision's outcomes in causal order on its symbol's partition
#: (its newest always reflects every fact it has seen), and a replay re-reads them in that
#: order, so the last is the newest. `revision` (facts counted) is not monotone under
#: disorder — a bar that arrives late can move a matured outcome's window and drop a
#: catalyst from it — so it must not decide (the fault suite's disorder test caught that).
OUTCOMES = Table("learning_outcomes", (
    "decision_key", "symbol", "outcome_type", "is_counterfactual", "tracked_from",
    "price_at_outcome", "return_pct", "days_held", "return_1d", "return_7d", "return_30d",
    "max_favorable_excursion", "max_adverse_excursion", "volatility_realized",
    "position_closed", "exit_price", "exit_reason", "catalyst_materialized",
    "volume_pattern_accuracy", "thesis_accuracy_score", "sessions_elapsed", "revision",
    "last_event_id",
), upsert_staged_like="outcome_backlog")
_SYNTHETIC = uuid.UUID("a1d3c0de-5e1f-4c0a-8d1b-6f0c0ffee001")

Rows = list[tuple[Table, tuple[Any, ...]]]


def _model(e: CandidateScored | ThesisDecided) -> tuple[str | None, str | None]:
    m = e.scoring_model
    return (None, None) if m is None else (m.name, m.version)


def _decision_rows(e: ThesisDecided, raw: bytes) -> Rows:
    scores = e.discovery_scores.model_dump() if e.discovery_scores else None
    return [(DECISIONS, (
        e.event_id, e.decision_id, e.symbol, e.decision_type, e.decision_source,
        e.confidence_score, e.entry_price, e.position_size_pct, e.market_time, e.reasoning,
        e.discovery_run_id, e.discovery_timestamp, None if scores is None else _json(scores),
        _json(e.discovery_features), "{}" if e.thesis is None else e.thesis.model_dump_json(),
        "{}" if e.market_conditions is None else e.market_conditions.model_dump_json(),
        raw.decode(), e.occurred_at, e.producer, e.schema_version, False, e.params_version,
        e.params_mode, e.label, e.size_change_pct, *_model(e),
    ))]


def _candidate_rows(e: CandidateScored, raw: bytes) -> Rows:
    s = e.scores
    components = (None,) * 6 if s is None else (
        s.volume_momentum, s.squeeze, s.catalyst, s.options, s.technical, s.sentiment)
    raw_score = e.raw_score
    detail = {k: v for k, v in e.model_dump(include={"components", "tiers", "flags",
                                                      "attributes", "provenance"}).items()
              if v}
    rows: Rows = [(CANDIDATES, (
        e.event_id, e.run_id, e.symbol, e.rank, e.composite_score, e.threshold, e.passed,
        *components, _json(e.features), e.price, e.occurred_at, e.producer, e.schema_version,
        *_model(e), *((None,) * 3 if raw_score is None else (
            raw_score.value, raw_score.low, raw_score.high)), _json(detail),
    ))]
    if not e.passed:  # never handed to the thesis service: a synthetic IGNORE decision
        below = "" if e.threshold is None else f" below threshold {e.threshold}"
        rows.append((DECISIONS, (
            uuid.uuid5(_SYNTHETIC, str(e.event_id)), never_decided_id(e), e.symbol, "IGNORE",
            "discovery", e.composite_score, e.price, 0.0, "premarket",
            f"never decided: composite {e.composite_score:.4f}{below}",
            e.run_id, e.occurred_at, None if s is None else s.model_dump_json(),
            _json(e.features), "{}", "{}", raw.decode(), e.occurred_at, e.producer,
            e.schema_version, True, None, None, None, None, *_model(e),
        )))
    return rows


def _trade_rows(e: TradeFilled, _raw: bytes) -> Rows:
    return [(TRADES, (
        e.event_id, e.fill_id, e.trade_id, e.decision_id, e.symbol, e.fill_type, e.side,
        e.quantity, e.price, e.position_size_pct, e.exit_reason, e.occurred_at, e.producer,
        e.schema_version, e.order_id, e.mode,
    ))]


def _bar_rows(e: PriceBarClosed, _raw: bytes) -> Rows:
    return [(BARS, (e.event_id, e.symbol, e.session, e.open, e.high, e.low, e.close, e.volume,
                    e.producer, e.split_ratio))]


def _catalyst_rows(e: CatalystObserved, _raw: bytes) -> Rows:
    return [(CATALYSTS, (e.event_id, e.symbol, e.session, e.kind, e.headline, e.magnitude,
                         e.occurred_at, e.producer))]


def _outcome_rows(e: OutcomeUpdated, _raw: bytes) -> Rows:
    return [(OUTCOMES, (
        e.decision_id, e.symbol, e.outcome_type, e.is_counterfactual, e.tracked_from,
        e.price_at_outcome, e.return_pct, e.days_held, e.return_1d, e.return_7d, e.return_30d,
        e.max_favorable_excursion, e.max_adverse_excursion, e.volatility_realized,
        e.position_closed, e.exit_price, e.exit_reason, e.catalyst_materialized,
        e.volume_pattern_accuracy, e.thesis_accuracy_score, e.sessions_elapsed, e.revision,
        e.event_id,
    ))]


#: event_type -> row builder. The persist consumer stores exactly these.
PERSISTED: dict[str, Callable[[Any, bytes], Rows]] = {
    "thesis_decided": _decision_rows,
    "candidate_scored": _candidate_rows,
    "trade_filled": _trade_rows,
    "price_bar_closed": _bar_rows,
    "catalyst_observed": _catalyst_rows,
    "outcome_updated": _outcome_rows,
}
PERSIST_TOPICS = (topics.DISCOVERY, topics.THESIS, topics.TRADES, topics.PRICES,
                  topics.CATALYSTS, topics.OUTCOMES)
ALL_TABLES = (DECISIONS, CANDIDATES, TRADES, BARS, CATALYSTS, OUTCOMES)


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
        outcome = accept(record, base_topic(record.topic), max_event_bytes)
        if not isinstance(outcome, tuple) and outcome.event_type not in PERSISTED:
            outcome = "wrong_topic", f"{outcome.event_type!r} is not stored by {consumer}"
        if isinstance(outcome, tuple):
            reason, error = outcome
            plan.dead_letters.append(dead_letter(record, consumer, reason, error, failed_at))
            continue
        if outcome.event_type != "outcome_updated":  # an upsert: the last one must stay
            if outcome.event_id in seen:  # a duplicate in the batch: the sink would ignore it
                continue
            seen.add(outcome.event_id)
        for table, row in PERSISTED[outcome.event_type](outcome, raw):
            plan.rows.setdefault(table, []).append(row)
            plan.sources.setdefault(table, []).append(record)
    if OUTCOMES in plan.rows:
        _keep_last_outcome(plan)
    return plan


def _keep_last_outcome(plan: Plan) -> None:
    """One outcome per decision: the last one on the topic (see `OUTCOMES`), even when it
    repeats an earlier one of the batch word for word (an outcome's id is a function of
    its content): a tracker restarted after a crash re-publishes `matured` after an older
    `open`, and keeping the first copy stored the `open` (the crash test's finding)."""
    last = {row[0]: i for i, row in enumerate(plan.rows[OUTCOMES])}
    keep = sorted(last.values())
    plan.rows[OUTCOMES] = [plan.rows[OUTCOMES][i] for i in keep]
    plan.sources[OUTCOMES] = [plan.sources[OUTCOMES][i] for i in keep]


def accept(record: Record, topic: str, max_event_bytes: int) -> Any | tuple[RejectionReason, str]:
    """The validated event of `record`, or why it must be dead-lettered (reason, error)."""
    raw = record.value or b""
    if len(raw) > max_event_bytes:
        return "too_large", f"{len(raw)} bytes exceeds the limit of {max_event_bytes}"
    try:
        event = decode_event(raw)
    except ValidationError as exc:
        return _classify(exc)
    allowed = topics.EVENT_TYPES_BY_TOPIC.get(topic, frozenset())
    if event.event_type not in allowed:
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
        raw_sha256=hashlib.sha256(raw).hexdigest(),
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
        d.raw_size, d.raw_truncated,
        bytes.fromhex(d.raw_sha256) if d.raw_sha256 else hashlib.sha256(raw).digest(),
        d.failed_at,
    )
