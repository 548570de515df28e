"""Outcomes: what the market did after a decision, published as horizons mature."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import DecisionType, Event, ExitReason, Identifier, Price, Probability, Symbol


class OutcomeUpdated(Event):
    """The full current outcome of one decision; a later `sessions_elapsed` supersedes."""

    event_type: Literal["outcome_updated"] = "outcome_updated"
    decision_id: Identifier
    symbol: Symbol
    decision_type: DecisionType
    is_counterfactual: bool
    entry_price: Price
    sessions_elapsed: int = Field(ge=0, le=10_000)
    return_1d: float | None = None
    return_7d: float | None = None
    return_30d: float | None = None
    max_favorable_excursion: float | None = None
    max_adverse_excursion: float | None = None
    volatility_realized: float | None = Field(None, ge=0.0)
    position_closed: bool = False
    exit_price: Price | None = None
    exit_reason: ExitReason | None = None
    catalyst_materialized: bool | None = None
    volume_pattern_accuracy: Probability | None = None
    thesis_accuracy_score: Probability | None = None
