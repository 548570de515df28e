"""Values as real producers write them, read into plain Python values.

AMC-Trader writes numbers as text (`"$30.45"`, `"+1.0%"`, `"$+0.92"`, `"180948088.0"`),
two price targets in one cell (`"$39.59 / $45.67"`), factors as emoji text with a tier
and a measurement (`"⚠️  Moderate: 35.8M"`, `"✅ PERFECT: +0.0% (pre-breakout)"`), its own
decision labels (`BUY_MORE`, `TRIM_50`, `LIQUIDATE`, …) and naive wall-clock times. Every
function here is pure and total: it returns None for "not measured" (an empty cell,
`unknown`, `N/A`) — never a fabricated 0 — and raises `Unmappable` with a reason for what
it cannot read, so an adapter can reject the record and say why.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from amc_learning.schemas.common import DecisionType

#: Texts that mean "no value" in the producers' files.
MISSING = {"", "unknown", "n/a", "na", "none", "null", "nan", "-", "--", "—"}
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_NUMBER = re.compile(r"([-+]?)\s*\$?\s*([-+]?)(\d[\d,]*(?:\.\d*)?|\.\d+)\s*([kmbt%])?",
                     re.IGNORECASE)


class Unmappable(ValueError):
    """A value an adapter cannot read; the message is the rejection reason."""


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in MISSING)


def number(value: object) -> float | None:
    """A number from a number or its text: `"$30.45"` 30.45, `"$+0.92"` 0.92,
    `"-$1,234.5"` -1234.5, `"35.8M"` 35.8e6, `"+1.0%"` 1.0 (percent points: see
    `fraction`). None when missing; Unmappable when there is no number in it."""
    if is_missing(value):
        return None
    if isinstance(value, bool):
        raise Unmappable(f"not a number: {value!r}")
    if isinstance(value, int | float | Decimal):
        return float(value)
    if not isinstance(value, str):
        raise Unmappable(f"not a number: {value!r}")
    match = _NUMBER.search(value)
    if match is None:
        raise Unmappable(f"no number in {value!r}")
    sign = -1.0 if "-" in (match.group(1) + match.group(2)) else 1.0
    try:
        magnitude = float(Decimal(match.group(3).replace(",", "")))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits digits only
        raise Unmappable(f"no number in {value!r}") from exc
    suffix = (match.group(4) or "").lower()
    return sign * magnitude * _SUFFIX.get(suffix, 1.0)


def fraction(value: object) -> float | None:
    """A percentage as a fraction: `"+1.0%"` 0.01, `30.12` (percent points) 0.3012."""
    points = number(value)
    return None if points is None else points / 100.0


def prices(value: object) -> list[float]:
    """Every price in a cell: `"$39.59 / $45.67"` [39.59, 45.67]; [] when missing."""
    if is_missing(value):
        return []
    if not isinstance(value, str):
        single = number(value)
        return [] if single is None else [single]
    found = [number(part) for part in re.split(r"\s*[/|;]\s*|\s+(?:and|or)\s+", value)
             if not is_missing(part)]
    return [p for p in found if p is not None]


#: US zone abbreviations a wall-clock text may end with ("12:17 PM PT").
ZONES = {"pt": "America/Los_Angeles", "pst": "America/Los_Angeles",
         "pdt": "America/Los_Angeles", "et": "America/New_York", "est": "America/New_York",
         "edt": "America/New_York", "ct": "America/Chicago", "utc": "UTC", "z": "UTC"}
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]\.?m\.?)?\s*([a-z]{1,3})?\s*$",
                    re.IGNORECASE)


def number_or_none(value: object) -> float | None:
    """`number`, or None where the value holds no number (a field read only if usable)."""
    try:
        return number(value)
    except Unmappable:
        return None


def utc(day: str | date, clock: str | time | None = None, tz: str = "UTC") -> datetime:
    """A timestamp in UTC from a date and a wall-clock time in `tz` (an IANA name), or
    from one ISO text; an aware ISO text keeps its own offset. Naive times are the norm
    in AMC-Trader (Pacific in its cron scripts, UTC in its backend), hence `tz`. A clock
    may be written `13:23:43`, `12:17 PM` or `12:17 PM PT` (its zone then wins over `tz`)."""
    if isinstance(clock, str):
        clock, tz = _wall_clock(clock, tz)
    zone = time_zone(tz)
    try:
        if isinstance(day, date) and not isinstance(day, datetime):
            parsed = datetime.combine(day, _clock(clock))
        else:
            text = str(day).strip().replace("Z", "+00:00")
            parsed = datetime.fromisoformat(text)
            if clock is not None and "T" not in text and " " not in text:
                parsed = datetime.combine(parsed.date(), _clock(clock))
    except ValueError as exc:
        raise Unmappable(f"not a date or time: {day!r} {clock or ''}".rstrip()) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def time_zone(tz: str) -> ZoneInfo:
    """The IANA time zone `tz`; Unmappable when there is none of that name."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Unmappable(f"unknown time zone {tz!r}") from exc


