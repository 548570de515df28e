"""Discovery: every scored candidate of a run, including those never acted on."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from amc_learning.schemas.common import (
    Contract,
    Event,
    FeatureName,
    Features,
    Identifier,
    Label,
    Price,
    Probability,
    Provenance,
    Scaled,
    ScoringModel,
    ShortText,
    Symbol,
    Tier,
    VersionRules,
    absent,
)

#: The six score components of the discovery model, in a fixed order.
SCORE_COMPONENTS = ("volume_momentum", "squeeze", "catalyst", "options", "technical", "sentiment")


class ScoreComponents(Contract):
    """The six component scores of a candidate, each in [0, 1]."""

    volume_momentum: Probability
    squeeze: Probability
    catalyst: Probability
    options: Probability
    technical: Probability
    sentiment: Probability


class CandidateScored(Event):
    """One candidate of a discovery run, scored; `passed` says whether it cleared the threshold.

    Schema version 2 carries what real scanners emit: the scoring model that scored it,
    the score on the scale the producer declared (`raw_score`; `composite_score` is its
    value on [0, 1], which the engine's adapters compute), components on their own scales
    and under their own names, factor tiers with their points, risk flags and short text
    attributes, and what an adapter inferred (`provenance`). The six 0–1 `scores` and the
    `threshold` become optional: "not measured" is absent, never a fabricated 0.
    """

    event_type: Literal["candidate_scored"] = "candidate_scored"
    run_id: Identifier
    symbol: Symbol
    rank: int = Field(ge=1, le=100_000)
    composite_score: Probability
    threshold: Probability | None = Field(default=None, exclude_if=absent)
    passed: bool
    scores: ScoreComponents | None = Field(default=None, exclude_if=absent)
    features: Features = Field(default_factory=dict)
    price: Price
    scoring_model: ScoringModel | None = Field(default=None, exclude_if=absent)
    raw_score: Scaled | None = Field(default=None, exclude_if=absent)
    components: dict[FeatureName, Scaled] = Field(default_factory=dict, max_length=32,
                                                  exclude_if=absent)
    tiers: dict[FeatureName, Tier] = Field(default_factory=dict, max_length=32,
                                           exclude_if=absent)
    flags: list[Label] = Field(default_factory=list, max_length=32, exclude_if=absent)
    attributes: dict[FeatureName, ShortText] = Field(default_factory=dict, max_length=32,
                                                     exclude_if=absent)
    provenance: Provenance = Field(default_factory=dict, exclude_if=absent)

    VERSIONS: ClassVar[VersionRules] = VersionRules(
        v2_only=("scoring_model", "raw_score", "components", "tiers", "flags", "attributes",
                 "provenance"),
        v1_required=("threshold", "scores", "features"))

    @model_validator(mode="after")
    def _versions(self) -> CandidateScored:
        self.VERSIONS.check(self)
        if self.raw_score is not None and abs(
                self.raw_score.normalised - self.composite_score) > 1e-6:
            raise ValueError(f"composite_score {self.composite_score} is not raw_score on "
                             f"[0, 1] ({self.raw_score.normalised:.6f})")
        return self

