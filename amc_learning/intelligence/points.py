"""A tiered scoring model's points, learned from what its candidates earned.

A credit scorecard's points are scaled regression coefficients on binned factors; here
the bins are the producer's own tiers and the target is the forward return over the
horizon, in excess of the session's mean candidate (the market move is common to every
candidate of a session). The fit, on every tracked candidate, decided or not:

* **one additive model for all factors**: the return on an indicator per tier of every
  factor, against that factor's most common state (its reference), plus one indicator per
  factor for "missing" (a missing factor is neither its reference nor a tier); ordinary
  least squares, with standard errors robust to any dependence within blocks of
  `horizon` sessions (cluster-robust by block: overlapping returns of one stock, and
  every stock of a session, move together), a Student t with blocks − 1 degrees of
  freedom;
* **in the model's own units**: an effect becomes points at the rate that gives the
  fitted score the spread of the current net score (points per unit of return), so a
  table learned keeps the scale its thresholds and bands are written in; a tier's target
  is its factor's reference points plus its effect in points;
* **evidence against the current table**: a tier's test is whether its effect differs
  from the one the current table claims for it (its points over its reference's, in
  return units), not whether it differs from zero: a tier the table rates 25 points
  below its reference is wrong if it earns the same; BH q across every tier tested;
* **guardrails**: a tier moves only with at least `min_tier_n` candidates and q ≤
  `max_q`; it moves toward its target by n / (n + `prior_strength`) (shrinkage toward
  the current table, the producer's prior, never toward zero), at most `max_step` points
  per cycle, in whole points; a penalty stays a penalty and a reward does not become one
  unless q ≤ `decisive_q`; tiers never seen keep their points;
* **the entry threshold** on the model's scale: the value, within `max_threshold_step`
  of the current one and passing at least `min_pass_share` of candidates, whose
  per-session P&L of buying what clears it, in excess of the session's mean candidate
  (as the rollout judges it), has the best Sharpe ratio (`book.Book`); on raw returns
  the market's move, common to every pick, would reward ever fewer picks;
* **out of sample**: effects and threshold are fitted on the first two thirds of the
  sessions and the new table is kept only when, on the rest after a purge of the horizon,
  its per-session P&L in excess of the session's mean candidate beats the current
  table's by `min_z` scaled standard errors (`book.paired_gain`); otherwise the current
  table is returned unchanged. (On raw returns a table that picks more names would be
  credited the market's move once per extra pick.)

`fit_points` has the signature of every fit the cycle's `plan` runs: frame, incumbent,
regime, guardrails → params and evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl
from scipy.stats import t as student_t

from amc_learning.intelligence import horizon as h
from amc_learning.intelligence.book import (
    Book,
    Rule,
    net_points,
    paired_gain,
    sharpe,
    split_for_validation,
)
from amc_learning.intelligence.stats import benjamini_hochberg
from amc_learning.schemas.models import SENT, TIER, UNTIERED, Bounds, Factor, TieredModel
from amc_learning.schemas.params import ModelParams, TieredParams

MISSING = "(missing)"


@dataclass(frozen=True)
class PointsGuardrails:
    horizon: int = h.DEFAULT
    min_tier_n: int = 200
    prior_strength: int = 2_000
    max_step: int = 10
    max_q: float = 0.10
    decisive_q: float = 0.01
    min_z: float = 2.0
    max_threshold_step: float = 10.0
    min_pass_share: float = 0.03


@dataclass(frozen=True)
class TierEffect:
    """A tier's effect on the excess return against its factor's reference state, with
    its standard error and the degrees of freedom of its t (blocks − 1)."""

    factor: str
    tier: str
    n: int
    effect: float
    se: float
    df: int
    reference: str


def _holds(bounds: Bounds, value: pl.Expr) -> pl.Expr:
    held = pl.lit(True)
    for bound, check in ((bounds.at_least, value.__ge__), (bounds.above, value.__gt__),
                         (bounds.at_most, value.__le__), (bounds.below, value.__lt__)):
        if bound is not None:
            held = held & check(bound)
    return held


def tier_expr(factor: Factor, columns: list[str]) -> pl.Expr:
    """`schemas.models.tiers_of` for one factor, on a whole frame: the tier the producer
    sent (`SENT`) when it names a declared one (null when it names none), else the one
    the measurement falls in (a feature column; `UNTIERED` when none holds), null where
    neither is there. A test holds the two equal."""
    measurement = next((c for c in (factor.measurement, f"feature_{factor.measurement}")
                        if c in columns), None)
    measured: pl.Expr = pl.lit(None, dtype=pl.Utf8)
    if measurement is not None:
        value = pl.col(measurement)
        chain: Any = pl
        for tier in factor.tiers:
            if tier.bounds is not None:
                chain = chain.when(_holds(tier.bounds, value)).then(pl.lit(tier.name))
        measured = pl.when(value.is_null()).then(pl.lit(None, dtype=pl.Utf8)).otherwise(
            pl.lit(UNTIERED) if chain is pl else chain.otherwise(pl.lit(UNTIERED)))
    if SENT.format(factor.name) not in columns:
        return measured.alias(TIER.format(factor.name))
    names: dict[str, str] = {}
    for tier in factor.tiers:  # the first tier that names a label takes it, as in tiers_of
        for label in (tier.name, *tier.labels):
            names.setdefault(label, tier.name)
    sent = pl.col(SENT.format(factor.name))
    return (pl.when(sent.is_not_null())
            .then(sent.replace_strict(names, default=None, return_dtype=pl.Utf8))
            .otherwise(measured).alias(TIER.format(factor.name)))


def tier_columns(model: TieredModel, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every factor's tier (`TIER`) read by `tier_expr`."""
    return frame.with_columns(tier_expr(f, frame.columns) for f in model.factors)


