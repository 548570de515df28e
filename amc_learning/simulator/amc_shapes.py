"""The simulated trading side, written the way AMC-Trader writes (`run --producer amc-trader`).

The simulator plants its truth in contract-v1 events; this renders them in AMC-Trader's
own shapes, so they reach the engine through the same adapters as its real files:

* a candidate is a row of its scan history (`scanner_performance.csv`): every value a
  string, the scan time naive on the Pacific wall clock, the net score in points of a
  tiered points scanner (`SCANNER`, on -75..305), each component written as a factor
  text with its tier and points (`"✅ High: 36 pts"`), and whether it passed;
* a decision is a row of its `learning_decisions` table: its own labels (RESEARCH for a
  candidate looked at and left, BUY_MORE and TRIM_50 on a symbol held), naive UTC times,
  the stop, target, discovery run and the learned params it decided under in `metadata`;
* a fill is an Alpaca `trade_updates` message: numbers as strings, sides in lower case,
  the order tagged `<decision_id>:<purpose>` (entry, or the exit's reason).

Bars and news pass as they are: AMC-Trader publishes no prices (the market-data bridge
does). Pure: every function maps one event to one record.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from amc_learning.schemas.common import Event
from amc_learning.schemas.discovery import SCORE_COMPONENTS, CandidateScored
from amc_learning.schemas.models import Component, ComponentModel, Scale
from amc_learning.schemas.params import FALLBACK_PARAMS
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled

#: The simulated scanner's version, its net points' scale, and its factors (each up to
#: `MOST` points, in the tiers below: (the share of the most it starts at, tier, mark)).
#: It scores as the engine's own discovery does (six components, weighed, a threshold),
#: each component written in points on 0..`MOST`: to the learner it is the component
#: model `declaration()`, whose weights and threshold it learns and the simulated
#: scanner reads back.
SCANNER = "sim-1"
SCALE = (-75.0, 305.0)
MOST = 50.0
TIERS = ((0.8, "Extreme", "🔥"), (0.6, "High", "✅"), (0.3, "Moderate", "⚠️"), (0.0, "Low", "❌"))
#: The simulated measurements, each in a column of its own name (the one a factor also
#: uses, "sentiment", renamed).
FEATURES = {"relative_volume": "relative_volume", "short_interest_pct": "short_interest_pct",
            "catalyst_strength": "catalyst_strength", "iv_percentile": "iv_percentile",
            "rsi_14": "rsi_14", "sentiment": "news_sentiment", "beta": "beta",
            "realized_vol_20d": "realized_vol_20d", "return_5d": "return_5d"}
#: The cron generation's wall clock.
TZ = "America/Los_Angeles"
LABELS = {"BUY": "BUY", "SELL": "SELL", "HOLD": "HOLD", "IGNORE": "RESEARCH"}
#: ... and on a symbol already held: adding to it, trimming it.
HELD_LABELS = {**LABELS, "BUY": "BUY_MORE", "SELL": "TRIM_50"}
SOURCES = {"discovery": "discovery", "thesis": "ai_thesis_generator", "manual": "user_manual"}
#: The producer's own id of a decision row, as `amc_backend.learning_rows` names it.
ROW_PREFIX = "amc-ld:"


def declaration() -> ComponentModel:
    """The simulated scanner as a component model: the six components on 0..`MOST`
    points, weighed and thresholded as the engine's conservative defaults are."""
    fallback = FALLBACK_PARAMS
    return ComponentModel(
        kind="component", name="amc-scanner", version=SCANNER,
        description="the simulator's AMC-Trader scanner: six components in points",
        scale=Scale(low=0.0, high=MOST), threshold=fallback.discovery_threshold * MOST,
        components=[Component(name=c, weight=getattr(fallback.scoring_weights, c))
                    for c in SCORE_COMPONENTS])


def render(event: Event, held: bool = False) -> dict[str, Any] | None:
    """`event` as AMC-Trader writes it (`held`: its symbol is held: a decision on it is
    labelled as AMC-Trader labels one); None for what passes as it is (bars, news)."""
    if isinstance(event, CandidateScored):
        return scan_row(event)
    if isinstance(event, ThesisDecided):
        return decision_row(event, held)
    if isinstance(event, TradeFilled):
        return trade_update(event)
    return None


def scan_row(c: CandidateScored) -> dict[str, str]:
    local = c.occurred_at.astimezone(ZoneInfo(TZ))
    low, high = SCALE
    row = {"scan_date": local.date().isoformat(), "scan_time": local.strftime("%H:%M:%S"),
           "symbol": c.symbol, "price_at_scan": f"{c.price:.10g}",
           "scanner_score": str(round(low + c.composite_score * (high - low))),
           "passed": "Yes" if c.passed else "No", "entered": "No"}
    if c.scores is not None:
        for name in SCORE_COMPONENTS:
            row[name] = factor_text(getattr(c.scores, name))
    row.update({FEATURES[k]: f"{v:.10g}" for k, v in c.features.items() if k in FEATURES})
    return row


def factor_text(value: float) -> str:
    """A 0–1 component as the scanner writes a factor: `"✅ High: 36 pts"`."""
    _, tier, mark = next(t for t in TIERS if value >= t[0])
    return f"{mark} {tier}: {round(value * MOST)} pts"


def decision_row(d: ThesisDecided, held: bool = False) -> dict[str, Any]:
    thesis = d.thesis
    meta: dict[str, Any] = {}
    if d.discovery_timestamp is not None:  # the scan run, named by its wall-clock time
        scanned = d.discovery_timestamp.astimezone(ZoneInfo(TZ))
        meta["discovery_run_id"] = f"amc-scan-{scanned:%Y-%m-%dT%H:%M:%S}"
    if thesis is not None:
        meta.update(stop=thesis.stop_price, target=thesis.target_price)
    if d.params_version is not None:
        meta.update(params_version=d.params_version, params_mode=d.params_mode)
    labels = HELD_LABELS if held else LABELS
    return {"id": d.decision_id, "symbol": d.symbol, "decision_type": labels[d.decision_type],
            "recommendation_source": SOURCES[d.decision_source],
            "confidence_score": d.confidence_score, "price_at_decision": d.entry_price,
            "market_time": "open", "reasoning": d.reasoning, "metadata": meta,
            "created_at": d.occurred_at.astimezone(UTC).replace(tzinfo=None).isoformat()}


def trade_update(f: TradeFilled) -> dict[str, Any]:
    purpose = "entry" if f.fill_type == "ENTRY" else (f.exit_reason or "manual")
    quantity = f"{f.quantity:.10g}"
    order = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sim-order/{f.fill_id}")),
             "client_order_id": f"{ROW_PREFIX}{f.decision_id}:{purpose}", "symbol": f.symbol,
             "side": f.side.lower(), "type": "market", "qty": quantity,
             "filled_qty": quantity, "filled_avg_price": f"{f.price:.10g}", "status": "filled"}
    return {"stream": "trade_updates", "data": {
        "event": "fill", "execution_id": f.fill_id, "order": order, "price": f"{f.price:.10g}",
        "qty": quantity, "position_qty": quantity if f.fill_type == "ENTRY" else "0",
        "timestamp": f.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")}}
