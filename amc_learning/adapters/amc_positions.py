"""AMC-Trader's trades and positions as contract-v2 fills and decisions.

Pure functions from records to a `Mapped` (see `adapters.mapped`):

* `trade_log` — trades as `scripts/execute_trade.py` logs them in `memory/YYYY-MM-DD.md`:
  a heading `HH:MM:SS PT - BUY SYM`, then Qty and Price (rounded to cents). A BUY is the
  entry of the scan history's entered pick of that symbol and day (`amc-scan:SYM:DAY`),
  so its outcome is tracked from this fill.
* `closed_positions` — `closed_positions.json`: an entry fill and an exit fill each; the
  file does not say why a position was closed (`manual`, and the provenance says so).
* `scanner_test_trades` — the scanner's test trades (`12:17 PM PT`, tracked by hand, no broker
  order): paper fills, stored and never P&L.
* `scale_outs` — `scaled_positions.json`: a scale-out gives the profit percent and the
  shares sold, never a price: a partial exit priced at the entry price times that gain
  where another file of the import holds the entry price (said so in its provenance),
  else rejected with the entry price named as missing.
* `sales` — `ghost_portfolio.json`: shares sold with the date and price of the sale.
* `portfolio` — `portfolio_tracking.csv`, the daily view of the positions held: each row
  a HOLD of that position at that day's price, with its stop and its two targets.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from amc_learning.adapters.mapped import Mapped, each, event_id, required
from amc_learning.adapters.native import Unmappable, action, number, prices, utc
from amc_learning.schemas.common import Side
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled

PRODUCER = "amc-trader-execution"
_HEADING = re.compile(
    r"^\s*#*\s*(\d{1,2}:\d{2}:\d{2})\s*PT\s*-\s*([A-Z_ ]+?)\s+([A-Za-z.\-^]+)\s*$")
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")


def trade_log(records: Iterable[Mapping[str, Any]]) -> Mapped:
    return each(list(records), "trade log record",
                lambda i, record, inferred: _logged_trade(record, inferred))


def _logged_trade(record: Mapping[str, Any], inferred: Counter[str]) -> TradeFilled:
    heading = _HEADING.match(str(record.get("heading", "")))
    day = _DAY.search(str(record.get("file", "")))
    if heading is None or day is None:
        raise Unmappable(f"not a trade heading: {record.get('heading')!r}")
    clock, label, symbol = heading.groups()
    read = action(label)
    if read.action not in ("BUY", "SELL"):
        raise Unmappable(f"{label!r} is not a trade")
    key = f"{day.group(1)}:{symbol}"
    entry = read.action == "BUY"
    side: Side = "BUY" if entry else "SELL"
    provenance = {"occurred_at": "the file's date and the heading's Pacific time",
                  "price": "as logged, rounded to cents"}
    if not entry:
        provenance["exit_reason"] = "the log does not say why: manual assumed"
    inferred.update(("occurred_at",) + (() if entry else ("exit_reason",)))
    return TradeFilled(
        event_id=event_id("log", key, clock, label),
        occurred_at=utc(day.group(1), clock, "America/Los_Angeles"), producer=PRODUCER,
        schema_version=2, fill_id=f"amc-log:{key}:{clock}:{read.action}",
        trade_id=f"amc:{symbol}:{day.group(1)}",
        decision_id=f"amc-scan:{symbol}:{day.group(1)}" if entry else None, symbol=symbol,
        fill_type="ENTRY" if entry else "EXIT", side=side,
        quantity=required(number(record.get("Qty")), "Qty"),
        price=required(number(record.get("Price")), "Price"),
        exit_reason=None if entry else "manual", provenance=provenance)


def closed_positions(records: Iterable[Mapping[str, Any]], *, tz: str = "UTC") -> Mapped:
    return each(list(records), "closed position",
                lambda i, record, inferred: _closed(record, tz, inferred))


def _closed(record: Mapping[str, Any], tz: str, inferred: Counter[str]) -> list[TradeFilled]:
    symbol, opened = str(record.get("symbol", "")), str(record.get("entry_date", ""))
    trade = f"amc-closed:{symbol}:{opened[:10]}"
    quantity = required(number(record.get("qty")), "qty")
    common = {"producer": PRODUCER, "schema_version": 2, "trade_id": trade, "symbol": symbol,
              "quantity": quantity}
    entry = TradeFilled(
        event_id=event_id("closed-entry", trade), occurred_at=utc(opened, tz=tz),
        fill_id=f"{trade}:entry", fill_type="ENTRY", side="BUY",
        price=required(number(record.get("entry_price")), "entry_price"), **common)
    exit_ = TradeFilled(
        event_id=event_id("closed-exit", trade),
        occurred_at=utc(required(record.get("exit_date"), "exit_date"), tz=tz),
        fill_id=f"{trade}:exit", fill_type="EXIT", side="SELL",
        price=required(number(record.get("exit_price")), "exit_price"), exit_reason="manual",
        provenance={"exit_reason": "the file does not say why: manual assumed"}, **common)
    inferred.update(("exit_reason",))
    return [entry, exit_]


def scanner_test_trades(records: Iterable[Mapping[str, Any]], *, tz: str = "America/Los_Angeles"
                ) -> Mapped:
    return each(list(records), "test trade",
                lambda i, record, inferred: _test_trade(record, tz, inferred))


def _test_trade(record: Mapping[str, Any], tz: str, inferred: Counter[str]) -> TradeFilled:
    symbol, day = str(record.get("symbol", "")), str(record.get("entry_date", ""))[:10]
    trade = f"amc-test:{symbol}:{day}"
    inferred.update(("mode",))
    return TradeFilled(
        event_id=event_id("test-entry", trade), producer=PRODUCER, schema_version=2,
        occurred_at=utc(day, str(record.get("entry_time") or "06:30"), tz),
        fill_id=f"{trade}:entry", trade_id=trade, symbol=symbol, fill_type="ENTRY", side="BUY",
        quantity=required(number(record.get("qty")), "qty"),
        price=required(number(record.get("entry_price")), "entry_price"), mode="paper",
        provenance={"mode": f"a scanner test trade ({record.get('method') or 'no method'}):"
                            " no broker order, so paper"})


def scale_outs(records: Iterable[Mapping[str, Any]],
               entries: Mapping[str, tuple[float, str]] | None = None) -> Mapped:
    """`scaled_positions.json`'s scale-outs: a partial exit of the shares sold on its date,
    priced from the position's entry price (`entries`: symbol -> price and where it was
    found) times the stated gain; without an entry price it is rejected, the missing
    field named."""
    entries = entries or {}

    def one(i: int, record: Mapping[str, Any], inferred: Counter[str]) -> TradeFilled:
        symbol, day = str(record.get("symbol", "")), str(record.get("date_scaled", ""))[:10]
        gain = required(number(record.get("profit_pct_at_scale")), "profit_pct_at_scale")
        if symbol not in entries:
            raise Unmappable(f"entry price: missing (no file of this import holds one for "
                             f"{symbol}), and a scale-out states only the gain")
        entry, found = entries[symbol]
        left = number(record.get("shares_remaining"))
        inferred.update(("price", "occurred_at"))
        trade = f"amc:{symbol}"
        return TradeFilled(
            event_id=event_id("scale-out", symbol, day, record.get("shares_sold")),
            producer=PRODUCER, schema_version=2, occurred_at=utc(day, "13:00",
                                                                 "America/Los_Angeles"),
            fill_id=f"{trade}:scale-out:{day}", trade_id=trade, symbol=symbol,
            fill_type="EXIT" if left == 0 else "PARTIAL_EXIT", side="SELL",
            quantity=required(number(record.get("shares_sold")), "shares_sold"),
            price=round(entry * (1.0 + gain / 100.0), 4), exit_reason="partial_profit",
            provenance={"price": f"the entry price ({found}) times the stated gain",
                        "occurred_at": "the scale-out's date, at the close"})
    return each(list(records), "scale-out", one)


def sales(records: Iterable[Mapping[str, Any]], *, tz: str = "America/Los_Angeles"
          ) -> Mapped:
    """`ghost_portfolio.json`: shares sold out of a position (`Scale out 50% at profit
    target`) with the sale's date and price: a partial exit fill."""
    def one(i: int, record: Mapping[str, Any], inferred: Counter[str]) -> TradeFilled:
        symbol, day = str(record.get("symbol", "")), str(record.get("sell_date", ""))[:10]
        why = str(record.get("exit_reason") or "")
        partial = "scale" in why.lower() or "partial" in why.lower()
        inferred.update(("occurred_at", "exit_reason"))
        trade = f"amc:{symbol}"
        return TradeFilled(
            event_id=event_id("sale", symbol, day, record.get("shares_sold")),
            producer=PRODUCER, schema_version=2, occurred_at=utc(day, "13:00", tz),
            fill_id=f"{trade}:sale:{day}", trade_id=trade, symbol=symbol,
            fill_type="PARTIAL_EXIT" if partial else "EXIT", side="SELL",
            quantity=required(number(record.get("shares_sold")), "shares_sold"),
            price=required(number(record.get("sell_price")), "sell_price"),
            exit_reason="partial_profit" if partial else "manual",
            provenance={"occurred_at": f"the sale's date, at the close (13:00 {tz})",
                        "exit_reason": f"from its text: {why[:120]!r}"})
    return each(list(records), "sale", one)


