"""The bridge's pure parts on hand-made cases (windows, gaps, splits, events, the trading
calendar), and the one assumption it makes about an SDK's insides."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from amc_learning.intelligence import calendar
from amc_learning.intelligence.prices import (
    RawBar,
    Tracked,
    bar_events,
    missing,
    split_ratios,
    windows,
)
from amc_learning.market.providers import Alpaca, ProviderError, wait_asked
from amc_learning.schemas.prices import BARS


def test_the_calendar_knows_holidays_and_early_closes():
    days = calendar.sessions(date(2024, 7, 1), date(2024, 7, 8))
    assert days == [date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3), date(2024, 7, 5),
                    date(2024, 7, 8)]  # the 4th and the weekend are no sessions
    assert calendar.close_of(date(2024, 7, 3)) == datetime(2024, 7, 3, 17, tzinfo=UTC)
    assert calendar.last_closed(datetime(2024, 7, 5, 19, 59, tzinfo=UTC)) == date(2024, 7, 3)
    assert calendar.last_closed(datetime(2024, 7, 5, 20, 0, tzinfo=UTC)) == date(2024, 7, 5)
    assert calendar.offset(date(2024, 7, 4), 0) == date(2024, 7, 5)  # a holiday: the next
    assert calendar.offset(date(2024, 7, 5), -3) == date(2024, 7, 1)


def test_windows_cover_the_baseline_the_horizon_and_open_positions_never_past_today():
    last = date(2024, 8, 30)
    spans = windows([Tracked("AAA", date(2024, 7, 1)), Tracked("AAA", date(2024, 7, 10)),
                     Tracked("BBB", date(2024, 8, 20), open_position=True),
                     Tracked("CCC", date(2024, 8, 26))],
                    horizon=5, baseline=2, last=last, offset=calendar.offset,
                    market=["SPY"], since=None)
    assert spans["AAA"] == (date(2024, 6, 27), date(2024, 7, 17))  # 2 before, 5 after
    assert spans["BBB"] == (date(2024, 8, 16), last)  # held: to the last closed session
    assert spans["CCC"] == (date(2024, 8, 22), last)  # its horizon has not passed yet
    assert spans["SPY"] == (date(2024, 6, 27), last)  # the market: every session needed
    floored = windows([Tracked("AAA", date(2024, 7, 1))], horizon=5, baseline=2, last=last,
                      offset=calendar.offset, since=date(2024, 7, 10))
    assert floored == {}  # entirely before --since
    have = {"AAA": {date(2024, 6, 27), date(2024, 7, 1)}}
    gaps = missing({"AAA": (date(2024, 6, 27), date(2024, 7, 5))}, have, calendar.sessions)
    assert gaps == {"AAA": [date(2024, 6, 28), date(2024, 7, 2), date(2024, 7, 3),
                            date(2024, 7, 5)]}


def bar(day: date, close: float) -> RawBar:
    return RawBar(day, close, close * 1.01, close * 0.99, close, 1000.0)


def test_splits_are_read_off_traded_and_adjusted_bars():
    days = calendar.sessions(date(2024, 6, 3), date(2024, 6, 14))
    traded = [bar(d, 10.0 if d < days[4] else 5.0 if d < days[8] else 50.0) for d in days]
    # adjusted to today's shares: a 2-for-1 at days[4], a 1-for-10 reverse at days[8]
    adjusted = [bar(d, 10.0 / 2 * 10 if d < days[4] else 5.0 * 10 if d < days[8] else 50.0)
                for d in days]
    assert split_ratios(traded, adjusted) == {days[4]: 2.0, days[8]: 0.1}
    assert split_ratios(traded, traded) == {}  # no split: nothing, whatever the moves
    crash = [bar(d, 10.0 if d < days[4] else 5.0) for d in days]  # a real -50 %
    assert split_ratios(crash, crash) == {}
    # a 3-for-1, its adjusted prices rounded to 4 decimals by the provider: still 3.0
    thirds = [bar(d, 10.0 if d < days[4] else 3.33) for d in days]
    rounded = [bar(d, round(b.close / 3, 4) if d < days[4] else b.close)
               for d, b in zip(days, thirds, strict=True)]
    assert split_ratios(thirds, rounded) == {days[4]: 3.0}


def test_events_one_per_session_with_the_split_and_no_invented_bars():
    days = calendar.sessions(date(2024, 6, 3), date(2024, 6, 10))  # six sessions
    bars = [bar(days[0], 10.0), bar(days[1], 5.0), bar(days[3], 5.0),  # a halt on days[2]
            RawBar(days[4], 10, 9, 11, 10, 5)]  # high below low: refused, and why
    events, none, refused = bar_events(
        "AAA", days, bars, {days[1]: 2.0}, producer="market-data-stub",
        closes=calendar.close_of, pending=days[5])
    assert [e.session for e in events] == [days[0], days[1], days[3]]
    assert events[1].split_ratio == 2.0 and events[1].schema_version == 2
    assert events[0].split_ratio is None and events[0].schema_version == 1
    assert none == [days[2]]  # days[5] is the newest closed session: its bar may come
    assert list(refused) == [days[4]] and "low" in refused[days[4]]
    again, _, _ = bar_events("AAA", days[:1], bars, {}, producer="market-data-stub",
                             closes=calendar.close_of, pending=days[5])
    assert again[0].event_id == events[0].event_id  # the same bar is the same event
    assert events[0].event_id.version == 5 and BARS


def test_the_wait_is_what_the_provider_asked():
    assert wait_asked({"Retry-After": "3"}) == 3.0
    assert wait_asked({"X-RateLimit-Reset": "0"}) == 0.0  # in the past: at once
    assert wait_asked({}) is None and wait_asked({"Retry-After": "soon"}) is None
    assert ProviderError(429, "x").transient and ProviderError(None, "x").transient
    assert ProviderError(503, "x").transient and not ProviderError(400, "x").transient


def test_alpacas_sdk_still_has_the_retry_count_the_bridge_turns_off():
    """alpaca-py retries a 429 itself, 3 s apart, and takes no setting for it; the bridge
    sets its private count to none. If a release renames it, this fails, not the sync."""
    provider = Alpaca("key", "secret", "http://127.0.0.1:9", "iex")
    client = provider._client
    assert hasattr(client, "_retry") and client._retry == 0
    with pytest.raises(ProviderError) as caught:  # nothing listens there: no answer
        provider.bars("AAA", date(2024, 6, 3), date(2024, 6, 7), False)
    assert caught.value.status is None and caught.value.transient
