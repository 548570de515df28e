"""The simulated trading side, written the way AMC-Trader writes (`run --producer amc-trader`).

The simulator plants its truth in contract events (its scanner's candidates carry their
tiers and net points, AMC-Trader's 3.3.1 in the tiered world); this renders them in
AMC-Trader's own shapes, so they reach the engine through the same adapters as its real
files:

* a candidate is a row of its scan history (`scanner_performance.csv`): every value a
  string, the scan time naive on the Pacific wall clock, the net score in points of its
  points scanner (AMC-Trader's 3.3.1, on -75..305: the tiered world's), each factor
  written as a text with its tier and points (`"✅ ultra_tiny: 60 pts"`), and whether
  it passed;
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
from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled

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
    """A candidate of a points scanner (its `raw_score` and `tiers`) as a scan row."""
    local = c.occurred_at.astimezone(ZoneInfo(TZ))
    if c.raw_score is None:
        raise ValueError("AMC-Trader's scan history holds a points scanner's candidates")
    score = c.raw_score.value
    row = {"scan_date": local.date().isoformat(), "scan_time": local.strftime("%H:%M:%S"),
           "symbol": c.symbol, "price_at_scan": f"{c.price:.10g}",
           "scanner_score": str(round(score)),
           "passed": "Yes" if c.passed else "No", "entered": "No"}
    for name, tier in c.tiers.items():  # each factor in a tier: its tier and points
        points = round(tier.points or 0)
        mark = "✅" if points > 0 else "⚠️" if points == 0 else "❌"
        row[name] = f"{mark} {tier.tier}: {points} pts"
    row.update({FEATURES[k]: f"{v:.10g}" for k, v in c.features.items() if k in FEATURES})
    return row


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
