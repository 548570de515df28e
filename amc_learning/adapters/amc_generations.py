"""AMC-Trader's earlier scanner generations as contract-v2 candidates.

Each generation's output is read under its own scoring model name and version; none of
them is declared (only amc-scanner 3.3.1 and AlphaStack 4.1 ship as declarations), so
they import as *undeclared*: stored and learned from, nothing published for them. The
shapes were read in the public repository (`mikedmote52/AMC-trader`; `archive/` holds the
scanners, `data/` what some of them wrote):

* `pick_v1` — `archive/diamond_scanner_v1_backup.py` → `data/diamonds.json`: a net score
  "/200" and four factors, each with its points (`volume_score` up to 20, `squeeze_score`
  50, `catalyst_score` 30, `momentum_score` 15) and its text (`"✅ EARLY: +2.1%"`).
* `swing_v4` — `archive/diamond_scanner_v4_swing.py` → `data/diamonds_v4.json` (commit
  cabfe23): a scan object (date, time, `scanner_version` V4_SWING, gate counts) wrapping
  candidates with a total score (0–100, bonuses beyond), five named components
  (stealth accumulation up to 40, small-cap potential 25, coiling 20, volume quality 15,
  a sustained-14-day bonus up to 24), a letter tier and an "explosion probability" in %.
* `squeeze_scan` — `archive/working_scanner.py` (`data/squeeze_results.json`, commit
  cabfe23), `production_scanner.py` and `smart_scanner.py`: a score out of 100, the float
  as a number, the day's change and the signals as text.
* `market_scan` — `archive/full_market_scanner.py` (`squeeze_candidates.json`): a score out
  of 100 and one reason.

None of these files has a time of its own except the V4 scan: the others are taken as
written when the file was last modified, and their provenance says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from amc_learning.adapters.mapped import Mapped, each, event_id, numbers, ranks, required
from amc_learning.adapters.native import factor, is_missing, number, number_or_none, utc
from amc_learning.schemas.common import Scaled, ScoringModel, Tier
from amc_learning.schemas.discovery import CandidateScored

PRODUCER = "amc-trader-scanner"
#: v1: each factor's points field, its text field, and the most points it can earn
V1_FACTORS = {"volume": ("volume_score", "volume_pattern", 20.0),
              "squeeze": ("squeeze_score", "squeeze_info", 50.0),
              "catalyst": ("catalyst_score", "catalyst", 30.0),
              "momentum": ("momentum_score", "momentum", 15.0)}
#: V4_SWING: each component's most points
V4_COMPONENTS = {"stealth_accumulation": 40.0, "small_cap_potential": 25.0,
                 "coiling_pattern": 20.0, "volume_quality": 15.0, "sustained_14day": 24.0}


def _candidate(record: Mapping[str, Any], *, run_id: str, rank: int, at: datetime,
               model: ScoringModel, raw: Scaled, features: dict[str, float],
               provenance: dict[str, str], **more: Any) -> CandidateScored:
    symbol = str(required(record.get("symbol"), "symbol"))
    return CandidateScored(
        event_id=event_id("generation", model.name, model.version, run_id, symbol),
        occurred_at=at, producer=PRODUCER, schema_version=2, run_id=run_id, symbol=symbol,
        rank=rank, composite_score=raw.normalised, passed=True, features=features,
        price=required(number(record.get("price")), "price"), scoring_model=model,
        raw_score=raw, provenance=provenance, **more)


def _score(record: Mapping[str, Any], name: str, scale: tuple[float, float]) -> Scaled:
    return Scaled(value=required(number(record.get(name)), name), low=scale[0], high=scale[1])


_WRITTEN = "the file has no time: when it was last written"
_PASSED = "the scanner writes only the names it kept"


def pick_v1(records: Iterable[Mapping[str, Any]], *, written_at: datetime) -> Mapped:
    """The first diamond scanner's picks (`V1_FACTORS`)."""
    records, model = list(records), ScoringModel(name="amc-scanner", version="1")
    run_id, rank = f"amc-v1-{written_at:%Y-%m-%dT%H:%M:%S}", ranks(records, "score")

    def one(i: int, record: Mapping[str, Any], inferred: Counter[str]) -> CandidateScored:
        tiers, components, texts = {}, {}, {}
        for name, (points_field, text_field, most) in V1_FACTORS.items():
            points = number(record.get(points_field))
            if points is None:
                continue
            components[name] = Scaled(value=points, low=0.0, high=most)
            text = record.get(text_field)
            if isinstance(text, str) and not is_missing(text):
                texts[name] = text[:200]
                if (tier := factor(text).tier) is not None:
                    tiers[name] = Tier(tier=tier, points=points)
        inferred.update(("occurred_at", "passed"))
        return _candidate(record, run_id=run_id, rank=rank[i], at=written_at, model=model,
                          raw=_score(record, "score", (0.0, 200.0)),
                          features=numbers(record, ("volume",)), components=components,
                          tiers=tiers, attributes=texts,
                          provenance={"occurred_at": _WRITTEN, "passed": _PASSED,
                                      "raw_score": "points out of 200, as the scanner says"})
    return each(records, "v1 pick", one)


