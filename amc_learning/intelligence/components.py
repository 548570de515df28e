"""A component scoring model's weights and threshold, learned from what its candidates
earned: the engine's own weight fit (`adaptive.evidence_weights`) generalised to any
named components on any declared scale (AlphaStack 4.1: six buckets on 0–100, weighed
30/25/20/10/8/7, trade-ready at 75).

On every tracked candidate the model scored, decided or not:

* **weights** ∝ max(t, 0) of each component's daily rank IC with the forward return
  (Newey–West t), capped at `max_weight`; the new weights move from the current ones by
  n / (n + `prior_strength`), at most `max_weight_step` for any component, so they stay
  non-negative and sum to 1 (`adaptive.blend`);
* **the threshold** on the model's scale: the value within `max_threshold_step` of the
  current one, passing at least `min_pass_share` of the candidates, whose per-session P&L
  of buying what clears it, in excess of the session's mean candidate, has the best
  Sharpe ratio (`points.best_threshold`, the points fit's own choice);
* **out of sample**: both are chosen on the first two thirds of the sessions and kept
  only when, on the rest after a purge of the horizon, the new rule's per-session excess
  P&L beats the current one's by `min_z` scaled standard errors (`book.paired_gain`);
  otherwise the current weights and threshold are returned unchanged.

`fit_components` has the signature of every fit the cycle's `plan` runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from amc_learning.intelligence import horizon as h
from amc_learning.intelligence.adaptive import blend, evidence_weights
from amc_learning.intelligence.book import Book, Rule, paired_gain, split_for_validation
from amc_learning.intelligence.points import best_threshold, excess
from amc_learning.schemas.models import COMPONENT
from amc_learning.schemas.params import ComponentParams


@dataclass(frozen=True)
class ComponentGuardrails:
    horizon: int = h.DEFAULT
    min_samples: int = 500
    prior_strength: int = 2_000
    max_weight_step: float = 0.10
    max_weight: float = 0.6
    min_z: float = 2.0
    #: in the model's own units (AlphaStack: points of 0–100; the cycle gives a twentieth
    #: of the model's scale)
    max_threshold_step: float = 5.0
    min_pass_share: float = 0.03


def fit_components(train: pl.DataFrame, current: ComponentParams, regime: str | None = None,
                   g: ComponentGuardrails | None = None, *, scale: tuple[float, float] = (
                       -math.inf, math.inf)) -> tuple[ComponentParams, dict[str, Any]]:
    """New weights and threshold from `train` (session, `component:<name>` columns, the
    return over the horizon; complete outcomes only), or `current` unchanged when out of
    sample they do not earn more; with the evidence."""
    g = g or ComponentGuardrails()
    ret = h.returns(g.horizon)
    names = tuple(current.weights)
    columns = tuple(COMPONENT.format(c) for c in names)
    train = train.drop_nulls([*columns, ret]) if not train.is_empty() else train
    fit, validate = split_for_validation(train, g.horizon) if len(train) else (train, train)
    evidence: dict[str, Any] = {"rows": len(train), "fit_rows": len(fit),
                                "validate_rows": len(validate)}
    if validate.is_empty() or len(train) < g.min_samples:
        return current, {**evidence, "accepted": False, "why": "too little history"}
    data = excess(fit, g.horizon)
    target, t = evidence_weights(data, columns, ret, g.horizon, g.max_weight)
    lam = len(train) / (len(train) + g.prior_strength)
    weights = current.weights
    if target:
        weights = blend(current.weights, {c: target[COMPONENT.format(c)] for c in names},
                        lam, g.max_weight_step)
    reweighed = current.model_copy(update={"weights": weights})
    threshold = best_threshold(data, reweighed, current.threshold, g, *scale)
    proposed = reweighed.model_copy(update={"threshold": float(threshold)})
    judged = excess(validate, g.horizon)
    new = Book.of(judged, proposed, g.horizon).pnl(Rule.of(proposed))
    old = Book.of(judged, current, g.horizon).pnl(Rule.of(current))
    gain, se = paired_gain(new - old, g.horizon, g.min_z)
    accepted = gain is not None and se is not None and gain > g.min_z * se
    evidence.update(
        ic_t={c: round(t[COMPONENT.format(c)], 3) for c in names},
        weights={"current": current.weights, "proposed": weights},
        threshold={"current": current.threshold, "proposed": threshold},
        judged={"gain": gain, "se": se, "sessions": len(new), "accepted": accepted})
    return (ComponentParams.model_validate(proposed.model_dump())
            if accepted and proposed != current else current), evidence
