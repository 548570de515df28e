"""Published learning output: adaptive parameter sets and insights."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from schemas.common import Contract, Identifier, Percent, Probability, Regime, UtcTime
from schemas.discovery import ScoreComponents


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
    schema_version: Literal[1] = 1
    name: Identifier
    version: int = Field(ge=1)
    issued_at: UtcTime
    valid_until: UtcTime
    mode: Literal["shadow", "canary", "live"]
    canary_pct: Percent = 0.0
    regime: Regime
    params: AdaptiveParams
    provenance: dict[str, Any] = Field(default_factory=dict)
    signature: str = Field(default="", pattern=r"^[0-9a-f]{0,64}$")

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
