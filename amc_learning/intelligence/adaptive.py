"""Adaptive parameters: what the data support changing, by how much, and the evidence.

Everything is fitted on decisions whose outcome is complete (`analysis.known_by` is the
caller's gate: a decision's horizon outcome never leaks into the fit that judges it).
Within that window every choice is made on the first two thirds of the sessions and
judged on the rest, after a purge of the horizon (`split_for_validation`): nothing is
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
  whose per-session P&L under the trading rule has the best Sharpe ratio (`Book`),
  judged by the gain in per-session P&L. One objective for all three, and it is what
  trading earns: a per-trade criterion would trade diversification for a higher mean.
* position-size limit: fractional Kelly f = k·(p − (1 − p)/b) from the calibrated win rate
  p and payoff ratio b of the admitted trades, capped.

Every suggestion carries its evidence: sample size, the out-of-sample gain over the
current value, and its uncertainty (the scaled standard error of that gain).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import t as student_t

from amc_learning.intelligence.attribution import daily_ic
from amc_learning.intelligence.calibration import apply_map, brier_score, fit_calibration
from amc_learning.intelligence.stats import newey_west_t

COMPONENTS = ("volume_momentum", "squeeze", "catalyst", "options", "technical", "sentiment")


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
    horizon: int = 7
    #: A change must beat the current value by this many standard errors (the errors of
    #: overlapping, cross-correlated trades are understated, so 2 is a lenient gate).
    min_z: float = 2.0


@dataclass(frozen=True)
class Suggestion:
    name: str
    current: Any
    suggested: Any
    n: int
    expected_improvement: float | None
    uncertainty: float | None
    reason: str


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    if len(x) < 2:
        return math.nan, math.inf
    return float(np.mean(x)), float(np.std(x, ddof=1) / math.sqrt(len(x)))


def _guard(name: str, current: float, fitted: float, n: int, g: Guardrails, step: float) -> float:
    low, high = g.bounds[name]
    if n < g.min_samples:
        return current
    lam = n / (n + g.prior_strength)
    moved = current + lam * (fitted - current)
    moved = min(max(moved, current - step), current + step)
    return float(min(max(moved, low), high))


def composite(weights: dict[str, float]) -> pl.Expr:
    """The weighted discovery score of each row."""
    return sum((pl.col(c) * w for c, w in weights.items()), pl.lit(0.0))


def split_for_validation(train: pl.DataFrame, g: Guardrails) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(fit, validate): the first 2/3 of the sessions, then the rest after a purge of the
    horizon, so a choice made on `fit` is judged on outcomes it never saw."""
    sessions = train["session"].unique().sort()
    if len(sessions) < 3 * g.horizon:
        return train, train.clear()
    cut = int(len(sessions) * 2 / 3)
    fit = train.filter(pl.col("session") < sessions[cut])
    validate = train.filter(pl.col("session") >= sessions[min(cut + g.horizon, len(sessions) - 1)])
    return fit, validate


def _evidence_weights(
    train: pl.DataFrame, g: Guardrails
) -> tuple[dict[str, float], dict[str, float]]:
    ic = daily_ic(train.drop("regime", strict=False), list(COMPONENTS), "return_7d")
    t = {
        c: newey_west_t(
            ic.filter(pl.col("feature") == c).sort("session")["ic"].drop_nulls().to_numpy(),
            g.horizon,
        )
        for c in COMPONENTS
    }
    evidence = {c: max(0.0 if math.isnan(v) else v, 0.0) for c, v in t.items()}
    total = sum(evidence.values())
    if total == 0:
        return {}, t
    return _cap({c: evidence[c] / total for c in COMPONENTS}, g.max_weight), t


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


