"""Adaptive parameters: what the data support changing, by how much, and the evidence.

Everything is fitted on decisions whose outcome is complete (`analysis.known_by` is the
caller's gate: a decision's horizon outcome never leaks into the fit that judges it).
Within that window every choice is made on the first two thirds of the sessions and
judged on the rest, after a purge of the horizon (`book.split_for_validation`): nothing is
judged on the data it was fitted on. Then guardrails:

* minimum sample: below `min_samples` decisions a parameter keeps its current value;
* evidence: a fitted value replaces the current one only when its out-of-sample gain
  exceeds `min_z` standard errors (a one-sided Student t on sessions whose outcomes do
  not overlap), so noise does not move parameters;
* shrinkage toward the current value: new = current + λ·(fitted − current) with
  λ = n / (n + prior_strength), so a small sample moves a parameter a little;
* a maximum change per cycle, and hard bounds (at least as tight as the reader's);
* a floor on the share of candidates that still pass discovery: a threshold that filters
  out everything is a failure, not caution.

Methods:

* calibration first (the thresholds act on calibrated confidence): an isotonic/Platt map
  (`calibration.fit_calibration`), and a multiplier = mean calibrated / mean raw
  confidence, for consumers that only scale.
* scoring weights ∝ max(t, 0) of each component's daily rank IC with the forward return
  (Newey–West t, lags = horizon): a component earns weight only for evidence, in
  proportion to it; judged by the gain in daily IC of the composite.
* discovery, buy and sell thresholds, one at a time with the others held: the grid value
  whose per-session P&L under the trading rule has the best Sharpe ratio (`book.Book`),
  judged by the gain in per-session P&L. One objective for all three, and it is what
  trading earns: a per-trade criterion would trade diversification for a higher mean.
* position-size limit: fractional Kelly f = k·(p − (1 − p)/b) from the calibrated win rate
  p and payoff ratio b of the admitted trades, capped.

Parameters travel as the contract the trading engine reads (`AdaptiveParams`), the
calibration map as its knots. Every suggestion carries its evidence: sample size, the
out-of-sample gain over the current value, and its uncertainty (the scaled standard error
of that gain).

One module for the whole fit (about 460 lines, a tenth of them this description): each
parameter's fit is short, and they are read together because each acts on the last.
What trading earns and how a choice is judged out of sample are in `intelligence.book`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from amc_learning.intelligence import horizon as h
from amc_learning.intelligence.attribution import daily_ic
from amc_learning.intelligence.book import (
    Book,
    Rule,
    composite,
    paired_gain,
    sharpe,
    split_for_validation,
    weights_of,
)
from amc_learning.intelligence.calibration import brier_score, calibrate, fit_calibration
from amc_learning.intelligence.stats import newey_west_t
from amc_learning.schemas.discovery import ScoreComponents
from amc_learning.schemas.params import AdaptiveParams, CalibrationKnot

COMPONENTS = tuple(ScoreComponents.model_fields)


@dataclass(frozen=True)
class Guardrails:
    min_samples: int = 500
    prior_strength: int = 2_000
    max_threshold_step: float = 0.05
    max_weight_step: float = 0.10
    min_pass_share: float = 0.03
    kelly_fraction: float = 0.25
    #: Tighter than or equal to the reader's hard bounds (schemas.params.HARD_BOUNDS).
    bounds: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "discovery_threshold": (0.40, 0.95),
            "buy_threshold": (0.50, 0.90),
            "sell_threshold": (0.10, 0.50),
            "confidence_multiplier": (0.25, 1.25),
            "position_size_limit_pct": (0.25, 5.0),
        }
    )
    max_weight: float = 0.6
    horizon: int = h.DEFAULT
    #: A change must beat the current value by this many standard errors (the errors of
    #: overlapping, cross-correlated trades are understated, so 2 is a lenient gate).
    min_z: float = 2.0

    @property
    def returns(self) -> str:
        return h.returns(self.horizon)


@dataclass(frozen=True)
class Suggestion:
    name: str
    current: Any
    suggested: Any
    n: int
    expected_improvement: float | None
    uncertainty: float | None
    reason: str


def _guard(name: str, current: float, fitted: float, n: int, g: Guardrails, step: float) -> float:
    low, high = g.bounds[name]
    if n < g.min_samples:
        return current
    lam = n / (n + g.prior_strength)
    moved = current + lam * (fitted - current)
    moved = min(max(moved, current - step), current + step)
    return float(min(max(moved, low), high))


def _with(params: AdaptiveParams, **changes: Any) -> AdaptiveParams:
    """`params` with `changes` (weights as a dict); validated as a whole by `adapt`."""
    if "scoring_weights" in changes:
        changes["scoring_weights"] = ScoreComponents(**changes["scoring_weights"])
    return params.model_copy(update=changes)


def evidence_weights(
    train: pl.DataFrame, components: tuple[str, ...], returns: str, horizon: int,
    max_weight: float,
) -> tuple[dict[str, float], dict[str, float]]:
    """Weights ∝ max(t, 0) of each component's daily rank IC with `returns` (Newey–West
    t, lags = `horizon`), none above `max_weight`; ({}, t) when no component has positive
    evidence. The components are columns of `train`, named as in `components`."""
    ic = daily_ic(train.select("session", *components, returns), list(components), returns)
    t = {
        c: newey_west_t(
            ic.filter(pl.col("feature") == c).sort("session")["ic"].drop_nulls().to_numpy(),
            horizon,
        )
        for c in components
    }
    evidence = {c: max(0.0 if math.isnan(v) else v, 0.0) for c, v in t.items()}
    total = sum(evidence.values())
    if total == 0:
        return {}, t
    return _cap({c: evidence[c] / total for c in components}, max_weight), t


def _evidence_weights(
    train: pl.DataFrame, g: Guardrails
) -> tuple[dict[str, float], dict[str, float]]:
    return evidence_weights(train, COMPONENTS, g.returns, g.horizon, g.max_weight)


def _cap(weights: dict[str, float], cap: float) -> dict[str, float]:
    """Water-filling: no weight above `cap`, the excess spread over the others by weight."""
    w = dict(weights)
    for _ in range(len(w)):
        over = {c: v for c, v in w.items() if v > cap}
        if not over:
            break
        excess = sum(v - cap for v in over.values())
        free = {c: v for c, v in w.items() if v < cap}
        room = sum(free.values()) or len(free)
        for c in over:
            w[c] = cap
        for c, v in free.items():
            w[c] = v + excess * ((v / room) if sum(free.values()) else 1 / len(free))
    return w


def blend(
    current: dict[str, float], target: dict[str, float], lam: float, step: float
) -> dict[str, float]:
    """current + α (target − current), α ≤ λ and small enough that no weight moves more
    than `step`. Both ends are on the simplex, so every blend is: non-negative, sum 1. The
    weight that moves least (of those not at 0) takes up the rounding, so none moves past
    `step` or below 0."""
    names = list(current)
    gap = max(abs(target[c] - current[c]) for c in names)
    alpha = min(lam, step / gap) if gap > 0 else 0.0
    weights = {c: round(current[c] + alpha * (target[c] - current[c]), 6) for c in names}
    least = min(names, key=lambda c: (weights[c] < 1e-5, abs(target[c] - current[c])))
    weights[least] = round(1.0 - sum(w for c, w in weights.items() if c != least), 6)
    return weights


def fit_weights(
    train: pl.DataFrame, current: dict[str, float], g: Guardrails
) -> tuple[dict[str, float], Suggestion]:
    """Weights from the IC evidence, adopted only when they beat the current weights on a
    later, purged validation part of the window (never judged on what they were fitted on)."""
    n = len(train)

    def keep(
        reason: str, gain: tuple[float | None, float | None] = (None, None)
    ) -> tuple[dict[str, float], Suggestion]:
        return current, Suggestion("scoring_weights", current, current, n, gain[0], gain[1], reason)

    if n < g.min_samples:
        return keep("kept: too few decisions")
    fit, validate = split_for_validation(train, g.horizon)
    early, _ = _evidence_weights(fit, g)
    if not early or validate.is_empty():
        return keep("kept: no positive evidence, or no window left to validate on")
    lam = n / (n + g.prior_strength)
    gain = _ic_gain(validate, current, blend(current, early, lam, g.max_weight_step), g)
    if gain[0] is None or gain[1] is None or gain[0] < g.min_z * gain[1]:
        return keep("kept: the fitted weights do not beat the current ones out of sample", gain)
    target, t = _evidence_weights(train, g)
    weights = blend(current, target or early, lam, g.max_weight_step)
    return weights, Suggestion(
        "scoring_weights",
        current,
        weights,
        n,
        gain[0],
        gain[1],
        "out-of-sample IC gain; weights follow the Newey-West t of each component's IC: "
        + ", ".join(f"{c} {t[c]:+.1f}" for c in COMPONENTS),
    )


def _ic_gain(
    train: pl.DataFrame, old: dict[str, float], new: dict[str, float], g: Guardrails
) -> tuple[float | None, float | None]:
    data = train.drop_nulls(g.returns).with_columns(
        composite(old).alias("old"), composite(new).alias("new")
    )
    ic = daily_ic(data.select("session", "old", "new", g.returns), ["old", "new"], g.returns)
    wide = ic.pivot(on="feature", index="session", values="ic").drop_nulls().sort("session")
    return paired_gain((wide["new"] - wide["old"]).to_numpy(), g.horizon, g.min_z)


def fit_rule_value(
    name: str,
    train: pl.DataFrame,
    params: AdaptiveParams,
    grid: np.ndarray,
    g: Guardrails,
) -> tuple[float, Suggestion]:
    """One threshold of the trading rule, the others held: the grid value whose per-session
    P&L has the best Sharpe ratio on the first part of the window, adopted only when it
    earns more than the current value on the later, purged part (`split_for_validation`),
    then guarded (shrinkage, step, bounds). For the discovery threshold, only values that
    pass at least `min_pass_share` of the candidates are considered."""
    rule = Rule.of(params)
    current = getattr(rule, name)
    n = len(train)
    fit_part, validate_part = split_for_validation(train, g.horizon)
    fit = Book.of(fit_part, params, g.horizon)
    validate = Book.of(validate_part, params, g.horizon)
    best, best_sharpe = current, -math.inf
    min_trades = max(g.min_samples // 5, 30)
    for value in grid:
        side = fit.side(replace(rule, **{name: float(value)}))
        if np.count_nonzero(side) < min_trades:
            continue
        if name == "discovery_threshold" and np.mean(fit.score >= value) < g.min_pass_share:
            continue
        value_sharpe = sharpe(fit.pnl_of(side))
        if value_sharpe > best_sharpe:
            best, best_sharpe = float(value), value_sharpe
    gain, se = (None, None)
    if best != current and validate.sessions:
        gain, se = paired_gain(validate.pnl(replace(rule, **{name: best})) - validate.pnl(rule),
                               g.horizon, g.min_z)
    supported = gain is not None and se is not None and gain > g.min_z * se
    target = best if supported else current
    guarded = round(_guard(name, current, target, n, g, g.max_threshold_step), 4)
    reason = (
        f"best in-sample Sharpe at {best:.2f}; "
        + ("it earns more out of sample" if supported else "kept: not better out of sample")
    )
    return guarded, Suggestion(name, current, guarded, n, gain, se, reason)


def fit_discovery_threshold(
    train: pl.DataFrame, params: AdaptiveParams, g: Guardrails
) -> tuple[float, Suggestion]:
    """`fit_rule_value` on the discovery threshold, then capped by the pass-share floor:
    whatever the evidence, at least `min_pass_share` of the candidates still pass."""
    guarded, note = fit_rule_value(
        "discovery_threshold", train, params, np.arange(0.40, 0.951, 0.01), g
    )
    scores = train.select(composite(weights_of(params))).to_series().to_numpy()
    floor = float(np.quantile(scores, 1 - g.min_pass_share)) if len(scores) else guarded
    if guarded <= floor:
        return guarded, note
    capped = round(floor, 4)
    return capped, replace(
        note,
        suggested=capped,
        reason=f"{note.reason}; lowered to {capped:.3f} so that {g.min_pass_share:.0%} still pass",
    )


def fit_confidence(
    train: pl.DataFrame, g: Guardrails
) -> tuple[list[CalibrationKnot], float, Suggestion]:
    """The calibration map on the whole window; its evidence is the Brier-score gain of a
    map fitted on the first part of the window, measured on the later, purged part."""
    data = train.drop_nulls(g.returns)
    raw = data["confidence"].to_numpy()
    up = (data[g.returns].to_numpy() > 0).astype(float)
    fitted = fit_calibration(raw, up)
    knots = fitted.as_knots()
    multiplier = float(np.mean(fitted.apply(raw)) / max(np.mean(raw), 1e-9))
    gain = None
    fit_part, validate = (p.drop_nulls(g.returns) for p in split_for_validation(data, g.horizon))
    if len(fit_part) >= 30 and len(validate) >= 30:
        early = fit_calibration(
            fit_part["confidence"].to_numpy(),
            (fit_part[g.returns].to_numpy() > 0).astype(float),
        )
        v_raw = validate["confidence"].to_numpy()
        v_up = (validate[g.returns].to_numpy() > 0).astype(float)
        gain = brier_score(v_raw, v_up) - brier_score(early.apply(v_raw), v_up)
    return (
        knots,
        multiplier,
        Suggestion(
            "calibration",
            None,
            f"{fitted.method}, {len(knots)} knots",
            len(data),
            gain,
            None,
            "P(up over the horizon) as a function of raw confidence; the gain is the"
            " out-of-sample Brier-score improvement",
        ),
    )


def kelly_limit(
    train: pl.DataFrame, params: AdaptiveParams, g: Guardrails
) -> tuple[float, Suggestion]:
    """The position-size limit from the admitted trades under `params`' buy and sell
    thresholds (fractional Kelly), guarded."""
    current = params.position_size_limit_pct
    data = train.drop_nulls(g.returns)
    c = calibrate(params.calibration, data["confidence"].to_numpy())
    r = data[g.returns].to_numpy()
    side = np.where(c >= params.buy_threshold, 1.0,
                    np.where(c <= params.sell_threshold, -1.0, 0.0))
    trades = (side * r)[side != 0]
    if len(trades) < g.min_samples // 5 or not (trades > 0).any() or not (trades < 0).any():
        return current, Suggestion(
            "position_size_limit_pct",
            current,
            current,
            len(trades),
            None,
            None,
            "kept: too few trades",
        )
    p = float((trades > 0).mean())
    b = float(trades[trades > 0].mean() / -trades[trades < 0].mean())
    kelly = max(p - (1 - p) / b, 0.0)
    fitted = g.kelly_fraction * kelly * 100.0
    guarded = round(_guard("position_size_limit_pct", current, fitted, len(trades), g, 1.0), 4)
    return guarded, Suggestion(
        "position_size_limit_pct",
        current,
        guarded,
        len(trades),
        None,
        None,
        f"win rate {p:.3f}, payoff {b:.2f}, full Kelly {kelly:.3f}",
    )


def get_optimized_discovery_params(
    train: pl.DataFrame,
    current: AdaptiveParams,
    regime: str | None = None,
    g: Guardrails | None = None,
) -> tuple[AdaptiveParams, list[Suggestion]]:
    """Scoring weights and discovery threshold, on the regime's decisions when enough.
    The threshold is judged by what trading would earn under the current buy/sell
    thresholds and calibration."""
    g = g or Guardrails()
    if regime is not None and "regime" in train.columns:
        part = train.filter(pl.col("regime") == regime)
        train = part if len(part) >= g.min_samples else train
    weights, w_note = fit_weights(train, weights_of(current), g)
    params = _with(current, scoring_weights=weights)
    threshold, t_note = fit_discovery_threshold(train, params, g)
    return _with(params, discovery_threshold=threshold), [w_note, t_note]


def get_confidence_adjustments(
    train: pl.DataFrame, current: AdaptiveParams, g: Guardrails | None = None
) -> tuple[AdaptiveParams, list[Suggestion]]:
    """The calibration map and the confidence multiplier fitted on `train`, with the buy
    and sell thresholds carried onto the new map (`carried_thresholds`)."""
    g = g or Guardrails()
    knots, multiplier, note = fit_confidence(train, g)
    if note.n < g.min_samples:
        return current, [replace(note, suggested=None, reason="kept: too few decisions")]
    low, high = g.bounds["confidence_multiplier"]
    raw = train.drop_nulls(g.returns)["confidence"].to_numpy()
    buy, sell = carried_thresholds(current, knots, raw, g)
    return _with(current, calibration=knots, buy_threshold=buy, sell_threshold=sell,
                 confidence_multiplier=round(min(max(multiplier, low), high), 4)), [note]


def carried_thresholds(current: AdaptiveParams, knots: list[CalibrationKnot],
                       raw: np.ndarray, g: Guardrails) -> tuple[float, float]:
    """The buy and sell thresholds on a new calibration map that take the trades the
    current ones take on `raw` confidences, or as nearly as the new map can tell them
    apart (where it is flat, the side that changes fewer trades): a recalibration changes
    what a confidence says, not which trades are made; moving the thresholds is for the
    evidence of `fit_rule_value`. (Kept as numbers on a map that lowers the confidence,
    they stopped trading: on the native world, 1 trade in 250 sessions.)"""
    old, new = calibrate(current.calibration, raw), calibrate(knots, raw)
    levels = np.unique(np.append(new, [current.buy_threshold, current.sell_threshold]))
    bought = old >= current.buy_threshold
    sold = old <= current.sell_threshold
    # mistakes at each level: trades it adds plus trades it drops (sorted, so n log n)
    yes, no = np.sort(new[bought]), np.sort(new[~bought])
    buy_missed = (np.searchsorted(yes, levels, "left")
                  + len(no) - np.searchsorted(no, levels, "left"))
    yes, no = np.sort(new[sold]), np.sort(new[~sold])
    sell_missed = (len(yes) - np.searchsorted(yes, levels, "right")
                   + np.searchsorted(no, levels, "right"))
    buy, sell = float(levels[np.argmin(buy_missed)]), float(levels[np.argmin(sell_missed)])
    (b_low, b_high), (s_low, s_high) = g.bounds["buy_threshold"], g.bounds["sell_threshold"]
    buy, sell = round(min(max(buy, b_low), b_high), 4), round(min(max(sell, s_low), s_high), 4)
    if sell >= buy:
        return current.buy_threshold, current.sell_threshold
    return buy, sell


def suggest_threshold_changes(
    train: pl.DataFrame, current: AdaptiveParams, g: Guardrails | None = None
) -> tuple[AdaptiveParams, list[Suggestion]]:
    """Buy and sell thresholds on calibrated confidence, each judged by what trading would
    earn with the others held, then the position-size limit."""
    g = g or Guardrails()
    buy, b_note = fit_rule_value(
        "buy_threshold", train, current, np.arange(0.50, 0.901, 0.01), g
    )
    sell, s_note = fit_rule_value(
        "sell_threshold", train, _with(current, buy_threshold=buy),
        np.arange(0.10, 0.501, 0.01), g
    )
    if sell >= buy:
        buy, sell = current.buy_threshold, current.sell_threshold
    passed = train.filter(composite(weights_of(current)) >= current.discovery_threshold)
    params = _with(current, buy_threshold=buy, sell_threshold=sell)
    limit, k_note = kelly_limit(passed, params, g)
    return _with(params, position_size_limit_pct=limit), [b_note, s_note, k_note]


def adapt(
    train: pl.DataFrame,
    current: AdaptiveParams,
    regime: str | None = None,
    g: Guardrails | None = None,
) -> tuple[AdaptiveParams, list[dict[str, Any]]]:
    """All adaptive parameters from `train`, guarded, with the evidence for each: the
    calibration first (thresholds act on calibrated confidence), then the weights and
    discovery threshold, then buy/sell thresholds and the size limit given those. The
    result is validated as the contract publishes it (weights sum to 1, a monotone map)."""
    g = g or Guardrails()
    params, c_notes = get_confidence_adjustments(train, current, g)
    params, d_notes = get_optimized_discovery_params(train, params, regime, g)
    # trading reads the confidence of what passes discovery only: calibrate on that
    passed = train.filter(composite(weights_of(params)) >= params.discovery_threshold)
    if passed.drop_nulls(g.returns).height >= g.min_samples:
        params, c_notes = get_confidence_adjustments(passed, params, g)
    params, t_notes = suggest_threshold_changes(train, params, g)
    return (AdaptiveParams.model_validate(params.model_dump()),
            [asdict(n) for n in (*d_notes, *c_notes, *t_notes)])
