"""Outcomes: what the market did after a decision, published as horizons mature."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from amc_learning.schemas.common import (
    DecisionType,
    Event,
    ExitReason,
    Identifier,
    Price,
    Probability,
    Symbol,
)

OutcomeType = Literal["open", "matured", "closed"]


class OutcomeUpdated(Event):
    """The full current outcome of one tracked decision.

    A decision's updates are published in causal order on its symbol's partition, so the
    last one a consumer reads is the newest. `revision` counts the facts (bars, fills,
    catalysts) the outcome was computed from; under disorder it is not an order. Returns
    are raw price moves (close / entry - 1); `return_pct`, the excursions and the thesis
    scores are relative to the decision's side (a SELL gains when the price falls; HOLD,
    IGNORE and never-decided candidates are scored as if bought).
    """

    event_type: Literal["outcome_updated"] = "outcome_updated"
    decision_id: Identifier
    symbol: Symbol
    decision_type: DecisionType
    tracked_from: Literal["decision", "candidate"] = "decision"
    is_counterfactual: bool
    entry_price: Price
    revision: int = Field(ge=0, le=1_000_000)
    outcome_type: OutcomeType = "open"
    sessions_elapsed: int = Field(ge=0, le=10_000)
    price_at_outcome: Price | None = None
    return_pct: float | None = None
    days_held: int | None = Field(None, ge=0, le=10_000)
    return_1d: float | None = None
    return_7d: float | None = None
    return_30d: float | None = None
    max_favorable_excursion: float | None = Field(None, ge=0.0)
    max_adverse_excursion: float | None = Field(None, le=0.0)
    volatility_realized: float | None = Field(None, ge=0.0)
    position_closed: bool = False
    exit_price: Price | None = None
    exit_reason: ExitReason | None = None
    catalyst_materialized: bool | None = None
    volume_pattern_accuracy: Probability | None = None
    thesis_accuracy_score: Probability | None = None