def _blend(
    current: dict[str, float], target: dict[str, float], lam: float, step: float
) -> dict[str, float]:
    """current + α (target − current), α ≤ λ and small enough that no weight moves more
    than `step`. Both ends are on the simplex, so every blend is: non-negative, sum 1."""
    gap = max(abs(target[c] - current[c]) for c in COMPONENTS)
    alpha = min(lam, step / gap) if gap > 0 else 0.0
    weights = {c: round(current[c] + alpha * (target[c] - current[c]), 6) for c in COMPONENTS}
    weights[COMPONENTS[0]] = round(1.0 - sum(weights[c] for c in COMPONENTS[1:]), 6)
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
    fit, validate = split_for_validation(train, g)
    early, _ = _evidence_weights(fit, g)
    if not early or validate.is_empty():
        return keep("kept: no positive evidence, or no window left to validate on")
    lam = n / (n + g.prior_strength)
    gain = _ic_gain(validate, current, _blend(current, early, lam, g.max_weight_step), g)
    if gain[0] is None or gain[1] is None or gain[0] < g.min_z * gain[1]:
        return keep("kept: the fitted weights do not beat the current ones out of sample", gain)
    target, t = _evidence_weights(train, g)
    weights = _blend(current, target or early, lam, g.max_weight_step)
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
    data = train.drop_nulls("return_7d").with_columns(
        composite(old).alias("old"), composite(new).alias("new")
    )
    ic = daily_ic(data.select("session", "old", "new", "return_7d"), ["old", "new"], "return_7d")
    wide = ic.pivot(on="feature", index="session", values="ic").drop_nulls().sort("session")
    return _paired_gain((wide["new"] - wide["old"]).to_numpy(), g)


def _paired_gain(diff: np.ndarray, g: Guardrails) -> tuple[float | None, float | None]:
    """Mean of a per-session difference (new - current) and a standard error scaled so that
    "gain > min_z * se" is a one-sided Student-t test at the level min_z has for a normal
    (2 -> 2.3 %). Only every horizon-th session is used: their outcomes do not overlap, so
    the errors are independent enough for a plain standard error (Newey-West is unreliable
    on so few sessions)."""
    diff = diff[:: g.horizon]
    if len(diff) < 4:
        return None, None
    mean, se = _mean_se(diff)
    level = float(student_t.sf(g.min_z, df=10_000))
    return mean, se * float(student_t.isf(level, df=len(diff) - 1)) / g.min_z


@dataclass(frozen=True)
class Book:
    """The candidates trading would see, as arrays, so that the per-session P&L of any
    choice of (discovery threshold, buy, sell) is one `bincount` away."""

    session: np.ndarray  # the row's session, as 0..sessions-1 in time order
    sessions: int
    score: np.ndarray  # weighted composite discovery score
    confidence: np.ndarray  # calibrated thesis confidence
    ret: np.ndarray  # forward return over the horizon

    @classmethod
    def of(cls, data: pl.DataFrame, weights: dict[str, float], knots: list[list[float]]) -> Book:
        data = data.drop_nulls("return_7d").sort("session")
        codes = data["session"].rank("dense").cast(pl.Int64).to_numpy() - 1
        return cls(
            session=codes,
            sessions=int(codes.max()) + 1 if len(codes) else 0,
            score=data.select(composite(weights)).to_series().to_numpy(),
            confidence=_calibrated(data, knots),
            ret=data["return_7d"].to_numpy(),
        )

    def side(self, rule: Rule) -> np.ndarray:
        """+1 buy, -1 sell, 0 no trade for each row under `rule`."""
        passed = self.score >= rule.discovery_threshold
        buy = self.confidence >= rule.buy_threshold
        sell = self.confidence <= rule.sell_threshold
        return (buy.astype(float) - sell.astype(float)) * passed

    def pnl(self, rule: Rule) -> np.ndarray:
        """What trading earns per session (sessions without a trade earn 0)."""
        return self.pnl_of(self.side(rule))

    def pnl_of(self, side: np.ndarray) -> np.ndarray:
        """`pnl` for sides already computed (`side`)."""
        earned = np.bincount(self.session, weights=side * self.ret, minlength=self.sessions)
        trades = np.bincount(self.session, weights=np.abs(side), minlength=self.sessions)
        return earned / np.maximum(trades, 1.0)


@dataclass(frozen=True)
class Rule:
    discovery_threshold: float
    buy_threshold: float
    sell_threshold: float


def _sharpe(pnl: np.ndarray) -> float:
    sd = float(np.std(pnl, ddof=1)) if len(pnl) > 1 else 0.0
    return float(np.mean(pnl)) / sd if sd > 0 else -math.inf


