"""Market data: daily OHLCV bars of symbols and indices (^IXIC, ^VIX)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from amc_learning.schemas.common import Event, Price, Symbol


class PriceBarClosed(Event):
    """A closed daily bar. Consistent by construction: low <= open, close <= high."""

    event_type: Literal["price_bar_closed"] = "price_bar_closed"
    symbol: Symbol
    session: date
    open: Price
    high: Price
    low: Price
    close: Price
    volume: float = Field(ge=0.0, le=1e13)

    @model_validator(mode="after")
    def _consistent(self) -> PriceBarClosed:
        if not self.low <= min(self.open, self.close) <= max(self.open, self.close) <= self.high:
            raise ValueError("bar must satisfy low <= open, close <= high")
        return self