def portfolio(rows: Iterable[Mapping[str, str]], *, tz: str = "America/Los_Angeles") -> Mapped:
    return each(list(rows), "portfolio_tracking.csv record",
                lambda i, row, inferred: _held(row, tz, inferred))


def _held(row: Mapping[str, str], tz: str, inferred: Counter[str]) -> ThesisDecided:
    symbol, day = row["Symbol"], row["Date"]
    price = required(number(row.get("Current Price")), "Current Price")
    stop = number(row.get("Stop Loss"))
    features = {k: v for k, v in (
        ("unrealized_pl_pct", number(row.get("Unrealized P&L %"))),
        ("entry_price", number(row.get("Entry Price"))),
        ("stop_loss_pct", None if stop is None else 100.0 * (stop / price - 1.0)),
        ("days_held", number(row.get("Days Held")))) if v is not None}
    inferred.update(("occurred_at", "decision_type"))
    return ThesisDecided(
        event_id=event_id("held", symbol, day), producer=PRODUCER, schema_version=2,
        occurred_at=utc(day, "13:00", tz), decision_id=f"amc-held:{symbol}:{day}",
        symbol=symbol, decision_type="HOLD", decision_source="thesis", entry_price=price,
        discovery_features=features, label="held", targets=prices(row.get("Target")),
        reasoning=" ".join(v for v in (row.get("Thesis"), row.get("Notes")) if v)[:4000],
        provenance={"occurred_at": f"the row's date, at the close (13:00 {tz})",
                    "decision_type": "a position held that day: a HOLD at its price"})
