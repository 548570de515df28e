"""Trade execution: fills that enter, reduce and exit positions."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from amc_learning.schemas.common import (
    Event,
    ExitReason,
    FillType,
    Identifier,
    Percent,
    Price,
    Provenance,
    Side,
    Symbol,
    TradeMode,
    VersionRules,
    absent,
)


class TradeFilled(Event):
    """One fill. `fill_id` is the idempotency key; an EXIT says why the position closed.

    Schema version 2 carries the broker's order id (an order fills in several parts, each
    its own `fill_id`), the account's mode — only `live` fills are P&L; `paper` and
    `shadow` ones are stored and tracked apart — and the exit reasons real systems use
    (`trailing_stop`, `partial_profit`).
    """

    event_type: Literal["trade_filled"] = "trade_filled"
    fill_id: Identifier
    trade_id: Identifier
    decision_id: Identifier | None = None
    symbol: Symbol
    fill_type: FillType
    side: Side
    quantity: float = Field(gt=0.0, le=1e9)
    price: Price
    position_size_pct: Percent = 0.0
    exit_reason: ExitReason | None = None
    order_id: Identifier | None = Field(default=None, exclude_if=absent)
    #: left out when live: the only mode v1 knows
    mode: TradeMode = Field(default="live",
                                                     exclude_if=lambda v: v == "live")
    provenance: Provenance = Field(default_factory=dict, exclude_if=absent)

    VERSIONS: ClassVar[VersionRules] = VersionRules(
        v2_only=("order_id", "provenance"),
        v2_values=(("mode", ("paper", "shadow")),
                   ("exit_reason", ("trailing_stop", "partial_profit"))))

    @model_validator(mode="after")
    def _exit_has_reason(self) -> TradeFilled:
        self.VERSIONS.check(self)
        if (self.fill_type == "ENTRY") != (self.exit_reason is None):
            raise ValueError("exit_reason is required on exits and forbidden on entries")
        return self
