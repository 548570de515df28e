"""Alpaca's order and fill shapes (its public Trading API) as contract-v2 fills: any Alpaca
user can feed the engine with these.

* `trade_update`: one message of the `trade_updates` stream. `fill` and `partial_fill`
  events become a fill (`execution_id` is its id, the order's id its `order_id`); every
  other event (`new`, `canceled`, ...) is not a fill and says so.
* `order`: an order object of the REST API (`GET /v2/orders`), once filled: one fill at
  its average price and filled quantity, at `filled_at`.

An order whose `client_order_id` is `<decision_id>:<purpose>` (Alpaca takes up to 128
characters) links its fills to that decision, and is one trade with the decision's other
orders; a purpose that is an exit reason (`stop_loss`, `profit_target`, ...) is the exit's.
Any Alpaca user can tag orders this way; an untagged order stands alone, its exit manual.

Numbers arrive as strings, sides in lower case; quantities may be fractional. A sell that
leaves no position is an EXIT, one that leaves some a PARTIAL_EXIT; Alpaca does not say
why a position was closed, so an exit's reason is `manual` and its provenance says it was
assumed. Paper accounts give `mode="paper"`: stored, never P&L.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, get_args

from amc_learning.adapters.native import Unmappable, is_missing, number, utc
from amc_learning.schemas.common import ExitReason, FillType, Side, TradeMode
from amc_learning.schemas.trades import TradeFilled

PRODUCER = "alpaca"
FILL_EVENTS = ("fill", "partial_fill")
#: A client order id's purpose that names an exit reason, as that reason.
EXIT_REASONS: dict[str, ExitReason] = {r: r for r in get_args(ExitReason)}
_NAMESPACE = uuid.UUID("0e9d4c7a-3f55-4b8e-a1d2-9f6b2c8e4d71")


def trade_update(message: Mapping[str, Any], *, mode: TradeMode = "live",
                 decision_id: str | None = None) -> TradeFilled:
    """A `trade_updates` message (`{"stream": ..., "data": {...}}` or its `data`)."""
    data = message.get("data", message) if isinstance(message, Mapping) else {}
    event = data.get("event") if isinstance(data, Mapping) else None
    if event not in FILL_EVENTS:
        raise Unmappable(f"not a fill: event {event!r}")
    order = data.get("order")
    if not isinstance(order, Mapping):
        raise Unmappable("order: missing")
    execution = data.get("execution_id") or f"{order.get('id')}:{data.get('timestamp')}"
    return _fill(order, fill_id=str(execution), at=data.get("timestamp"),
                 quantity=number(data.get("qty")), price=number(data.get("price")),
                 left=number(data.get("position_qty")), mode=mode, decision_id=decision_id)


def order(record: Mapping[str, Any], *, mode: TradeMode = "live",
          decision_id: str | None = None) -> TradeFilled:
    """A REST order object, filled (partly filled orders: their filled part)."""
    if "id" not in record or "side" not in record:
        raise Unmappable("not an order (no id or side): a position or another object")
    if record.get("status") not in ("filled", "partially_filled"):
        raise Unmappable(f"not filled: status {record.get('status')!r}")
    if is_missing(record.get("filled_at")):
        raise Unmappable("filled_at: missing (the time of the fill)")
    return _fill(record, fill_id=f"{record['id']}:filled", at=record["filled_at"],
                 quantity=number(record.get("filled_qty")),
                 price=number(record.get("filled_avg_price")), left=None, mode=mode,
                 decision_id=decision_id)


def _fill(order: Mapping[str, Any], *, fill_id: str, at: object, quantity: float | None,
          price: float | None, left: float | None, mode: TradeMode,
          decision_id: str | None) -> TradeFilled:
    said = str(order.get("side", "")).upper()
    if said not in ("BUY", "SELL"):
        raise Unmappable(f"side: {order.get('side')!r} is neither buy nor sell")
    side: Side = "BUY" if said == "BUY" else "SELL"
    if quantity is None or price is None:
        raise Unmappable("qty and price: missing")
    provenance = {}
    client = str(order.get("client_order_id") or "")
    tagged, _, purpose = client.rpartition(":")
    decision_id = decision_id or (tagged or None)
    entering = purpose == "entry" if tagged else side == "BUY"
    fill_type: FillType = "ENTRY"
    reason: ExitReason | None = None
    if not entering:
        fill_type = "PARTIAL_EXIT" if left not in (None, 0.0) else "EXIT"
        reason = EXIT_REASONS.get(purpose, "manual")
        if reason == "manual":
            provenance["exit_reason"] = "Alpaca does not say why: manual assumed"
    if left is None and not entering:
        provenance["fill_type"] = "no position size given: a full exit assumed"
    return TradeFilled(
        event_id=_uuid(fill_id), occurred_at=utc(str(at)), producer=PRODUCER,
        schema_version=2, fill_id=_identifier(fill_id),
        trade_id=_identifier(tagged or client or str(order["id"])),
        decision_id=decision_id, symbol=str(order.get("symbol", "")),
        fill_type=fill_type, side=side, quantity=abs(quantity),
        price=price, exit_reason=reason, order_id=_identifier(str(order["id"])),
        mode=mode, provenance=provenance)


def _uuid(key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"alpaca/{key}")


def _identifier(text: str) -> str:
    """An id as the contract takes it: at most 128 of [A-Za-z0-9_.:-]."""
    cleaned = "".join(c if c.isalnum() or c in "_.:-" else "-" for c in text)
    return cleaned[:128] or "-"