def _wall_clock(text: str, tz: str) -> tuple[time, str]:
    found = _CLOCK.match(text)
    if found is None:
        raise Unmappable(f"not a time of day: {text!r}")
    hour, minute, second = int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)
    meridiem, zone = (found.group(4) or "").lower().replace(".", ""), found.group(5)
    if meridiem:
        if not 1 <= hour <= 12:
            raise Unmappable(f"not a time of day: {text!r}")
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    if zone is not None and zone.lower() not in ZONES:
        raise Unmappable(f"unknown time zone {zone!r} in {text!r}")
    try:
        return time(hour, minute, second), ZONES[zone.lower()] if zone else tz
    except ValueError as exc:
        raise Unmappable(f"not a time of day: {text!r}") from exc


def _clock(clock: time | None) -> time:
    return clock or time(0, 0)


@dataclass(frozen=True)
class Action:
    """A producer's decision label, read: the canonical action, the label as written,
    and the change of the position it implies (percent of it; -50 for TRIM_50)."""

    action: DecisionType
    label: str
    size_change_pct: float | None = None


_ACTIONS: dict[str, tuple[DecisionType, float | None]] = {
    "buy": ("BUY", None), "long": ("BUY", None), "sell": ("SELL", None),
    "short": ("SELL", None), "hold": ("HOLD", None), "keep": ("HOLD", None),
    "buy_more": ("BUY", None), "increase": ("BUY", None), "add": ("BUY", None),
    "trim": ("SELL", None), "reduce": ("SELL", None),
    "liquidate": ("SELL", -100.0), "full_exit": ("SELL", -100.0), "exit": ("SELL", -100.0),
    "stop_loss": ("SELL", -100.0), "trailing_stop": ("SELL", -100.0),
    "partial_profit": ("SELL", None), "ignore": ("IGNORE", None),
    "research": ("IGNORE", None), "watch": ("IGNORE", None), "watchlist": ("IGNORE", None),
    "monitor": ("IGNORE", None), "cancelled": ("IGNORE", None), "canceled": ("IGNORE", None),
    "pass": ("IGNORE", None), "skip": ("IGNORE", None),
    "ignore_recommendation": ("IGNORE", None),
}


def action(label: object) -> Action:
    """`"BUY_MORE"` BUY; `"TRIM_50"` SELL -50 %; `"LIQUIDATE"` SELL -100 %; `"buy"` BUY;
    `"RESEARCH"` and `"CANCELLED"` IGNORE (nothing was done). Unmappable when unknown."""
    if is_missing(label) or not isinstance(label, str):
        raise Unmappable(f"no decision label: {label!r}")
    key = re.sub(r"[\s\-]+", "_", label.strip().lower())
    trimmed = re.fullmatch(r"(trim|reduce|sell|partial_profit)_(\d{1,3})", key)
    if trimmed and 0 < int(trimmed.group(2)) <= 100:
        return Action("SELL", label, -float(trimmed.group(2)))
    if key not in _ACTIONS:
        raise Unmappable(f"unknown decision label {label!r}")
    canonical, change = _ACTIONS[key]
    return Action(canonical, label, change)


@dataclass(frozen=True)
class Factor:
    """A factor written as text: its tier (`moderate`, `perfect`, `ultra_nano`), the
    number it measured (35.8e6 for "35.8M", 3.9 for "3.9 DTC") with its unit, and the
    producer's mark (ok, warning, alarm)."""

    tier: str | None
    value: float | None
    unit: str | None
    mark: str | None
    text: str


_MARKS = {"✅": "ok", "✔": "ok", "⚠": "warning", "❌": "alarm", "🚫": "alarm", "🔥": "ok"}
_UNIT = re.compile(r"\d[\d,.]*\s*([kmbt](?![a-z]))?\s*(%|dtc|x|pts?|points)?", re.IGNORECASE)


def factor(text: object) -> Factor:
    """`"⚠️  Moderate: 35.8M"` Factor("moderate", 35.8e6, None, "warning");
    `"✅ PERFECT: +0.0% (pre-breakout)"` Factor("perfect", 0.0, "%", "ok");
    `"⚠️  Moderate: 3.9 DTC"` Factor("moderate", 3.9, "DTC", "warning")."""
    if is_missing(text) or not isinstance(text, str):
        raise Unmappable(f"no factor text: {text!r}")
    mark = next((name for glyph, name in _MARKS.items() if glyph in text), None)
    plain = "".join(c for c in text  # without the emoji and their variation selectors
                    if unicodedata.category(c) not in ("So", "Sk", "Mn", "Cf")).strip()
    tier, rest = None, plain
    if ":" in plain:
        head, rest = plain.split(":", 1)
        if len(head.split()) <= 3:  # a tier is a word or two; a longer head is prose
            tier = re.sub(r"[^a-z0-9]+", "_", head.strip().lower()).strip("_") or None
        else:
            rest = plain
    value: float | None = None
    unit: str | None = None
    try:
        value = number(rest)
    except Unmappable:
        value = None
    if value is not None:
        found = _UNIT.search(rest)
        unit = (found.group(2) or None) if found else None
        unit = unit.upper() if unit and unit.lower() == "dtc" else unit
    return Factor(tier, value, unit, mark, text)


def llm_rating(text: object) -> float | None:
    """The "(LLM: 7/10)" rating a catalyst text ends with, as a fraction (0.7)."""
    if not isinstance(text, str):
        return None
    found = re.search(r"LLM:\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)", text)
    if not found or float(found.group(2)) == 0:
        return None
    return float(found.group(1)) / float(found.group(2))
