"""Published learning output: adaptive parameter sets and insights."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from amc_learning.schemas.common import (
    Contract,
    Identifier,
    Percent,
    Probability,
    Regime,
    UtcDeadline,
    UtcTime,
)
from amc_learning.schemas.discovery import ScoreComponents


class CalibrationKnot(Contract):
    """One knot of a monotone piecewise-linear map raw confidence -> calibrated probability."""

    raw: Probability
    calibrated: Probability


class AdaptiveParams(Contract):
    """The parameters the trading engine reads, each bounded."""

    discovery_threshold: Probability
    scoring_weights: ScoreComponents
    buy_threshold: Probability
    sell_threshold: Probability
    confidence_multiplier: float = Field(ge=0.0, le=2.0)
    position_size_limit_pct: Percent
    calibration: list[CalibrationKnot] = Field(default_factory=list, max_length=256)

    @model_validator(mode="after")
    def _weights_and_map(self) -> AdaptiveParams:
        total = sum(self.scoring_weights.model_dump().values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"scoring weights must sum to 1, not {total:.6f}")
        raws = [k.raw for k in self.calibration]
        cals = [k.calibrated for k in self.calibration]
        if raws != sorted(raws) or cals != sorted(cals):
            raise ValueError("calibration knots must be monotone non-decreasing")
        return self


class ParamsPublished(Contract):
    """One version of a parameter set on the compacted params topic (key = `name`)."""

    message_type: Literal["params_published"] = "params_published"
    #: 2: the signature travels beside the record (`schemas.signing`), not in it
    schema_version: Literal[2] = 2
    name: Identifier
    version: int = Field(ge=1)
    issued_at: UtcTime
    valid_until: UtcDeadline
    mode: Literal["shadow", "canary", "live"]
    canary_pct: Percent = 0.0
    regime: Regime
    params: AdaptiveParams
    provenance: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _window(self) -> ParamsPublished:
        if self.valid_until <= self.issued_at:
            raise ValueError("valid_until must be after issued_at")
        return self


class InsightPublished(Contract):
    """A learning insight (pattern, calibration, feature importance, regime), keyed by kind."""

    message_type: Literal["insight_published"] = "insight_published"
    schema_version: Literal[1] = 1
    kind: Literal["pattern", "calibration", "feature_importance", "regime", "summary"]
    as_of: UtcTime
    body: dict[str, Any]


# -- bounds and the safe defaults (the contract both sides share) ------------------

#: The seed's conservative defaults: what the trading engine uses when nothing valid is known.
FALLBACK_PARAMS = AdaptiveParams(
    discovery_threshold=0.75,
    scoring_weights=ScoreComponents(
        volume_momentum=0.25, squeeze=0.20, catalyst=0.20, options=0.15, technical=0.10,
        sentiment=0.10,
    ),
    buy_threshold=0.65,
    sell_threshold=0.35,
    confidence_multiplier=0.8,
    position_size_limit_pct=2.0,
)

#: Hard bounds a published version must respect to be used at all (beyond the types).
HARD_BOUNDS: dict[str, tuple[float, float]] = {
    "discovery_threshold": (0.40, 0.95),
    "buy_threshold": (0.50, 0.95),
    "sell_threshold": (0.05, 0.50),
    "confidence_multiplier": (0.25, 1.25),
    "position_size_limit_pct": (0.0, 5.0),
}
MAX_WEIGHT = 0.6  # no single scoring component may carry more than this


def out_of_bounds(params: AdaptiveParams) -> str | None:
    """Why `params` must not be used, or None when every value is within the hard bounds."""
    for name, (low, high) in HARD_BOUNDS.items():
        value = getattr(params, name)
        if not low <= value <= high:
            return f"{name}={value} outside [{low}, {high}]"
    heaviest = max(params.scoring_weights.model_dump().items(), key=lambda kv: kv[1])
    if heaviest[1] > MAX_WEIGHT:
        return f"scoring weight {heaviest[0]}={heaviest[1]} above {MAX_WEIGHT}"
    if params.sell_threshold >= params.buy_threshold:
        return "sell_threshold must be below buy_threshold"
    return None
