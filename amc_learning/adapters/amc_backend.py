"""AMC-Trader's FastAPI backend shapes as contract-v2 events.

Pure functions from records to a `Mapped` (see `adapters.mapped`). The backend writes
naive UTC times (`datetime.utcnow()`), scores on 0–100 and labels in lower case.

* `alphastack` — AlphaStack 4.1's API candidates: a total and six subscores on 0–100
  named like the engine's own components (so they also fill the 0–1 `scores`), the
  model's own confidence, `action_tag` (trade_ready passes), risk flags. No time or run
  id is copied into them: the caller gives the time they were written.
* `direct_discovery` — the older direct discovery: a 0–100 score and its measurements.
* `position_thesis` — the thesis on a held position: its `suggestion` is the label
  (`hold`, `increase`, `trim`), the price is read from the thesis text.
* `learning_rows` — rows of AMC-Trader's own `learning_decisions` table. Its `metadata`
  may name the discovery run and the learned params (version, mode) it decided under.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
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
from amc_learning.adapters.native import Unmappable, action, number, prices, utc
from amc_learning.schemas.common import DecisionSource, MarketTime, Scaled, ScoringModel
from amc_learning.schemas.discovery import SCORE_COMPONENTS, CandidateScored, ScoreComponents
from amc_learning.schemas.thesis import ThesisDecided

PRODUCER = "amc-trader-backend"
ALPHASTACK = ScoringModel(name="alphastack", version="4.1")
DIRECT = ScoringModel(name="direct-discovery", version="unknown")
#: AMC-Trader's recommendation sources and market times, in the contract's terms.
SOURCES: dict[str, DecisionSource] = {
    "discovery": "discovery", "portfolio_health": "thesis", "user_manual": "manual",
    "ai_thesis_generator": "thesis"}
MARKET_TIMES: dict[str, MarketTime] = {
    "premarket": "premarket", "open": "regular", "midday": "regular", "close": "regular",
    "afterhours": "afterhours"}
_PRICE = re.compile(r"(?:current )?price\s*\$\s*(\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)


def alphastack(records: Iterable[Mapping[str, Any]], *, written_at: datetime) -> Mapped:
    records = list(records)
    rank = ranks(records, "score")
    run_id = f"alphastack-{written_at:%Y-%m-%dT%H:%M:%S}"
    return each(records, "AlphaStack candidate", lambda i, record, inferred: _alphastack(
        record, rank[i], run_id, written_at, inferred))


def _alphastack(record: Mapping[str, Any], rank: int, run_id: str, written_at: datetime,
                inferred: Counter[str]) -> CandidateScored:
    raw = Scaled(value=required(number(record.get("score")), "score"), low=0.0, high=100.0)
    subscores = mapping(record.get("subscores"))
    components = {name: Scaled(value=value, low=0.0, high=100.0)
                  for name, text in subscores.items() if (value := number(text)) is not None}
    scores = (ScoreComponents(**{c: components[c].normalised for c in SCORE_COMPONENTS})
              if all(c in components for c in SCORE_COMPONENTS) else None)
    features = numbers(record, ("confidence", "rel_vol", "volume", "market_cap_m"))
    tag = str(record.get("action_tag") or "")
    inferred.update(("occurred_at", "passed"))
    return CandidateScored(
        event_id=event_id("alphastack", run_id, record["symbol"]), occurred_at=written_at,
        producer=PRODUCER, schema_version=2, run_id=run_id, symbol=record["symbol"],
        rank=rank, composite_score=raw.normalised, passed=tag == "trade_ready",
        scores=scores, features=features, price=required(number(record.get("price")), "price"),
        scoring_model=ALPHASTACK, raw_score=raw, components=components,
        flags=[str(f) for f in record.get("risk_flags") or []],
        attributes={"action_tag": tag[:200]} if tag else {},
        provenance={"occurred_at": "the candidate has none: the time it was written",
                    "passed": "action_tag trade_ready (score >= 75 and confidence >= 0.8)"})


def direct_discovery(records: Iterable[Mapping[str, Any]], *, tz: str = "UTC") -> Mapped:
    records = list(records)
    rank = ranks(records, "score")
    return each(records, "direct discovery candidate",
                lambda i, record, inferred: _direct(record, rank[i], tz, inferred))


def _direct(record: Mapping[str, Any], rank: int, tz: str,
            inferred: Counter[str]) -> CandidateScored:
    at = utc(required(record.get("timestamp"), "timestamp"), tz=tz)
    run_id = f"direct-{at:%Y-%m-%dT%H:%M}"
    raw = Scaled(value=required(number(record.get("score")), "score"), low=0.0, high=100.0)
    features = numbers(record, ("volume", "volume_ratio", "price_change_pct", "dollar_volume"))
    tag = str(record.get("action_tag") or "")
    inferred.update(("occurred_at", "run_id"))
    return CandidateScored(
        event_id=event_id("direct", run_id, record["symbol"]), occurred_at=at,
        producer=PRODUCER, schema_version=2, run_id=run_id, symbol=record["symbol"],
        rank=rank, composite_score=raw.normalised, passed=tag == "trade_ready",
        features=features, price=required(number(record.get("price")), "price"),
        scoring_model=DIRECT, raw_score=raw,
        attributes={k: str(v)[:200] for k, v in (("action_tag", tag),
                                                 ("thesis", record.get("thesis"))) if v},
        provenance={"occurred_at": f"timestamp, naive, taken as {tz}",
                    "run_id": "the minute of the timestamps: one discovery job"})


def position_thesis(records: Iterable[Mapping[str, Any]], *, written_at: datetime) -> Mapped:
    return each(list(records), "position thesis",
                lambda i, record, inferred: _thesis(record, written_at, inferred))


def _thesis(record: Mapping[str, Any], written_at: datetime,
            inferred: Counter[str]) -> ThesisDecided:
    symbol, read = str(record.get("symbol", "")), action(record.get("suggestion"))
    found = _PRICE.search(str(record.get("thesis") or ""))
    if found is None:
        raise Unmappable("no price: the thesis text names no current price")
    features = numbers(record, ("unrealized_pl_pct", "market_value"))
    inferred.update(("occurred_at", "entry_price"))
    return ThesisDecided(
        event_id=event_id("thesis", symbol, written_at.isoformat(), read.label),
        producer=PRODUCER, schema_version=2, occurred_at=written_at,
        decision_id=f"amc-thesis:{symbol}:{written_at:%Y-%m-%dT%H:%M}", symbol=symbol,
        decision_type=read.action, decision_source="thesis",
        confidence_score=number(record.get("confidence")),
        entry_price=float(found.group(1).replace(",", "")), discovery_features=features,
        label=read.label, size_change_pct=read.size_change_pct,
        reasoning=" ".join(str(record.get(k) or "") for k in ("thesis", "reasoning"))[:4000],
        provenance={"occurred_at": "the thesis has none: the time it was written",
                    "entry_price": "the current price the thesis text names"})


def learning_rows(records: Iterable[Mapping[str, Any]], *, tz: str = "UTC") -> Mapped:
    return each(list(records), "learning_decisions row",
                lambda i, record, inferred: _row(record, tz, inferred))


def _row(record: Mapping[str, Any], tz: str, inferred: Counter[str]) -> ThesisDecided:
    symbol, read = str(record.get("symbol", "")), action(record.get("decision_type"))
    at = utc(required(record.get("created_at"), "created_at"), tz=tz)
    price = number(record.get("price_at_decision"))
    if not price:
        raise Unmappable(f"price_at_decision: {record.get('price_at_decision')!r} is no price")
    meta = mapping(record.get("metadata"))
    features = numbers(meta, ("scanner_score", "stop"))
    source = str(record.get("recommendation_source") or "")
    version = number(meta.get("params_version"))  # a producer that decides on our params
    row_id = record.get("id") or f"{symbol}:{at:%Y-%m-%dT%H:%M:%S}"
    inferred.update(("occurred_at", "decision_source"))
    return ThesisDecided(
        event_id=event_id("learning-row", row_id), producer=PRODUCER, schema_version=2,
        occurred_at=at, decision_id=f"amc-ld:{row_id}", symbol=symbol,
        decision_type=read.action, decision_source=SOURCES.get(source, "manual"),
        confidence_score=number(record.get("confidence_score")), entry_price=price,
        discovery_features=features, label=read.label, size_change_pct=read.size_change_pct,
        targets=prices(meta.get("target")), discovery_run_id=meta.get("discovery_run_id"),
        params_version=None if version is None else int(version),
        params_mode=meta.get("params_mode") if version is not None else None,
        market_time=MARKET_TIMES.get(str(record.get("market_time")), "regular"),
        reasoning=str(record.get("reasoning") or "")[:4000],
        provenance={"occurred_at": f"created_at, naive, taken as {tz}",
                    "decision_source": f"recommendation_source {source or 'missing'}"})
