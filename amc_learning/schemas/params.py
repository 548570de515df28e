"""Published learning output: adaptive parameter sets and insights."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from amc_learning.schemas.common import (
    Contract,
    FeatureName,
    Identifier,
    Label,
    Percent,
    Probability,
    Regime,
    ScoringModel,
    UtcDeadline,
    UtcTime,
)
from amc_learning.schemas.discovery import ScoreComponents
from amc_learning.schemas.models import ComponentModel, TieredModel, declared_table


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


class TieredParams(Contract):
    """A tiered points model's parameters in its own units: each factor's points per tier
    (whole points, penalties negative) and the entry threshold on its scale."""

    kind: Literal["tiered"] = "tiered"
    model: ScoringModel
    tables: dict[FeatureName, dict[Label, int]] = Field(max_length=64)
    entry_threshold: float

    @classmethod
    def declared(cls, model: TieredModel) -> TieredParams:
        """The producer's own table: what it uses while nothing learned is live."""
        return cls(model=ScoringModel(name=model.name, version=model.version),
                   tables=declared_table(model), entry_threshold=model.entry_threshold)

    def changes(self, other: TieredParams) -> list[tuple[str, str, int, int]]:
        """(factor, tier, other's points, these points) wherever the two tables differ."""
        return [(f, t, other.tables.get(f, {}).get(t, p), p)
                for f, tiers in self.tables.items() for t, p in tiers.items()
                if other.tables.get(f, {}).get(t, p) != p]


class ComponentParams(Contract):
    """A component model's parameters in its own units: each named component's weight
    (non-negative, summing to 1) and the threshold on its scale."""

    kind: Literal["component"] = "component"
    model: ScoringModel
    weights: dict[FeatureName, float] = Field(max_length=32)
    threshold: float

    @model_validator(mode="after")
    def _simplex(self) -> ComponentParams:
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("component weights must not be negative")
        total = sum(self.weights.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"component weights must sum to 1, not {total:.6f}")
        return self

    @classmethod
    def declared(cls, model: ComponentModel) -> ComponentParams:
        """The producer's own weights and threshold."""
        return cls(model=ScoringModel(name=model.name, version=model.version),
                   weights={c.name: c.weight for c in model.components},
                   threshold=model.threshold)


#: A scoring model's own parameters (`table` in a reader's words).
ModelParams = TieredParams | ComponentParams


def params_of(dump: dict[str, Any]) -> AdaptiveParams | TieredParams | ComponentParams:
    """A stored parameter set, of any kind (a model's says so in `kind`)."""
    if dump.get("kind") == "tiered":
        return TieredParams.model_validate(dump)
    if dump.get("kind") == "component":
        return ComponentParams.model_validate(dump)
    return AdaptiveParams.model_validate(dump)


def declared_params(model: TieredModel | ComponentModel) -> ModelParams:
    """A declared model's own parameters: what its reader uses while nothing learned is."""
    if isinstance(model, TieredModel):
        return TieredParams.declared(model)
    return ComponentParams.declared(model)


def model_out_of_bounds(params: ModelParams, model: TieredModel | ComponentModel) -> str | None:
    """`tiered_out_of_bounds` or `component_out_of_bounds`, by the model's kind."""
    if (params.model.name, params.model.version) != (model.name, model.version):
        return (f"the params are for {params.model.name} {params.model.version}, "
                f"not {model.name} {model.version}")
    if isinstance(params, TieredParams) and isinstance(model, TieredModel):
        return tiered_out_of_bounds(params, model)
    if isinstance(params, ComponentParams) and isinstance(model, ComponentModel):
        return component_out_of_bounds(params, model)
    return f"{params.kind} params for the {model.kind} model {model.name} {model.version}"


def component_out_of_bounds(params: ComponentParams, model: ComponentModel) -> str | None:
    """Why a component model's weights must not be used: other components than declared,
    a weight above `MAX_WEIGHT`, the threshold off its scale."""
    declared = {c.name for c in model.components}
    if set(params.weights) != declared:
        return (f"the weights name {sorted(params.weights)}, {model.name} {model.version} "
                f"declares {sorted(declared)}")
    heaviest = max(params.weights.items(), key=lambda kv: kv[1])
    if heaviest[1] > MAX_WEIGHT:
        return f"component weight {heaviest[0]}={heaviest[1]} above {MAX_WEIGHT}"
    if not model.scale.low <= params.threshold <= model.scale.high:
        return (f"threshold={params.threshold} outside "
                f"[{model.scale.low:g}, {model.scale.high:g}]")
    return None


def tiered_out_of_bounds(params: TieredParams, model: TieredModel) -> str | None:
    """Why a points table must not be used for `model`, or None: every factor and tier is
    one the model declares, every tier's points within the model's scale span, the entry
    threshold on its scale."""
    if (params.model.name, params.model.version) != (model.name, model.version):
        return (f"the table is for {params.model.name} {params.model.version}, "
                f"not {model.name} {model.version}")
    span = model.scale.high - model.scale.low
    declared = declared_table(model)
    for factor, tiers in params.tables.items():
        if factor not in declared:
            return f"{model.name} {model.version} declares no factor {factor!r}"
        for tier, points in tiers.items():
            if tier not in declared[factor]:
                return f"factor {factor} declares no tier {tier!r}"
            if abs(points) > span:
                return f"{factor}.{tier}={points} beyond the scale's span {span:g}"
    if not model.scale.low <= params.entry_threshold <= model.scale.high:
        return (f"entry_threshold={params.entry_threshold} outside "
                f"[{model.scale.low:g}, {model.scale.high:g}]")
    return None


def param_set(scoring_model: str, native: str = "default") -> str:
    """The param set (the params topic's key, `ParamsPublished.name`) a scoring model's
    params are published under: `native` (LEARNING_PARAMS_NAME) for the engine's own
    contract, "name:version" for a producer's model ("amc-scanner 3.3.1" ->
    "amc-scanner:3.3.1"). One set per model: a reader asks for its model's and never
    gets another's."""
    if scoring_model in ("native", ""):
        return native
    name, _, version = scoring_model.partition(" ")
    return f"{name}:{version}"


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
    #: the engine's own six-weight set, or a scoring model's parameters in its own units
    params: AdaptiveParams | TieredParams | ComponentParams
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
