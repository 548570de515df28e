"""Daily bars from the files vendors and downloads write, as `price_bar_closed` events.

Two shapes (`read_bar_file`), CSV or Parquet (read with polars):

* **long**: a row per symbol and session — `symbol, date, open, high, low, close,
  volume[, split_ratio]` in any order, names matched without regard to case, other names
  mapped by the caller (`columns`: theirs -> ours). Prices as traded; a split's ratio on
  the session it takes effect, as the tracker expects.
* **wide**: a date column and one column of closes per symbol (a download of adjusted
  closes). Each bar's open, high and low are its close and its volume unknown (0): the
  summary says so. A split needs no ratio there: the closes are already adjusted.

Every row is accounted for: a bar (then the caller publishes it, or finds it stored
already) or a rejection with its reason — a date that is not a trading session, a price
that is not positive, a bar whose low is above its high, a second row for the same
symbol and session. Columns no shape reads are named in the notes. A bar's event id is
the one `prices sync` gives the same symbol and session, so importing a bar the bridge
synced, or importing twice, stores nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from amc_learning.adapters.mapped import reason
from amc_learning.adapters.native import Unmappable, number
from amc_learning.schemas.prices import PriceBarClosed, bar_id

LONG = ("symbol", "date", "open", "high", "low", "close", "volume", "split_ratio")
#: the long shape's columns a file must have (volume and split ratio may be absent)
NEEDED = ("symbol", "date", "open", "high", "low", "close")
PRODUCER = "market-data-file"
#: the names a wide file's date column goes by
DATES = ("date", "timestamp", "time", "session", "day")


@dataclass
class BarFile:
    """What a bars file held: its shape, the rows read, the bars and the rejections."""

    shape: str
    rows: int = 0
    bars: list[PriceBarClosed] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class BarFileError(ValueError):
    """The file cannot be read as bars at all (the message says why and what to pass)."""


def load(path: Path) -> pl.DataFrame:
    """A CSV (every value as text) or Parquet file as a frame."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise BarFileError(f"{path}: not a CSV or Parquet table ({exc})"[:300]) from None


def read_bar_file(frame: pl.DataFrame, *, shape: str | None = None,
                  columns: Mapping[str, str] | None = None,
                  sessions: Callable[[date, date], list[date]],
                  closes: Callable[[date], datetime]) -> BarFile:
    """The bars of `frame` (see the module's doc); `shape` None: long when it has a
    symbol and a close column, else wide. `sessions(first, last)` are the trading
    sessions, `closes(session)` the time a session's bar closes."""
    mapped = {c: _known((columns or {}).get(c, c)) for c in frame.columns}
    frame = frame.rename({c: m for c, m in mapped.items() if m != c})
    if shape is None:
        shape = "long" if {"symbol", "close"} <= set(frame.columns) else "wide"
    if shape == "long":
        return _long(frame, sessions, closes)
    return _wide(frame, sessions, closes)


def _long(frame: pl.DataFrame, sessions: Callable[[date, date], list[date]],
          closes: Callable[[date], datetime]) -> BarFile:
    missing = [c for c in NEEDED if c not in frame.columns]
    if missing:
        raise BarFileError(
            f"a long bars file needs the columns {', '.join(NEEDED)}; missing: "
            f"{', '.join(missing)} (found: {', '.join(frame.columns)}). Map other names "
            "with --column THEIRS=OURS, or pass --format wide")
    out = BarFile("long", rows=frame.height)
    if extra := [c for c in frame.columns if c not in LONG]:
        out.notes.append(f"columns not read: {', '.join(extra)}")
    if "volume" not in frame.columns:
        out.notes.append("no volume column: volume unknown (0) on every bar")
    rows = frame.to_dicts()
    days = _days(rows, sessions)
    seen: set[tuple[str, date]] = set()
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"line {i}"
        try:
            symbol, day = str(row["symbol"] or "").strip().upper(), _day(row["date"])
            _session(day, days)
            if (symbol, day) in seen:
                raise Unmappable(f"a second row for {symbol} on {day}: the first is kept")
            prices = {k: _price(row.get(k), k) for k in ("open", "high", "low", "close")}
            ratio = number(row.get("split_ratio")) if "split_ratio" in row else None
            out.bars.append(_bar(symbol, day, prices, number(row.get("volume")) or 0.0,
                                 ratio if ratio not in (None, 1.0) else None, closes))
            seen.add((symbol, day))
        except (Unmappable, ValidationError, ValueError) as exc:
            out.rejected.append((where, reason(exc)))
    return out


def _wide(frame: pl.DataFrame, sessions: Callable[[date, date], list[date]],
          closes: Callable[[date], datetime]) -> BarFile:
    date_column = next((c for c in frame.columns if c in DATES), None)
    if date_column is None:
        raise BarFileError(
            f"a wide bars file needs a date column (date, timestamp, session or day) and a "
            f"column of closes per symbol; found: {', '.join(frame.columns)}. Map another "
            "name with --column THEIRS=date, or pass --format long")
    symbols = [c for c in frame.columns if c != date_column]
    out = BarFile("wide", rows=frame.height,
                  notes=["wide: closes only (adjusted); open, high and low are the close, "
                         "volume unknown (0)"])
    rows = frame.to_dicts()
    days = _days([{"date": r[date_column]} for r in rows], sessions)
    seen: set[date] = set()
    for i, row in enumerate(rows, start=2):
        where = f"line {i}"
        try:
            day = _day(row[date_column])
            _session(day, days)
            if day in seen:
                raise Unmappable(f"a second row for {day}: the first is kept")
            seen.add(day)
        except (Unmappable, ValueError) as exc:
            out.rejected.append((where, reason(exc)))
            continue
        for symbol in symbols:
            value = row.get(symbol)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue  # no close that day: no bar, nothing to account
            try:
                close = _price(value, symbol)
                out.bars.append(_bar(symbol.strip().upper(), day,
                                     dict.fromkeys(("open", "high", "low", "close"), close),
                                     0.0, None, closes))
            except (Unmappable, ValidationError, ValueError) as exc:
                out.rejected.append((f"{where} {symbol}", reason(exc)))
    return out


def _known(name: str) -> str:
    """A column's name as a shape reads it: a known name in lower case, any other as is
    (a wide file's symbols)."""
    lower = name.strip().lower()
    return lower if lower in LONG or lower in DATES else name.strip()


def _bar(symbol: str, day: date, prices: dict[str, float], volume: float,
         ratio: float | None, closes: Callable[[date], datetime]) -> PriceBarClosed:
    return PriceBarClosed.model_validate({
        "event_id": bar_id(symbol, day),
        "occurred_at": closes(day), "producer": PRODUCER, "symbol": symbol, "session": day,
        **prices, "volume": volume,
        **({"schema_version": 2, "split_ratio": ratio} if ratio else {})})


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise Unmappable(f"date: not a date ({text!r}); write it YYYY-MM-DD") from None


def _days(rows: list[dict[str, Any]], sessions: Callable[[date, date], list[date]]
          ) -> set[date]:
    """The trading sessions between the file's first and last readable dates."""
    found = []
    for row in rows:
        try:
            found.append(_day(row.get("date")))
        except Unmappable:
            continue
    return set(sessions(min(found), max(found))) if found else set()


def _session(day: date, days: set[date]) -> None:
    if day not in days:
        raise Unmappable(f"{day} is not a trading session (a weekend or an exchange holiday)")


def _price(value: Any, name: str) -> float:
    price = number(value)
    if price is None:
        raise Unmappable(f"{name}: missing")
    if price <= 0:
        raise Unmappable(f"{name}: {price:g} is not a positive price")
    return price
