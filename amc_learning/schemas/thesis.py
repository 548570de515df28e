"""Thesis: a decision on a candidate, with its confidence and the expectation behind it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from amc_learning.schemas.common import (
    Contract,
    DecisionSource,
    DecisionType,
    Direction,
    Event,
    Features,
    Identifier,
    LongText,
    MarketTime,
    Percent,
    Price,
    Probability,
    Provenance,
    Regime,
    ScoringModel,
    ShortText,
    Symbol,
    UtcTime,
    VersionRules,
    absent,
)
from amc_learning.schemas.discovery import ScoreComponents


class MarketConditions(Contract):
    """The market as the thesis saw it when deciding."""

    vix: float = Field(ge=0.0, le=200.0)
    sector: ShortText
    regime: Regime = "unknown"


class ThesisExpectation(Contract):
    """What the thesis expects to happen: the basis of thesis-accuracy scoring."""

    expected_direction: Direction
    horizon_days: int = Field(ge=1, le=365)
    target_price: Price | None = None
    stop_price: Price | None = None
    expected_catalyst: ShortText | None = None
    catalyst_window_days: int | None = Field(None, ge=1, le=365)
    expected_volume_ratio: float | None = Field(None, gt=0.0, le=1000.0)
    rationale: LongText = ""


class ThesisDecided(Event):
    """A BUY/SELL/HOLD/IGNORE decision; `decision_id` is the producer's idempotency key.

    Schema version 2 keeps the producer's own label beside the canonical action
    (`BUY_MORE` is a BUY, `TRIM_50` a SELL of half the position: `size_change_pct` -50),
    several price targets and a horizon given only as text; the confidence, the
    structured thesis and the market conditions become optional (a decision without a
    confidence is still tracked, and left out of calibration).
    """

    event_type: Literal["thesis_decided"] = "thesis_decided"
    decision_id: Identifier
    symbol: Symbol
    decision_type: DecisionType
    decision_source: DecisionSource
    confidence_score: Probability | None = Field(default=None, exclude_if=absent)
    entry_price: Price
    position_size_pct: Percent = 0.0
    discovery_run_id: Identifier | None = None
    discovery_timestamp: UtcTime | None = None
    discovery_scores: ScoreComponents | None = None
    discovery_features: Features = Field(default_factory=dict)
    thesis: ThesisExpectation | None = Field(default=None, exclude_if=absent)
    market_conditions: MarketConditions | None = Field(default=None, exclude_if=absent)
    market_time: MarketTime = "regular"
    reasoning: LongText = ""
    #: The learned params the trading engine decided under (its ParamsReader's view: the
    #: version and "live" or "canary"); both absent on the fallback. Lets the learner
    #: attribute realised P&L to each version.
    params_version: int | None = Field(default=None, ge=1, exclude_if=absent)
    params_mode: Literal["live", "canary"] | None = Field(default=None, exclude_if=absent)
    label: ShortText | None = Field(default=None, exclude_if=absent)
    size_change_pct: float | None = Field(default=None, ge=-100.0, le=1000.0,
                                          exclude_if=absent)
    targets: list[Price] = Field(default_factory=list, max_length=8, exclude_if=absent)
    horizon_text: ShortText | None = Field(default=None, exclude_if=absent)
    scoring_model: ScoringModel | None = Field(default=None, exclude_if=absent)
    provenance: Provenance = Field(default_factory=dict, exclude_if=absent)

    VERSIONS: ClassVar[VersionRules] = VersionRules(
        v2_only=("label", "size_change_pct", "targets", "horizon_text", "scoring_model",
                 "provenance"),
        v1_required=("confidence_score", "thesis", "market_conditions"))

    @model_validator(mode="after")
    def _sized_only_when_acting(self) -> ThesisDecided:
        self.VERSIONS.check(self)
        if self.decision_type in ("HOLD", "IGNORE") and self.position_size_pct != 0.0:
            raise ValueError(f"a {self.decision_type} decision cannot size a position")
        if (self.params_version is None) != (self.params_mode is None):
            raise ValueError("params_version and params_mode come together, or neither")
        return self

