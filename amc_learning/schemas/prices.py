"""Market data: daily OHLCV bars of symbols and indices (^IXIC, ^VIX)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from amc_learning.schemas.common import Event, Price, Symbol, VersionRules, absent

#: The namespace of bar event ids (`bar_id`).
BARS = uuid.UUID("0b9c5f53-5d0e-4b8e-9a43-6f1d2b8c7a10")


def bar_id(symbol: str, session: date) -> uuid.UUID:
    """A daily bar's event id: the same for the same symbol and session, whoever publishes
    it (a sync, a file), so the bar is stored once."""
    return uuid.uuid5(BARS, f"{symbol}:{session.isoformat()}")


class PriceBarClosed(Event):
    """A closed daily bar, prices and volume as traded (not adjusted). Consistent by
    construction: low <= open, close <= high."""

    event_type: Literal["price_bar_closed"] = "price_bar_closed"
    symbol: Symbol
    session: date
    open: Price
    high: Price
    low: Price
    close: Price
    volume: float = Field(ge=0.0, le=1e13)
    #: v2: a split effective at this session's open, new shares per old share (2.0 for a
    #: 2-for-1, 0.1 for a 1-for-10 reverse split). The tracker puts every bar into the
    #: share terms of each decision's entry, so a split is never a -50 % return.
    split_ratio: float | None = Field(None, gt=0.0, le=1000.0, exclude_if=absent)

    VERSIONS: ClassVar[VersionRules] = VersionRules(v2_only=("split_ratio",))

    @model_validator(mode="after")
    def _consistent(self) -> PriceBarClosed:
        self.VERSIONS.check(self)
        if not self.low <= min(self.open, self.close) <= max(self.open, self.close) <= self.high:
            raise ValueError("bar must satisfy low <= open, close <= high")
        return self
