"""Discovery: every scored candidate of a run, including those never acted on."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from amc_learning.schemas.common import (
    Contract,
    Event,
    Features,
    Identifier,
    Price,
    Probability,
    Symbol,
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
    """One candidate of a discovery run, scored; `passed` says whether it cleared the threshold."""

    event_type: Literal["candidate_scored"] = "candidate_scored"
    run_id: Identifier
    symbol: Symbol
    rank: int = Field(ge=1, le=100_000)
    composite_score: Probability
    threshold: Probability
    passed: bool
    scores: ScoreComponents
    features: Features
    price: Price