def excess(frame: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """The rows with a return over `horizon`, that return made the excess over its
    session's mean candidate, sorted by session."""
    ret = h.returns(horizon)
    return (frame.drop_nulls(ret).with_columns(pl.col(ret) - pl.col(ret).mean().over("session"))
            .sort("session"))


def tier_effects(data: pl.DataFrame, factors: list[str], horizon: int) -> list[TierEffect]:
    """Every observed state's effect (tiers, `UNTIERED`, `MISSING`) in `data` (`excess`),
    fitted jointly (see the module's description), with its cluster-robust standard
    error."""
    y = data[h.returns(horizon)].to_numpy()
    columns: list[np.ndarray] = [np.ones(len(data))]
    labels: list[tuple[str, str, str, int]] = []  # factor, state, reference, n
    for factor in factors:
        name = TIER.format(factor)
        if name not in data.columns:
            continue
        states = data[name].fill_null(MISSING)
        counts = states.value_counts(sort=True)
        observed = [s for s in counts[name].to_list() if s != MISSING]
        if len(observed) < 2:
            continue
        reference = observed[0]
        values = states.to_numpy()
        for state, n in zip(counts[name].to_list(), counts["count"].to_list(), strict=True):
            if state != reference:
                columns.append((values == state).astype(float))
                labels.append((factor, state, reference, int(n)))
    if not labels or len(data) <= len(columns):
        return []
    x = np.column_stack(columns)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    codes = data["session"].rank("dense").cast(pl.Int64).to_numpy() - 1
    blocks = codes // max(horizon, 1)
    g = int(blocks.max()) + 1
    scores = np.zeros((g, x.shape[1]))
    np.add.at(scores, blocks, x * resid[:, None])
    bread = np.linalg.pinv(x.T @ x)
    n, k = x.shape
    correction = (g / max(g - 1, 1)) * ((n - 1) / max(n - k, 1))
    cov = correction * bread @ (scores.T @ scores) @ bread
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    df = max(g - 1, 1)
    return [TierEffect(factor, state, count, float(beta[i]), float(se[i]), df, reference)
            for i, (factor, state, reference, count) in enumerate(labels, start=1)]


def points_per_return(data: pl.DataFrame, table: TieredParams,
                      effects: list[TierEffect]) -> float:
    """Points per unit of excess return: the rate at which the fitted effects, summed for
    each candidate of `data` (`excess`), spread as widely as the current table's net
    score."""
    current = data.select(net_points(table, data.columns)).to_series().to_numpy()
    fitted = np.zeros(len(data))
    for e in effects:
        if e.tier != MISSING:  # a missing factor is no part of a score
            fitted += np.where(data[TIER.format(e.factor)].to_numpy() == e.tier, e.effect, 0.0)
    spread = float(np.std(fitted))
    return float(np.std(current)) / spread if spread > 0 else 0.0


def propose(table: TieredParams, effects: list[TierEffect], rate: float,
            g: PointsGuardrails) -> tuple[TieredParams, list[dict[str, Any]]]:
    """The guarded table, and per tier tested: its evidence and what it became. A tier is
    tested when the table has it and its reference (a state of no points, or a tier)."""
    tables = {f: dict(tiers) for f, tiers in table.tables.items()}
    tested = [e for e in effects if e.tier in tables.get(e.factor, {}) and rate > 0
              and e.se > 0 and (e.reference in tables[e.factor] or e.reference == UNTIERED)]
    claims = [(tables[e.factor][e.tier] - tables[e.factor].get(e.reference, 0)) / rate
              for e in tested]
    p = np.array([2 * student_t.sf(abs(e.effect - c) / e.se, df=e.df)
                  for e, c in zip(tested, claims, strict=True)])
    q = benjamini_hochberg(p)
    notes = []
    for e, claim, q_e in zip(tested, claims, q, strict=True):
        tiers = tables[e.factor]
        current = tiers[e.tier]
        target = tiers.get(e.reference, 0) + rate * e.effect
        new, why = current, ""
        if e.n < g.min_tier_n:
            why = f"n {e.n} < {g.min_tier_n}"
        elif q_e > g.max_q:
            why = f"q {q_e:.3f} > {g.max_q}"
        else:
            step = e.n / (e.n + g.prior_strength) * (target - current)
            new = round(current + max(-g.max_step, min(g.max_step, step)))
            if q_e > g.decisive_q and current < 0 <= new:
                new, why = -1, "a penalty stays one without decisive evidence"
            elif q_e > g.decisive_q and current > 0 > new:
                new, why = 0, "a reward becomes no penalty without decisive evidence"
        tiers[e.tier] = new
        notes.append({"factor": e.factor, "tier": e.tier, "n": e.n,
                      "reference": e.reference, "effect": round(e.effect, 6),
                      "low": round(e.effect - 1.96 * e.se, 6),
                      "high": round(e.effect + 1.96 * e.se, 6),
                      "claimed": round(claim, 6), "q": round(float(q_e), 6),
                      "target": round(target, 2), "current": current, "proposed": new,
                      "why": why or ("moved" if new != current else "within a point")})
    return table.model_copy(update={"tables": tables}), notes


class ThresholdLimits(Protocol):
    @property
    def horizon(self) -> int: ...
    @property
    def max_threshold_step(self) -> float: ...
    @property
    def min_pass_share(self) -> float: ...


def best_threshold(frame: pl.DataFrame, table: ModelParams, current: float,
                   g: ThresholdLimits, low: float, high: float) -> float:
    """The entry threshold (a scoring model's, in whole units of its scale) with the best
    per-session Sharpe ratio of buying what clears it, among values within
    `max_threshold_step` of `current` that pass enough."""
    book = Book.of(frame, table, g.horizon)
    if book.sessions < 2:
        return current
    grid = np.unique(np.concatenate([
        np.quantile(book.score, np.linspace(0.05, 0.95, 19)), [current]]))
    grid = grid[(np.abs(grid - current) <= g.max_threshold_step)
                & (grid >= low) & (grid <= high)]
    best, best_sharpe = current, -math.inf
    for value in grid:
        if np.mean(book.score >= value) < g.min_pass_share:
            continue
        s = sharpe(book.pnl(Rule(float(value), -math.inf, -math.inf)))
        if s > best_sharpe:
            best, best_sharpe = float(value), s
    return round(best)


def fit_points(train: pl.DataFrame, current: TieredParams, regime: str | None = None,
               g: PointsGuardrails | None = None, *, scale: tuple[float, float] = (
                   -math.inf, math.inf)) -> tuple[TieredParams, dict[str, Any]]:
    """A new points table and entry threshold from `train` (complete outcomes only), or
    `current` unchanged when out of sample it does not earn more; with the evidence."""
    g = g or PointsGuardrails()
    fit, validate = split_for_validation(train, g.horizon)
    evidence: dict[str, Any] = {"rows": len(train), "fit_rows": len(fit),
                                "validate_rows": len(validate)}
    if validate.is_empty() or len(fit) < 2 * g.min_tier_n:
        return current, {**evidence, "accepted": False, "why": "too little history"}
    data = excess(fit, g.horizon)
    effects = tier_effects(data, list(current.tables), g.horizon)
    rate = points_per_return(data, current, effects)
    table, notes = propose(current, effects, rate, g)
    threshold = best_threshold(data, table, current.entry_threshold, g, *scale)
    proposed = table.model_copy(update={"entry_threshold": float(threshold)})
    judged = excess(validate, g.horizon)  # as the threshold was chosen, and as the judge
    new = Book.of(judged, proposed, g.horizon).pnl(Rule.of(proposed))  # reads it
    old = Book.of(judged, current, g.horizon).pnl(Rule.of(current))
    gain, se = paired_gain(new - old, g.horizon, g.min_z)
    accepted = gain is not None and se is not None and gain > g.min_z * se
    evidence.update(points_per_unit_return=round(rate, 2), tiers=notes,
                    threshold={"current": current.entry_threshold, "proposed": threshold},
                    judged={"gain": gain, "se": se, "sessions": len(new), "accepted": accepted})
    return (proposed if accepted and proposed != current else current), evidence
