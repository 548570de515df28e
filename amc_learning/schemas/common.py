"""Shared field types and the event envelope every topic carries."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

#: Exchange tickers (AAPL, BRK.B, RDS-A) and index symbols (^VIX, ^IXIC).
Symbol = Annotated[str, StringConstraints(pattern=r"^\^?[A-Z][A-Z0-9]{0,5}([.\-][A-Z0-9]{1,3})?$")]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Price = Annotated[float, Field(gt=0.0, lt=1e7)]
Percent = Annotated[float, Field(ge=0.0, le=100.0)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=4000)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
#: A feature snapshot: flat, named, finite numbers (NaN/inf are rejected by the model config).
Features = Annotated[dict[FeatureName, float], Field(max_length=128)]

DecisionType = Literal["BUY", "SELL", "HOLD", "IGNORE"]
DecisionSource = Literal["discovery", "thesis", "manual"]
Side = Literal["BUY", "SELL"]
Direction = Literal["UP", "DOWN", "FLAT"]
FillType = Literal["ENTRY", "PARTIAL_EXIT", "EXIT"]
TradeMode = Literal["live", "paper", "shadow"]
MarketTime = Literal["premarket", "regular", "afterhours"]
#: Why a position closed; `trailing_stop` and `partial_profit` need schema_version 2.
ExitReason = Literal["stop_loss", "profit_target", "manual", "time", "trailing_stop",
                     "partial_profit"]
#: A lowercase name: a tier (`ultra_low`), a flag (`chase_risk`).
Label = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
#: What an adapter inferred or defaulted for an event, field -> how (schema_version 2).
Provenance = Annotated[dict[FeatureName, ShortText], Field(max_length=64)]
Regime = Literal[
    "bull_low_vol", "bull_high_vol", "bear_low_vol", "bear_high_vol", "sideways", "unknown"
]

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)


_EARLIEST_S = EARLIEST.timestamp()
_TOLERANCE_S = FUTURE_TOLERANCE.total_seconds()
_ZERO = timedelta(0)


def _plausible_utc(value: datetime) -> datetime:
    """Normalise to UTC; refuse times before 1990 or more than a day ahead of the clock.
    (Every stored event passes here: it compares POSIX seconds, 3x cheaper than datetimes.)"""
    if value.utcoffset() == _ZERO:
        value = value.replace(tzinfo=UTC) if value.tzinfo is not UTC else value
    else:
        value = value.astimezone(UTC)
    seconds = value.timestamp()
    if seconds < _EARLIEST_S:
        raise ValueError(f"timestamp {value.isoformat()} is before {EARLIEST.date()}")
    if seconds > time.time() + _TOLERANCE_S:
        raise ValueError(f"timestamp {value.isoformat()} is in the future")
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcTime = Annotated[AwareDatetime, AfterValidator(_plausible_utc)]
#: An instant that may lie in the future (an expiry): timezone-aware, normalised to UTC.
UtcDeadline = Annotated[AwareDatetime, AfterValidator(_utc)]


class Contract(BaseModel):
    """Base of every message: frozen, strict types, unknown fields and NaN/inf rejected."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", allow_inf_nan=False)


class ScoringModel(Contract):
    """The model that scored a candidate: learning never mixes two (schema_version 2)."""

    name: Identifier
    version: Identifier


class Scaled(Contract):
    """A number on the scale its producer declared ([low, high]), kept as it was sent."""

    value: float
    low: float
    high: float

    @model_validator(mode="after")
    def _a_scale(self) -> Scaled:
        ordered_scale(self.low, self.high)
        return self

    @property
    def normalised(self) -> float:
        """The value on [0, 1], clipped (a value beyond the scale is a data-quality finding)."""
        return min(max((self.value - self.low) / (self.high - self.low), 0.0), 1.0)


def ordered_scale(low: float, high: float) -> None:
    """A scale [low, high] is one only when low is below high."""
    if not low < high:
        raise ValueError(f"scale [{low}, {high}]: low must be below high")


class Tier(Contract):
    """A factor scored by tier, as a points scanner does: `{"tier": "ultra_low", "points": 50}`."""

    tier: Label
    points: float | None = None


def absent(value: object) -> bool:
    """An optional field that holds nothing: left out when an event is written
    (`Field(exclude_if=absent)`), so a v1 event is written exactly as v1 wrote it."""
    return value is None or value == {} or value == []


@dataclass(frozen=True)
class VersionRules:
    """What schema version 1 of an event is, inside its v2 superset: the v2 fields it may
    not carry, the fields it requires, and the values of a field that v2 added."""

    v2_only: tuple[str, ...] = ()
    v1_required: tuple[str, ...] = ()
    v2_values: tuple[tuple[str, tuple[object, ...]], ...] = ()

    def check(self, event: BaseModel) -> None:
        """Schema version 1 is what it always was."""
        if getattr(event, "schema_version", 1) != 1:
            return
        given = event.model_fields_set
        added = [f for f in self.v2_only if not absent(getattr(event, f))]
        if added:
            raise ValueError(f"{', '.join(added)}: needs schema_version 2")
        missing = [f for f in self.v1_required if f not in given or getattr(event, f) is None]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required in schema_version 1")
        for field, values in self.v2_values:
            if getattr(event, field) in values:
                raise ValueError(f"{field}={getattr(event, field)!r}: needs schema_version 2")


class Event(Contract):
    """The envelope: identity, type, version, time and origin of every event."""

    event_id: UUID
    event_type: str
    #: 2: the fields of contract v2 (candidates, decisions, fills, a bar's split); the
    #: other events are the same in both versions
    schema_version: Literal[1, 2] = 1
    occurred_at: UtcTime
    producer: Identifier

    @property
    def key(self) -> str:
        """The Kafka partition key (the symbol for market events)."""
        return str(getattr(self, "symbol"))  # noqa: B009 - every keyed event has a symbol
