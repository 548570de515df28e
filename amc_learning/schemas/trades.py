"""Trade execution: fills that enter, reduce and exit positions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from amc_learning.schemas.common import Event, ExitReason, Identifier, Percent, Price, Side, Symbol


class TradeFilled(Event):
    """One fill. `fill_id` is the idempotency key; an EXIT says why the position closed."""

    event_type: Literal["trade_filled"] = "trade_filled"
    fill_id: Identifier
    trade_id: Identifier
    decision_id: Identifier | None = None
    symbol: Symbol
    fill_type: Literal["ENTRY", "PARTIAL_EXIT", "EXIT"]
    side: Side
    quantity: float = Field(gt=0.0, le=1e9)
    price: Price
    position_size_pct: Percent = 0.0
    exit_reason: ExitReason | None = None

    @model_validator(mode="after")
    def _exit_has_reason(self) -> TradeFilled:
        if (self.fill_type == "ENTRY") != (self.exit_reason is None):
            raise ValueError("exit_reason is required on exits and forbidden on entries")
        return self
