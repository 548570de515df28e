"""AMC-Trader's files as contract-v2 events (mikedmote52/AMC-trader, its `data/` folder).

Each adapter is a pure function from the file's records to a `Mapped`: the events, one
rejection (record, reason) for every record it could not map, and a count of what it
inferred or defaulted (each event also says so in its `provenance`). Every record read is
an event or a rejection. Event ids are a function of the source record, so importing a
file twice stores nothing new.

Mapped so far:

* `scanner_performance.csv` — the scan history: each pick is a candidate of the scan run
  of its date and time, scored by the points scanner (`raw_score` on its declared scale,
  −75..305); an entered pick also becomes a BUY decision at its entry price, a pick not
  entered a candidate that did not pass (tracked as the counterfactual it is).
* `diamonds.json` — the current scanner's output: candidates with their factor tiers
  (`"⚠️  Moderate: 35.8M"` → tier `moderate`), risk flags and text attributes. The file
  has no timestamp: the caller gives the time it was written.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from amc_learning.adapters.native import Unmappable, action, factor, llm_rating, number, utc
from amc_learning.schemas.common import Event, Scaled, ScoringModel, Tier
from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled

PRODUCER = "amc-trader-scanner"
#: The points scanner's net score: about -75..305 (penalties to every factor's top tier).
POINTS_SCALE = (-75.0, 305.0)
_NAMESPACE = uuid.UUID("3c0a2d54-8b1e-4f7a-9d6e-2a5f1c7e9b40")
#: diamonds.json: the factor texts that carry a tier, and the flags' own fields.
FACTOR_FIELDS = ("float", "momentum", "squeeze", "structure", "market_cap", "volume_pattern",
                 "gap", "catalyst", "entry_timing")


@dataclass
class Mapped:
    """What a file became: events, rejections (record, reason), inferred (field -> n)."""

    read: int = 0
    events: list[Event] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    inferred: Counter[str] = field(default_factory=Counter)

    def reject(self, record: str, reason: str) -> None:
        self.rejected.append((record, reason))


def _id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts))


def _required(value: float | None, name: str) -> float:
    if value is None:
        raise Unmappable(f"{name}: missing")
    return value


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        given = first.get("input")
        shown = f" (got {given!r})"[:60] if isinstance(given, str | int | float) else ""
        return f"{where}: {first['msg']}{shown}"
    return str(exc)


def scan_history(rows: Iterable[Mapping[str, str]], *, tz: str = "America/Los_Angeles",
                 model: ScoringModel | None = None) -> Mapped:
    """`scanner_performance.csv` rows (every value a string, times naive in `tz`)."""
    model = model or ScoringModel(name="amc-scanner", version="unknown")
    out = Mapped()
    rows = list(rows)
    out.read = len(rows)
    runs: dict[str, list[tuple[float, int]]] = {}
    scored: list[tuple[int, float | None]] = []
    for i, row in enumerate(rows):  # ranks within each scan run, by score
        try:
            score = number(row.get("scanner_score"))
        except Unmappable:
            score = None
        scored.append((i, score))
        if score is not None:
            runs.setdefault(f"{row.get('scan_date')}T{row.get('scan_time')}", []).append(
                (score, i))
    rank = {i: r for run in runs.values()
            for r, (_, i) in enumerate(sorted(run, key=lambda si: -si[0]), start=1)}
    for i, score in scored:
        row = rows[i]
        where = f"scanner_performance.csv row {i + 2}"
        try:
            out.events.extend(_scan_pick(row, score, rank.get(i), tz, model, out.inferred))
        except (Unmappable, ValidationError, KeyError) as exc:
            out.reject(where, _reason(exc) if not isinstance(exc, KeyError)
                       else f"no column {exc}")
    return out


def _scan_pick(row: Mapping[str, str], score: float | None, rank: int | None, tz: str,
               model: ScoringModel, inferred: Counter[str]) -> list[Event]:
    if score is None or rank is None:
        raise Unmappable(f"scanner_score: no number in {row.get('scanner_score')!r}")
    at = utc(row["scan_date"], row["scan_time"], tz)
    run_id = f"amc-scan-{row['scan_date']}T{row['scan_time']}"
    raw = Scaled(value=score, low=POINTS_SCALE[0], high=POINTS_SCALE[1])
    features = {name: value for name, column in (
        ("rvol", "rvol"), ("float_shares", "float_shares"), ("change_pct", "change_pct"),
        ("volume", "volume")) if (value := number(row.get(column))) is not None}
    entered = row.get("entered", "").strip().lower() == "yes"
    provenance = {"occurred_at": f"scan date and time, naive, taken as {tz}",
                  "raw_score": "the scanner's net points on its declared -75..305 scale",
                  "passed": "entered (Yes) or not"}
    attributes = {k: v[:200] for k, v in (("catalyst", row.get("catalyst_text", "")),
                                          ("vigl_match", row.get("vigl_match", ""))) if v}
    candidate = CandidateScored(
        event_id=_id("scan", run_id, row["symbol"]), occurred_at=at, producer=PRODUCER,
        schema_version=2, run_id=run_id, symbol=row["symbol"], rank=rank,
        composite_score=raw.normalised, passed=entered, features=features,
        price=_required(number(row.get("price_at_scan")), "price_at_scan"),
        scoring_model=model, raw_score=raw, attributes=attributes, provenance=provenance)
    inferred.update(("occurred_at", "raw_score.scale", "passed"))
    if not entered:
        return [candidate]
    entry_price = _required(number(row.get("entry_price")) or number(row.get("price_at_scan")),
                            "entry_price")
    day = row.get("entry_date") or row["scan_date"]
    decision = ThesisDecided(
        event_id=_id("scan-entry", row["symbol"], day), producer=PRODUCER, schema_version=2,
        occurred_at=utc(day, "06:30", tz), decision_id=f"amc-scan:{row['symbol']}:{day}",
        symbol=row["symbol"], decision_type="BUY", decision_source="discovery",
        entry_price=entry_price, discovery_run_id=run_id, discovery_timestamp=at,
        discovery_features=features, label="entered", scoring_model=model,
        reasoning=(row.get("entry_thesis") or "")[:4000],
        provenance={"occurred_at": f"entry date, time of day unknown: the open (06:30 {tz})",
                    "entry_price": "entry_price, else the price at the scan"})
    inferred.update(("decided_at",))
    return [candidate, decision]


def scoring_model(weights: Mapping[str, Any] | None) -> ScoringModel:
    """The points scanner as `scanner_weights.json` names it (its `version`)."""
    version = str((weights or {}).get("version") or "unknown")
    return ScoringModel(name="amc-scanner", version=version.replace(" ", "_"))


def diamonds(records: Iterable[Mapping[str, Any]], *, written_at: datetime,
             weights: Mapping[str, Any] | None = None) -> Mapped:
    """`diamonds.json`: the current scanner's picks (each at least its threshold of 60);
    `weights` (`scanner_weights.json`) gives each factor tier its points."""
    model = scoring_model(weights)
    out = Mapped()
    records = list(records)
    out.read = len(records)
    run_id = f"amc-diamonds-{written_at:%Y-%m-%dT%H:%M:%S}"
    ordered = sorted(range(len(records)), key=lambda i: -(number(records[i].get("score")) or 0))
    for rank, i in enumerate(ordered, start=1):
        record = records[i]
        try:
            out.events.append(_diamond(record, rank, run_id, written_at, model, weights or {},
                                       out.inferred))
        except (Unmappable, ValidationError, KeyError) as exc:
            out.reject(f"diamonds.json record {i + 1}", _reason(exc) if not isinstance(
                exc, KeyError) else f"no field {exc}")
    return out


def _diamond(record: Mapping[str, Any], rank: int, run_id: str, written_at: datetime,
             model: ScoringModel, weights: Mapping[str, Any],
             inferred: Counter[str]) -> CandidateScored:
    raw = Scaled(value=_required(number(record.get("score")), "score"), low=POINTS_SCALE[0],
                 high=POINTS_SCALE[1])
    tiers: dict[str, Tier] = {}
    attributes: dict[str, str] = {}
    for name in FACTOR_FIELDS:
        text = record.get(name)
        if not isinstance(text, str) or not text.strip():
            continue
        read = factor(text)
        if read.tier is not None:
            points = weights.get(name, {}).get(read.tier) if isinstance(
                weights.get(name), dict) else None
            tiers[name] = Tier(tier=read.tier, points=None if points is None else float(points))
        attributes[name] = text[:200]
    features = {k: v for k, v in (
        ("rvol", number(record.get("rvol"))), ("days_to_cover", number(record.get(
            "days_to_cover"))), ("short_ratio", number(record.get("short_ratio"))),
        ("gap_pct", number(record.get("gap_pct"))), ("volume", number(record.get("volume"))),
        ("catalyst_llm", llm_rating(record.get("catalyst"))),
        ("penalties", number(record.get("penalties")))) if v is not None}
    flags = [str(f).strip().lower().replace(" ", "_") for f in record.get("red_flags") or []]
    if str(record.get("chase_risk", "")).strip().lower() not in ("", "low", "none"):
        flags.append("chase_risk")
    candidate = CandidateScored(
        event_id=_id("diamond", run_id, record["symbol"]), occurred_at=written_at,
        producer=PRODUCER, schema_version=2, run_id=run_id, symbol=record["symbol"],
        rank=rank, composite_score=raw.normalised, passed=True, features=features,
        price=_required(number(record.get("price")), "price"), scoring_model=model,
        raw_score=raw, tiers=tiers, flags=flags,
        attributes={"sector": str(record.get("sector", ""))[:200], **attributes},
        provenance={"occurred_at": "the file has none: the time it was written",
                    "passed": "the scanner writes only picks at or above its threshold"})
    inferred.update(("occurred_at", "raw_score.scale"))
    return candidate


_HEADING = re.compile(
    r"^\s*#*\s*(\d{1,2}:\d{2}:\d{2})\s*PT\s*-\s*([A-Z_ ]+?)\s+([A-Za-z.\-^]+)\s*$")
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")


def trade_log(records: Iterable[Mapping[str, Any]]) -> Mapped:
    """Trades as `scripts/execute_trade.py` logs them in `memory/YYYY-MM-DD.md`: a heading
    `HH:MM:SS PT - BUY SYM`, then Qty and Price (rounded to cents). The date is the file's
    name, the time Pacific. A BUY is the entry of the scan history's entered pick of that
    symbol and day (`amc-scan:SYM:DAY`), so its outcome is tracked from this fill."""
    out = Mapped()
    records = list(records)
    out.read = len(records)
    for i, record in enumerate(records):
        try:
            out.events.append(_logged_trade(record, out.inferred))
        except (Unmappable, ValidationError) as exc:
            out.reject(f"trade log record {i + 1}", _reason(exc))
    return out


def _logged_trade(record: Mapping[str, Any], inferred: Counter[str]) -> TradeFilled:
    heading = _HEADING.match(str(record.get("heading", "")))
    day = _DAY.search(str(record.get("file", "")))
    if heading is None or day is None:
        raise Unmappable(f"not a trade heading: {record.get('heading')!r}")
    clock, label, symbol = heading.groups()
    read = action(label)
    if read.action not in ("BUY", "SELL"):
        raise Unmappable(f"{label!r} is not a trade")
    quantity = _required(number(record.get("Qty")), "Qty")
    price = _required(number(record.get("Price")), "Price")
    key = f"{day.group(1)}:{symbol}"
    provenance = {"occurred_at": "the file's date and the heading's Pacific time",
                  "price": "as logged, rounded to cents"}
    entry = read.action == "BUY"
    if not entry:
        provenance["exit_reason"] = "the log does not say why: manual assumed"
    fill = TradeFilled(
        event_id=_id("log", key, clock, label), occurred_at=utc(day.group(1), clock,
                                                                "America/Los_Angeles"),
        producer="amc-trader-execution", schema_version=2,
        fill_id=f"amc-log:{key}:{clock}:{read.action}", trade_id=f"amc:{symbol}:{day.group(1)}",
        decision_id=f"amc-scan:{symbol}:{day.group(1)}" if entry else None, symbol=symbol,
        fill_type="ENTRY" if entry else "EXIT", side=read.action,  # type: ignore[arg-type]
        quantity=quantity, price=price, exit_reason=None if entry else "manual",
        provenance=provenance)
    inferred.update(("occurred_at",) + (() if entry else ("exit_reason",)))
    return fill
