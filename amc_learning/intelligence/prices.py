"""What the market-data bridge must fetch, and what it makes of what it got (no IO).

* `windows`: per symbol, the sessions the outcome tracker needs: from `baseline`
  sessions before the earliest tracked entry (the volume baseline) to `horizon` sessions
  after the latest (an open position: to the last closed session), never past the last
  closed session. The index and the VIX cover every session any symbol needs.
* `missing`: the sessions of a window with neither a stored bar nor a note that the
  provider had none. Only calendar sessions count: a holiday is never missing.
* `split_ratios`: the splits between sessions, read off the same sessions fetched as
  traded and split-adjusted: adjusted = traded / (the splits after it), so the ratio of
  two neighbours' factors is the split that took effect between them.
* `bar_events`: the bars as `PriceBarClosed` events, one per symbol and session with an
  event id made of both (a second publish is the same event), and the sessions the
  provider had no bar for (a halt, a delisting), reported, never invented.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from itertools import pairwise

from pydantic import ValidationError

from amc_learning.schemas.prices import PriceBarClosed, bar_id

#: A factor ratio this far from 1 is a split (prices are rounded to cents or 1/10000).
SPLIT_TOLERANCE = 0.005


@dataclass(frozen=True)
class Tracked:
    """One decision or candidate being tracked: its symbol, the day of its entry, and
    whether it is an open position (tracked until it closes)."""

    symbol: str
    day: date
    open_position: bool = False


@dataclass(frozen=True)
class RawBar:
    """A daily bar as a provider gave it."""

    session: date
    open: float
    high: float
    low: float
    close: float
    volume: float


def windows(tracked: Iterable[Tracked], *, horizon: int, baseline: int, last: date,
            offset: Callable[[date, int], date], market: Iterable[str] = (),
            since: date | None = None) -> dict[str, tuple[date, date]]:
    """Per symbol (and per `market` symbol: the index, the VIX), the first and last session
    the tracker needs, within [`since`, `last`]."""
    spans: dict[str, tuple[date, date]] = {}
    for t in tracked:
        first = offset(t.day, -baseline)
        end = last if t.open_position else min(last, offset(t.day, horizon))
        if t.symbol in spans:
            first, end = min(first, spans[t.symbol][0]), max(end, spans[t.symbol][1])
        spans[t.symbol] = (first, end)
    if spans:
        overall = (min(s for s, _ in spans.values()), max(e for _, e in spans.values()))
        for symbol in market:
            spans[symbol] = overall
    floor = since or date.min
    return {s: (max(a, floor), b) for s, (a, b) in spans.items() if max(a, floor) <= b}


def missing(spans: dict[str, tuple[date, date]], have: dict[str, set[date]],
            sessions: Callable[[date, date], list[date]]) -> dict[str, list[date]]:
    """Per symbol, the sessions of its window that are neither stored nor noted."""
    out = {}
    for symbol, (start, end) in sorted(spans.items()):
        known = have.get(symbol, set())
        wanted = [d for d in sessions(start, end) if d not in known]
        if wanted:
            out[symbol] = wanted
    return out


def split_ratios(traded: list[RawBar], adjusted: list[RawBar]) -> dict[date, float]:
    """The splits that took effect at a session's open: session -> new shares per old."""
    adjusted_close = {a.session: a.close for a in adjusted if a.close > 0}
    factor = {b.session: b.close / adjusted_close[b.session] for b in traded
              if b.session in adjusted_close}
    days = sorted(factor)
    out = {}
    for before, after in pairwise(days):
        ratio = factor[before] / factor[after]
        if abs(ratio - 1.0) > SPLIT_TOLERANCE:
            simple = Fraction(ratio).limit_denominator(100)
            out[after] = float(simple) if abs(float(simple) / ratio - 1) < SPLIT_TOLERANCE \
                else round(ratio, 6)
    return out


def bar_events(symbol: str, wanted: list[date], bars: list[RawBar], splits: dict[date, float],
               *, producer: str, closes: Callable[[date], datetime],
               pending: date) -> tuple[list[PriceBarClosed], list[date], dict[date, str]]:
    """The events of the `wanted` sessions, the sessions with no bar (but `pending`, the
    newest closed session, whose bar may not be out yet), and the bars refused with why."""
    by_session = {b.session: b for b in bars}
    events, none, refused = [], [], {}
    for day in wanted:
        bar = by_session.get(day)
        if bar is None:
            if day != pending:
                none.append(day)
            continue
        ratio = splits.get(day)
        try:
            events.append(PriceBarClosed.model_validate({
                "event_id": bar_id(symbol, day),
                "occurred_at": closes(day), "producer": producer, "symbol": symbol,
                "session": day, "open": bar.open, "high": bar.high, "low": bar.low,
                "close": bar.close, "volume": bar.volume,
                **({"schema_version": 2, "split_ratio": ratio} if ratio else {})}))
        except ValidationError as exc:
            first = exc.errors()[0]
            refused[day] = f"{'.'.join(map(str, first['loc'])) or 'bar'}: {first['msg']}"
    return events, none, refused
