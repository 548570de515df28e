"""The US equity trading calendar (NYSE) from `exchange-calendars`: sessions, closes, offsets.

Holidays and early closes come from the maintained library, never from a list of ours, so
a holiday is never a "missing" bar and an early close is a close. The library (and pandas
under it) is imported on first use: every process imports this module, few ask it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Any


@cache
def _xnys() -> Any:
    import exchange_calendars

    return exchange_calendars.get_calendar("XNYS")


def _ts(day: date | datetime) -> Any:
    import pandas as pd

    return pd.Timestamp(day)


def sessions(start: date, end: date) -> list[date]:
    """Every session from `start` to `end`, both included (none when end < start)."""
    if end < start:
        return []
    cal = _xnys()
    start, end = max(start, cal.first_session.date()), min(end, cal.last_session.date())
    return [d.date() for d in cal.sessions_in_range(start, end)]


def close_of(session: date) -> datetime:
    """When `session` closes (UTC): 20:00 or 21:00, 17:00/18:00 on an early close."""
    return _xnys().session_close(_ts(session)).to_pydatetime().astimezone(UTC)


def last_closed(now: datetime) -> date:
    """The newest session whose close is at or before `now`."""
    cal = _xnys()
    minute = _ts(now.astimezone(UTC)).floor("min")
    return cal.minute_to_past_session(minute).date()  # type: ignore[no-any-return]


def offset(day: date, n: int) -> date:
    """The session `n` sessions from `day` (the session on or after `day` for n = 0; a
    day that is no session counts from the next one). Clamped to the calendar's range."""
    cal = _xnys()
    first = cal.date_to_session(_ts(day), direction="next")
    position = cal.sessions.get_loc(first) + n
    position = min(max(position, 0), len(cal.sessions) - 1)
    return cal.sessions[position].date()  # type: ignore[no-any-return]
