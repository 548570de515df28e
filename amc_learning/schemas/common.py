"""Shared field types and the event envelope every topic carries."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

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
ExitReason = Literal["stop_loss", "profit_target", "manual", "time"]
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


class Event(Contract):
    """The envelope: identity, type, version, time and origin of every event."""

    event_id: UUID
    event_type: str
    schema_version: Literal[1] = 1
    occurred_at: UtcTime
    producer: Identifier

    @property
    def key(self) -> str:
        """The Kafka partition key (the symbol for market events)."""
        return str(getattr(self, "symbol"))  # noqa: B009 - every keyed event has a symbol