def fit_rule_value(
    name: str,
    train: pl.DataFrame,
    weights: dict[str, float],
    knots: list[list[float]],
    rule: Rule,
    grid: np.ndarray,
    g: Guardrails,
) -> tuple[float, Suggestion]:
    """One threshold of the trading rule, the others held: the grid value whose per-session
    P&L has the best Sharpe ratio on the first part of the window, adopted only when it
    earns more than the current value on the later, purged part (`split_for_validation`),
    then guarded (shrinkage, step, bounds). For the discovery threshold, only values that
    pass at least `min_pass_share` of the candidates are considered."""
    current = getattr(rule, name)
    n = len(train)
    fit_part, validate_part = split_for_validation(train, g)
    fit, validate = Book.of(fit_part, weights, knots), Book.of(validate_part, weights, knots)
    best, best_sharpe = current, -math.inf
    min_trades = max(g.min_samples // 5, 30)
    for value in grid:
        side = fit.side(replace(rule, **{name: float(value)}))
        if np.count_nonzero(side) < min_trades:
            continue
        if name == "discovery_threshold" and np.mean(fit.score >= value) < g.min_pass_share:
            continue
        sharpe = _sharpe(fit.pnl_of(side))
        if sharpe > best_sharpe:
            best, best_sharpe = float(value), sharpe
    gain, se = (None, None)
    if best != current and validate.sessions:
        gain, se = _paired_gain(validate.pnl(replace(rule, **{name: best})) - validate.pnl(rule), g)
    supported = gain is not None and se is not None and gain > g.min_z * se
    target = best if supported else current
    guarded = round(_guard(name, current, target, n, g, g.max_threshold_step), 4)
    reason = (
        f"best in-sample Sharpe at {best:.2f}; "
        + ("it earns more out of sample" if supported else "kept: not better out of sample")
    )
    return guarded, Suggestion(name, current, guarded, n, gain, se, reason)


def fit_discovery_threshold(
    train: pl.DataFrame,
    weights: dict[str, float],
    knots: list[list[float]],
    rule: Rule,
    g: Guardrails,
) -> tuple[float, Suggestion]:
    """`fit_rule_value` on the discovery threshold, then capped by the pass-share floor:
    whatever the evidence, at least `min_pass_share` of the candidates still pass."""
    guarded, note = fit_rule_value(
        "discovery_threshold", train, weights, knots, rule, np.arange(0.40, 0.951, 0.01), g
    )
    scores = train.select(composite(weights)).to_series().to_numpy()
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
) -> tuple[list[list[float]], float, Suggestion]:
    """The calibration map on the whole window; its evidence is the Brier-score gain of a
    map fitted on the first part of the window, measured on the later, purged part."""
    data = train.drop_nulls("return_7d")
    raw = data["confidence"].to_numpy()
    up = (data["return_7d"].to_numpy() > 0).astype(float)
    fitted = fit_calibration(raw, up)
    knots = [
        [round(x, 6), round(y, 6)] for x, y in zip(fitted.knots_x, fitted.knots_y, strict=True)
    ]
    multiplier = float(np.mean(fitted.apply(raw)) / max(np.mean(raw), 1e-9))
    gain = None
    fit_part, validate = (p.drop_nulls("return_7d") for p in split_for_validation(data, g))
    if len(fit_part) >= 30 and len(validate) >= 30:
        early = fit_calibration(
            fit_part["confidence"].to_numpy(),
            (fit_part["return_7d"].to_numpy() > 0).astype(float),
        )
        v_raw = validate["confidence"].to_numpy()
        v_up = (validate["return_7d"].to_numpy() > 0).astype(float)
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


def _calibrated(data: pl.DataFrame, knots: list[list[float]]) -> np.ndarray:
    """Confidence through the calibration knots; raw where there is no map yet."""
    raw = data["confidence"].to_numpy()
    return apply_map([k[0] for k in knots], [k[1] for k in knots], raw) if knots else raw