def swing_v4(records: Iterable[Mapping[str, Any]], *, tz: str) -> Mapped:
    """V4_SWING candidates, each with its scan's date, time and version (inherited from
    the scan object that wraps them)."""
    records = list(records)
    runs: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        runs.setdefault(_v4_run(record), []).append(i)
    rank = {i: r for members in runs.values()
            for r, i in enumerate(sorted(members, key=lambda j: -(number_or_none(records[j].get(
                "total_score")) or float("-inf"))), start=1)}

    def one(i: int, record: Mapping[str, Any], inferred: Counter[str]) -> CandidateScored:
        version = str(record.get("scanner_version") or "V4_SWING")
        at = utc(required(record.get("scan_date"), "scan_date"),
                 str(required(record.get("scan_time"), "scan_time")), tz)
        raw_components = record.get("components")
        components = {name: Scaled(value=value, low=0.0, high=V4_COMPONENTS.get(name, 100.0))
                      for name, given in (raw_components.items()
                                          if isinstance(raw_components, Mapping) else ())
                      if (value := number_or_none(given)) is not None}
        features = numbers(record, ("rvol", "change_pct", "volume", "base_score", "vigl_bonus"))
        if (p := number_or_none(record.get("explosion_probability"))) is not None:
            features["explosion_probability"] = p / 100.0
        attributes = {"letter_tier": str(record["tier"])[:200]} if record.get("tier") else {}
        inferred.update(("occurred_at", "passed"))
        return _candidate(
            record, run_id=_v4_run(record), rank=rank[i], at=at,
            model=ScoringModel(name="amc-scanner", version=version.replace(" ", "_")),
            raw=_score(record, "total_score", (0.0, 100.0)), features=features,
            components=components, attributes=attributes,
            provenance={"occurred_at": f"the scan's date and time, naive, taken as {tz}",
                        "passed": "every candidate the scan wrote passed its three gates",
                        "features": "explosion_probability: the scanner's %, as a fraction"})
    return each(records, "V4 candidate", one)


def _v4_run(record: Mapping[str, Any]) -> str:
    return f"amc-v4-{record.get('scan_date')}T{record.get('scan_time')}"



def squeeze_scan(records: Iterable[Mapping[str, Any]], *, written_at: datetime) -> Mapped:
    """The squeeze scanners' results: score /100, float, the day's change, signals."""
    records, model = list(records), ScoringModel(name="amc-squeeze-scanner", version="unknown")
    run_id, rank = f"amc-squeeze-{written_at:%Y-%m-%dT%H:%M:%S}", ranks(records, "score")

    def one(i: int, record: Mapping[str, Any], inferred: Counter[str]) -> CandidateScored:
        features = numbers(record, ("volume", "daily_change"))
        if (shares := number_or_none(record.get("float"))) is not None:
            features["float_shares"] = shares
        signals = [s for s in record.get("signals") or [] if isinstance(s, str)]
        attributes = {f"signal_{k + 1}": s[:200] for k, s in enumerate(signals[:8])}
        if isinstance(record.get("catalyst"), str) and record["catalyst"]:
            attributes["catalyst"] = record["catalyst"][:200]
        inferred.update(("occurred_at", "passed", "scoring_model"))
        return _candidate(record, run_id=run_id, rank=rank[i], at=written_at, model=model,
                          raw=_score(record, "score", (0.0, 100.0)), features=features,
                          attributes=attributes,
                          provenance={"occurred_at": _WRITTEN, "passed": _PASSED,
                                      "scoring_model": "the file names no version"})
    return each(records, "squeeze scan result", one)


def market_scan(records: Iterable[Mapping[str, Any]], *, written_at: datetime) -> Mapped:
    """The full-market scanner's candidates: score /100 and a reason."""
    records = list(records)
    model = ScoringModel(name="amc-full-market-scanner", version="unknown")
    run_id, rank = f"amc-market-{written_at:%Y-%m-%dT%H:%M:%S}", ranks(records, "score")

    def one(i: int, record: Mapping[str, Any], inferred: Counter[str]) -> CandidateScored:
        inferred.update(("occurred_at", "passed", "scoring_model"))
        return _candidate(record, run_id=run_id, rank=rank[i], at=written_at, model=model,
                          raw=_score(record, "score", (0.0, 100.0)),
                          features=numbers(record, ("volume",)),
                          attributes={"reason": str(record.get("reason") or "")[:200]},
                          provenance={"occurred_at": _WRITTEN, "passed": _PASSED,
                                      "scoring_model": "the file names no version"})
    return each(records, "market scan candidate", one)
