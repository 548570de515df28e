"""AMC-Trader's scanner files as contract-v2 events (mikedmote52/AMC-trader, `data/`).

Pure functions from a file's records to a `Mapped` (see `adapters.mapped`):

* `scanner_performance.csv` (`scan_history`) — each pick is a candidate of the scan run
  of its date and time, scored by the version of the points scanner in force that day
  (`scanner_versions`: `scanner_weights.json` and `weight_history.json`), its net points
  kept on that version's declared scale; an entered pick is also a BUY decision at its
  entry price, a pick not entered a candidate that did not pass (tracked as the
  counterfactual it is). A recommendation of the cron generation (a scan row with the
  recommendation, stop and target written out) maps the same way, with its targets.
* `diamonds.json` — the current scanner's output: candidates with their factor tiers
  (`"⚠️  Moderate: 35.8M"` → tier `moderate`, and feature `float_shares` 35.8e6 where the
  text holds a measurement), risk flags and text attributes. The file has no timestamp:
  the caller gives the time it was written.
* `learning_log.json` (`lessons`) — the hand-written lessons: a CANCELLED order is an
  IGNORE decision (nothing was done), priced from the scan history of its day.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from amc_learning.adapters.mapped import (
    Mapped,
    each,
    event_id,
    mapping,
    numbers,
    ranks,
    required,
)
from amc_learning.adapters.native import (
    Unmappable,
    action,
    factor,
    is_missing,
    llm_rating,
    number,
    utc,
)
from amc_learning.schemas.common import Scaled, ScoringModel, Tier
from amc_learning.schemas.discovery import SCORE_COMPONENTS, CandidateScored, ScoreComponents
from amc_learning.schemas.thesis import ThesisDecided

PRODUCER = "amc-trader-scanner"
#: The points scanner's net score: about -75..305 (penalties to every factor's top tier).
POINTS_SCALE = (-75.0, 305.0)
#: diamonds.json: the factor texts that carry a tier, and the flags' own fields.
#: diamonds.json: the factor texts that hold a measurement, and the feature it becomes
#: (`"⚠️  Moderate: 35.8M"` float_shares 35.8e6, `"Moderate: 3.9 DTC"` squeeze_dtc 3.9).
MEASURED = {"float": "float_shares", "market_cap": "market_cap", "momentum": "momentum_pct",
            "squeeze": "squeeze_dtc"}
_AT = re.compile(r"@\s*\$?\s*(\d[\d,]*(?:\.\d+)?)")
FACTOR_FIELDS = ("float", "momentum", "squeeze", "structure", "market_cap", "volume_pattern",
                 "gap", "catalyst", "entry_timing")


@dataclass(frozen=True)
class Version:
    """One version of the points scanner: from which scan date it scored, on what scale."""

    since: date | None
    model: ScoringModel
    scale: tuple[float, float] = POINTS_SCALE
    #: factors this version writes as `"<mark> <Tier>: <points> pts"` columns, with the
    #: most points each can earn: read as tiers, and as components on [0, most]
    factors: Mapping[str, float] = field(default_factory=dict)
    #: the columns read as numeric features (never the outcome columns beside them)
    features: tuple[str, ...] = ("rvol", "float_shares", "change_pct", "volume")


def scanner_versions(weights: Mapping[str, Any] | None,
                     history: Mapping[str, Any] | None = None) -> list[Version]:
    """The scanner's versions in the order they scored, from `scanner_weights.json` (the
    current version, its `update_history`) and `weight_history.json` (each change's date
    and its `max_score`). Scans before the first recorded change were scored by a version
    the files do not name: `before-<first>`, on the scale that change replaced."""
    found: list[tuple[date, str, float | None, float | None]] = []
    for change in (history or {}).get("weight_changes") or []:
        if isinstance(change, Mapping) and change.get("version") and (
                day := _day(change.get("date"))) is not None:
            top = (change.get("changes") or {}).get("max_score") or {}
            found.append((day, _name(str(change["version"])), _top(top, "new"),
                          _top(top, "old")))
    for update in (weights or {}).get("update_history") or []:
        if isinstance(update, Mapping) and update.get("version") and (
                day := _day(update.get("date"))) is not None:
            found.append((day, _name(str(update["version"]).split("→")[-1]), None, None))
    found.sort(key=lambda f: f[0])
    current = _name(str((weights or {}).get("version") or "unknown"))
    if not found:
        return [Version(None, _model(current))]
    low, high = POINTS_SCALE[0], found[0][3] or POINTS_SCALE[1]
    versions = [Version(None, _model(f"before-{found[0][1]}"), (low, high))]
    for since, name, top, _ in found:
        high = top or high
        if name != versions[-1].model.version:
            versions.append(Version(since, _model(name), (low, high)))
    if versions[-1].model.version != current:  # dated by the file's last update, if any
        updated = _day((weights or {}).get("last_updated"))
        versions.append(Version(updated or versions[-1].since, _model(current), (low, high)))
    return versions


def _day(value: object) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def version_on(versions: list[Version], day: date) -> Version:
    """The version that scored on `day`: the last one in force by then."""
    return next((v for v in reversed(versions) if v.since is None or v.since <= day),
                versions[0])


def scoring_model(weights: Mapping[str, Any] | None) -> ScoringModel:
    """The points scanner as `scanner_weights.json` names it (its `version`)."""
    return _model(str((weights or {}).get("version") or "unknown"))


def _model(version: str) -> ScoringModel:
    return ScoringModel(name="amc-scanner", version=_name(version))


def _name(version: str) -> str:
    return version.strip().removeprefix("v").removeprefix("V").replace(" ", "_")


def _top(change: Mapping[str, Any], key: str) -> float | None:
    try:
        return number(change.get(key))
    except Unmappable:
        return None


def scan_history(rows: Iterable[Mapping[str, str]], *, tz: str = "America/Los_Angeles",
                 versions: list[Version] | None = None) -> Mapped:
    """`scanner_performance.csv` rows (every value a string, times naive in `tz`)."""
    versions = versions or [Version(None, _model("unknown"))]
    rows = list(rows)
    runs: dict[str, list[tuple[float, int]]] = {}
    for i, row in enumerate(rows):  # ranks within each scan run, by score
        if (score := _score(row)) is not None:
            runs.setdefault(_run(row), []).append((score, i))
    rank = {i: r for run in runs.values()
            for r, (_, i) in enumerate(sorted(run, key=lambda si: -si[0]), start=1)}
    return each(rows, "scanner_performance.csv record",
                lambda i, row, inferred: _scan_pick(row, rank.get(i), tz, versions, inferred))


def _score(row: Mapping[str, Any]) -> float | None:
    try:
        return number(row.get("scanner_score"))
    except Unmappable:
        return None


def _run(row: Mapping[str, Any]) -> str:
    return f"amc-scan-{row.get('scan_date')}T{row.get('scan_time')}"


def _scan_pick(row: Mapping[str, str], rank: int | None, tz: str, versions: list[Version],
               inferred: Counter[str]) -> list[CandidateScored | ThesisDecided]:
    score = _score(row)
    if score is None or rank is None:
        raise Unmappable(f"scanner_score: no number in {row.get('scanner_score')!r}")
    at = utc(row["scan_date"], row["scan_time"], tz)
    version = version_on(versions, at.date())
    run_id = _run(row)
    raw = Scaled(value=score, low=version.scale[0], high=version.scale[1])
    features = numbers(row, version.features)
    entered = str(row.get("entered", "")).strip().lower() == "yes"
    passed = str(row.get("passed", row.get("entered", ""))).strip().lower() == "yes"
    tiers, components = _factors(row, version.factors)
    scores = (ScoreComponents(**{c: components[c].normalised for c in SCORE_COMPONENTS})
              if all(c in components for c in SCORE_COMPONENTS) else None)
    price = number(row.get("price_at_scan")) or _at(row.get("recommendation"))
    attributes = {k: str(v)[:200] for k, v in (("catalyst", row.get("catalyst_text", "")),
                                               ("vigl_match", row.get("vigl_match", ""))) if v}
    candidate = CandidateScored(
        event_id=event_id("scan", run_id, row["symbol"]), occurred_at=at, producer=PRODUCER,
        schema_version=2, run_id=run_id, symbol=row["symbol"], rank=rank,
        composite_score=raw.normalised, passed=passed, features=features,
        price=required(price, "price_at_scan"), scoring_model=version.model, raw_score=raw,
        tiers=tiers, components=components, scores=scores, attributes=attributes,
        provenance={"occurred_at": f"scan date and time, naive, taken as {tz}",
                    "scoring_model": "the scanner version in force on the scan date",
                    "raw_score": f"net points on the version's scale {version.scale}",
                    "passed": "passed (Yes) or, without it, entered (Yes)"})
    inferred.update(("occurred_at", "scoring_model", "raw_score.scale", "passed"))
    if not entered:
        return [candidate]
    day = row.get("entry_date") or row["scan_date"]
    entry = number(row.get("entry_price")) or price
    target = _at(row.get("target"))  # "+30% @ $6.91"
    decision = ThesisDecided(
        event_id=event_id("scan-entry", row["symbol"], day), producer=PRODUCER,
        schema_version=2, occurred_at=utc(day, "06:30", tz),
        decision_id=f"amc-scan:{row['symbol']}:{day}", symbol=row["symbol"],
        decision_type="BUY", decision_source="discovery",
        entry_price=required(entry, "entry_price"), discovery_run_id=run_id,
        discovery_timestamp=at, discovery_features=features, label="entered",
        scoring_model=version.model, targets=[] if target is None else [target],
        reasoning=" ".join(str(row.get(k) or "") for k in (
            "recommendation", "stop", "entry_thesis") if row.get(k))[:4000],
        provenance={"occurred_at": f"entry date, time of day unknown: the open (06:30 {tz})",
                    "entry_price": "entry_price, else the price at the scan"})
    inferred.update(("decided_at",))
    return [candidate, decision]


def _factors(row: Mapping[str, Any], factors: Mapping[str, float]
             ) -> tuple[dict[str, Tier], dict[str, Scaled]]:
    """The declared factors a row writes as text: each one's tier with its points, and its
    points as a component on [0, the most it can earn]."""
    tiers, components = {}, {}
    for name, most in factors.items():
        if is_missing(row.get(name)):
            continue
        read = factor(row[name])
        if read.tier is None or read.value is None:
            raise Unmappable(f"{name}: no tier and points in {row[name]!r}")
        tiers[name] = Tier(tier=read.tier, points=read.value)
        components[name] = Scaled(value=read.value, low=0.0, high=most)
    return tiers, components


def _at(text: object) -> float | None:
    """The price after an `@`: "Buy 56 shares RIG @ $5.31 = $297" 5.31."""
    found = _AT.search(text) if isinstance(text, str) else None
    return None if found is None else float(found.group(1).replace(",", ""))


def diamonds(records: Iterable[Mapping[str, Any]], *, written_at: datetime,
             weights: Mapping[str, Any] | None = None) -> Mapped:
    """`diamonds.json`: the current scanner's picks (each at least its threshold of 60);
    `weights` (`scanner_weights.json`) gives each factor tier its points."""
    model = scoring_model(weights)
    records = list(records)
    run_id = f"amc-diamonds-{written_at:%Y-%m-%dT%H:%M:%S}"
    rank = ranks(records, "score")
    return each(records, "diamonds.json record", lambda i, record, inferred: _diamond(
        record, rank[i], run_id, written_at, model, weights or {}, inferred))


def _diamond(record: Mapping[str, Any], rank: int, run_id: str, written_at: datetime,
             model: ScoringModel, weights: Mapping[str, Any],
             inferred: Counter[str]) -> CandidateScored:
    raw = Scaled(value=required(number(record.get("score")), "score"), low=POINTS_SCALE[0],
                 high=POINTS_SCALE[1])
    tiers: dict[str, Tier] = {}
    attributes: dict[str, str] = {}
    measured: dict[str, float] = {}
    for name in FACTOR_FIELDS:
        text = record.get(name)
        if not isinstance(text, str) or not text.strip():
            continue
        read = factor(text)
        if name in MEASURED and read.value is not None:
            measured[MEASURED[name]] = read.value
        if read.tier is not None:
            points = weights.get(name, {}).get(read.tier) if isinstance(
                weights.get(name), dict) else None
            tiers[name] = Tier(tier=read.tier, points=None if points is None else float(points))
        attributes[name] = text[:200]
    features = numbers(record, ("rvol", "days_to_cover", "short_ratio", "gap_pct", "volume",
                                "penalties")) | measured
    if (rating := llm_rating(record.get("catalyst"))) is not None:
        features["catalyst_llm"] = rating
    flags = [str(f).strip().lower().replace(" ", "_") for f in record.get("red_flags") or []]
    if str(record.get("chase_risk", "")).strip().lower() not in ("", "low", "none"):
        flags.append("chase_risk")
    candidate = CandidateScored(
        event_id=event_id("diamond", run_id, record["symbol"]), occurred_at=written_at,
        producer=PRODUCER, schema_version=2, run_id=run_id, symbol=record["symbol"],
        rank=rank, composite_score=raw.normalised, passed=True, features=features,
        price=required(number(record.get("price")), "price"), scoring_model=model,
        raw_score=raw, tiers=tiers, flags=flags,
        attributes={"sector": str(record.get("sector", ""))[:200], **attributes},
        provenance={"occurred_at": "the scan's time where a scan object wraps the picks, "
                                   "else the file has none: the time it was written",
                    "passed": "the scanner writes only picks at or above its threshold"})
    inferred.update(("occurred_at", "raw_score.scale"))
    return candidate


def lessons(records: Iterable[Mapping[str, Any]], *, tz: str = "America/Los_Angeles",
            scanned: Mapping[tuple[str, str], float] | None = None) -> Mapped:
    """`learning_log.json`'s `manual_lessons`: each names a symbol, a day and what was
    decided (`CANCELLED`: an IGNORE). A lesson has no price; `scanned` gives the last
    price the scan history saw for (symbol, day), without which the lesson is rejected."""
    return each(list(records), "learning_log.json lesson",
                lambda i, r, inferred: _lesson(r, tz, scanned or {}, inferred))


def _lesson(record: Mapping[str, Any], tz: str, scanned: Mapping[tuple[str, str], float],
            inferred: Counter[str]) -> ThesisDecided:
    symbol, day = str(record.get("symbol", "")), str(record.get("date", ""))[:10]
    read = action(record.get("decision"))
    price = scanned.get((symbol, day))
    if price is None:
        raise Unmappable(f"no price: the scan history has no {symbol} on {day!r}")
    factors = mapping(record.get("factors"))
    features = {k: v for k, raw in factors.items() if isinstance(raw, int | float)
                and not isinstance(raw, bool) and (v := float(raw)) == v}
    inferred.update(("occurred_at", "entry_price"))
    return ThesisDecided(
        event_id=event_id("lesson", symbol, day, read.label), producer=PRODUCER,
        schema_version=2, occurred_at=utc(day, "13:00", tz),
        decision_id=f"amc-lesson:{symbol}:{day}", symbol=symbol,
        decision_type=read.action, decision_source="manual",
        entry_price=price, discovery_features=features, label=read.label,
        reasoning=" ".join(str(record.get(k) or "") for k in (
            "trigger", "key_insight", "outcome"))[:4000],
        provenance={"occurred_at": f"the lesson's date, at the close (13:00 {tz})",
                    "entry_price": "the last price the scan history saw that day"})
