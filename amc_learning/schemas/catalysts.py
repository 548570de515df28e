"""Catalysts: news-like events (earnings, FDA decisions, ...) observed for a symbol."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from amc_learning.schemas.common import Event, ShortText, Symbol

CatalystKind = Literal[
    "earnings", "fda_decision", "contract_award", "product_launch", "guidance", "other"
]


class CatalystObserved(Event):
    """A catalyst that happened to `symbol` in trading session `session`."""

    event_type: Literal["catalyst_observed"] = "catalyst_observed"
    symbol: Symbol
    session: date
    kind: CatalystKind
    headline: ShortText = ""
    magnitude: float = Field(0.0, ge=0.0, le=1.0)