def kelly_limit(
    train: pl.DataFrame,
    knots: list[list[float]],
    thresholds: tuple[float, float],
    current: float,
    g: Guardrails,
) -> tuple[float, Suggestion]:
    data = train.drop_nulls("return_7d")
    c = _calibrated(data, knots)
    r = data["return_7d"].to_numpy()
    side = np.where(c >= thresholds[0], 1.0, np.where(c <= thresholds[1], -1.0, 0.0))
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


def _rule(values: dict[str, Any]) -> Rule:
    return Rule(values["discovery_threshold"], values["buy_threshold"], values["sell_threshold"])


def get_optimized_discovery_params(
    train: pl.DataFrame,
    current: dict[str, Any],
    regime: str | None = None,
    g: Guardrails | None = None,
) -> tuple[dict[str, Any], list[Suggestion]]:
    """Scoring weights and discovery threshold, on the regime's decisions when enough.
    The threshold is judged by what trading would earn under the current buy/sell
    thresholds and calibration (`current["calibration"]`)."""
    g = g or Guardrails()
    if regime is not None and "regime" in train.columns:
        part = train.filter(pl.col("regime") == regime)
        train = part if len(part) >= g.min_samples else train
    weights, w_note = fit_weights(train, current["scoring_weights"], g)
    threshold, t_note = fit_discovery_threshold(
        train, weights, current.get("calibration", []), _rule(current), g
    )
    return {"scoring_weights": weights, "discovery_threshold": threshold}, [w_note, t_note]


def get_confidence_adjustments(
    train: pl.DataFrame, g: Guardrails | None = None
) -> tuple[dict[str, Any], list[Suggestion]]:
    g = g or Guardrails()
    knots, multiplier, note = fit_confidence(train, g)
    low, high = g.bounds["confidence_multiplier"]
    return {
        "calibration": knots,
        "confidence_multiplier": round(min(max(multiplier, low), high), 4),
    }, [note]


def suggest_threshold_changes(
    train: pl.DataFrame, current: dict[str, Any], g: Guardrails | None = None
) -> tuple[dict[str, Any], list[Suggestion]]:
    """Buy and sell thresholds on calibrated confidence (`current["calibration"]`), each
    judged by what trading would earn with the others held, then the position-size limit."""
    g = g or Guardrails()
    weights, knots = current["scoring_weights"], current.get("calibration", [])
    rule = _rule(current)
    buy, b_note = fit_rule_value(
        "buy_threshold", train, weights, knots, rule, np.arange(0.50, 0.901, 0.01), g
    )
    rule = replace(rule, buy_threshold=buy)
    sell, s_note = fit_rule_value(
        "sell_threshold", train, weights, knots, rule, np.arange(0.10, 0.501, 0.01), g
    )
    if sell >= buy:
        buy, sell = current["buy_threshold"], current["sell_threshold"]
    passed = train.filter(composite(weights) >= rule.discovery_threshold)
    limit, k_note = kelly_limit(passed, knots, (buy, sell), current["position_size_limit_pct"], g)
    return {"buy_threshold": buy, "sell_threshold": sell, "position_size_limit_pct": limit}, [
        b_note,
        s_note,
        k_note,
    ]


def adapt(
    train: pl.DataFrame,
    current: dict[str, Any],
    regime: str | None = None,
    g: Guardrails | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """All adaptive parameters from `train`, guarded, with the evidence for each: the
    calibration first (thresholds act on calibrated confidence), then the weights and
    discovery threshold, then buy/sell thresholds and the size limit given those."""
    g = g or Guardrails()
    confidence, c_notes = get_confidence_adjustments(train, g)
    params = {**current, **confidence}
    discovery, d_notes = get_optimized_discovery_params(train, params, regime, g)
    params = {**params, **discovery}
    # trading reads the confidence of what passes discovery only: calibrate on that
    passed = train.filter(composite(params["scoring_weights"]) >= params["discovery_threshold"])
    if passed.drop_nulls("return_7d").height >= g.min_samples:
        confidence, c_notes = get_confidence_adjustments(passed, g)
        params = {**params, **confidence}
    thresholds, t_notes = suggest_threshold_changes(train, params, g)
    params = {**params, **thresholds}
    return params, [asdict(n) for n in (*d_notes, *c_notes, *t_notes)]
