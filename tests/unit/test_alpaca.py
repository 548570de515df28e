"""Alpaca's own shapes (its public Trading API) as contract-v2 fills: numbers as strings,
lower-case sides, fractional quantities, partial fills of one order, paper accounts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amc_learning.adapters import alpaca
from amc_learning.adapters.native import Unmappable
from amc_learning.schemas.registry import decode_event

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader" / "payloads"
ORDER = {"id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "client_order_id": "amc-rig-0210",
         "symbol": "RIG", "side": "buy", "type": "market", "time_in_force": "day",
         "status": "partially_filled", "qty": "55", "filled_qty": "20.5",
         "filled_avg_price": "5.345", "filled_at": "2026-02-10T20:00:23.518Z"}


def _update(event: str, qty: str, position: str, side: str = "buy", **order) -> dict:
    return {"stream": "trade_updates", "data": {
        "event": event, "execution_id": f"exec-{event}-{qty}", "timestamp":
        "2026-02-10T20:00:23.518Z", "price": "5.345", "qty": qty, "position_qty": position,
        "order": {**ORDER, "side": side, **order}}}


def test_each_partial_fill_of_an_order_is_its_own_fill_with_the_order_id():
    first = alpaca.trade_update(_update("partial_fill", "20.5", "20.5"),
                                decision_id="amc-scan:RIG:2026-02-10")
    last = alpaca.trade_update(_update("fill", "34.5", "55"))
    assert first.fill_id != last.fill_id and first.order_id == last.order_id == ORDER["id"]
    assert (first.fill_type, first.side, first.quantity, first.price) == (
        "ENTRY", "BUY", 20.5, 5.345)
    assert first.occurred_at == datetime(2026, 2, 10, 20, 0, 23, 518000, tzinfo=UTC)
    assert first.trade_id == "amc-rig-0210" and first.decision_id == "amc-scan:RIG:2026-02-10"
    assert decode_event(first.model_dump_json().encode()) == first
    assert alpaca.trade_update(_update("fill", "34.5", "55")).event_id == last.event_id


def test_a_sell_is_a_partial_or_a_full_exit_by_what_is_left_and_says_its_reason_was_assumed():
    partial = alpaca.trade_update(_update("fill", "20", "35", side="sell"))
    full = alpaca.trade_update(_update("fill", "35", "0", side="sell"))
    assert (partial.fill_type, full.fill_type) == ("PARTIAL_EXIT", "EXIT")
    assert full.exit_reason == "manual" and "assumed" in full.provenance["exit_reason"]


def test_a_paper_fill_is_marked_paper_and_other_events_are_not_fills():
    paper = alpaca.trade_update(_update("fill", "55", "55"), mode="paper")
    assert paper.mode == "paper" and paper.schema_version == 2
    for event in ("new", "canceled", "rejected"):
        with pytest.raises(Unmappable, match=f"not a fill: event '{event}'"):
            alpaca.trade_update(_update(event, "0", "0"))


def test_rest_orders_as_amc_trader_reads_them_each_have_a_reason_when_not_a_fill():
    records = json.loads((PAYLOADS / "r4_alpaca_orders_as_consumed.json").read_text())["records"]
    reasons = []
    for record in records:
        with pytest.raises(Unmappable) as caught:
            alpaca.order(record)
        reasons.append(str(caught.value))
    assert reasons == ["filled_at: missing (the time of the fill)"] * 2 + [
        "not an order (no id or side): a position or another object"]
    filled = alpaca.order({**records[0], "filled_at": "2026-02-20T15:31:02Z"})
    assert (filled.symbol, filled.side, filled.quantity, filled.price) == ("KSS", "SELL", 7.0,
                                                                          18.8)
    assert alpaca.order(ORDER).quantity == 20.5  # the filled part of a partly filled order


def test_an_order_tagged_with_its_decision_links_its_fills_and_names_the_exit():
    entry = alpaca.trade_update(_update("fill", "55", "55",
                                        client_order_id="amc-ld:dec-7:entry"))
    exit_ = alpaca.trade_update(_update("fill", "55", "0", side="sell",
                                        client_order_id="amc-ld:dec-7:stop_loss"))
    assert (entry.decision_id, entry.trade_id, entry.fill_type) == (
        "amc-ld:dec-7", "amc-ld:dec-7", "ENTRY")
    assert (exit_.decision_id, exit_.trade_id, exit_.fill_type, exit_.exit_reason) == (
        "amc-ld:dec-7", "amc-ld:dec-7", "EXIT", "stop_loss")
    assert "exit_reason" not in exit_.provenance  # said, not assumed
    short = alpaca.trade_update(_update("fill", "10", "-10", side="sell",
                                        client_order_id="dec-9:entry"))
    assert (short.fill_type, short.side, short.decision_id) == ("ENTRY", "SELL", "dec-9")
    untagged = alpaca.trade_update(_update("fill", "55", "0", side="sell"))
    assert (untagged.decision_id, untagged.exit_reason) == (None, "manual")
    assert untagged.provenance["exit_reason"].startswith("Alpaca does not say why")
