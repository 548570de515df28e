"""Adaptive parameters: what the data support changing, by how much, and the evidence.

Everything is fitted on decisions whose outcome is complete (`analysis.known_by` is the
caller's gate: a decision's horizon outcome never leaks into the fit that judges it) and
then passed through guardrails before it may become a parameter:

* minimum sample: below `min_samples` decisions a parameter keeps its current value;
* shrinkage toward the current value: new = current + λ·(fitted − current) with
  λ = n / (n + prior_strength), so a small sample moves a parameter a little;
* a maximum change per cycle, and hard bounds (at least as tight as the reader's);
* a floor on the share of candidates that still pass discovery: a threshold that filters
  out everything is a failure, not caution;
* evidence: a fitted value replaces the current one only when its improvement on the fit
  window exceeds `min_z` standard errors, so noise does not move parameters.

Methods:

* scoring weights ∝ max(t, 0) of each component's daily rank IC with the forward return
  (Newey–West t, lags = horizon): a component earns weight only for evidence, in
  proportion to it; with no positive evidence the weights stay.
* discovery threshold: the grid value maximising the lower bound (mean − 1 se) of the
  forward return of the candidates that pass, among thresholds passing at least the floor.
* confidence: an isotonic/Platt calibration map (`calibration.fit_calibration`), and a
  multiplier = mean calibrated / mean raw confidence, for consumers that only scale.
* buy/sell thresholds on calibrated confidence: the grid value maximising the lower
  bound of the side-adjusted return of the trades it admits.
* position-size limit: fractional Kelly f = k·(p − (1 − p)/b) from the calibrated win rate
  p and payoff ratio b of the admitted trades, capped.

Every suggestion carries its evidence: sample size, expected improvement over the
current value on the fit window, and its uncertainty (one standard error).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import t as student_t

from intelligence.attribution import daily_ic
from intelligence.calibration import apply_map, fit_calibration
from intelligence.stats import newey_west_t

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
    # every horizon-th session: non-overlapping outcomes, so the errors are independent
    # enough for a plain standard error (Newey-West is unreliable on so few sessions)
    diff = (wide["new"] - wide["old"]).to_numpy()[:: g.horizon]
    if len(diff) < 4:
        return None, None
    mean, se = _mean_se(diff)
    # report a standard error scaled so that "gain > min_z * se" is a one-sided Student-t
    # test at the level min_z has for a normal (2 -> 2.3 %), on len(diff) - 1 degrees
    level = float(student_t.sf(g.min_z, df=10_000))
    return mean, se * float(student_t.isf(level, df=len(diff) - 1)) / g.min_z


def fit_discovery_threshold(
    train: pl.DataFrame, weights: dict[str, float], current: float, g: Guardrails
) -> tuple[float, Suggestion]:
    data = train.drop_nulls("return_7d").with_columns(composite(weights).alias("c"))
    scores, returns = data["c"].to_numpy(), data["return_7d"].to_numpy()
    n = len(data)
    best, best_lb, best_mean = current, -math.inf, math.nan
    for threshold in np.arange(0.40, 0.951, 0.01):
        passed = returns[scores >= threshold]
        if len(passed) < max(g.min_samples // 5, 30) or len(passed) < g.min_pass_share * n:
            continue
        mean, se = _mean_se(passed)
        if mean - se > best_lb:
            best, best_lb, best_mean = float(threshold), mean - se, mean
    floor = float(np.quantile(scores, 1 - g.min_pass_share)) if n else current
    now = returns[scores >= current]
    now_mean, now_se = _mean_se(now) if len(now) > 1 else (math.nan, math.inf)
    best_se = best_mean - best_lb if not math.isinf(best_lb) else math.inf
    supported = (
        not math.isnan(now_mean)
        and not math.isinf(best_lb)
        and best_mean - now_mean > g.min_z * math.hypot(now_se, best_se)
    )
    target = best if supported or math.isnan(now_mean) else current
    guarded = _guard("discovery_threshold", current, target, n, g, g.max_threshold_step)
    guarded = round(min(guarded, floor), 4)  # never filter out (nearly) everything
    return guarded, Suggestion(
        "discovery_threshold",
        current,
        guarded,
        n,
        None if math.isnan(best_mean) or math.isnan(now_mean) else best_mean - now_mean,
        None if math.isinf(best_lb) else best_mean - best_lb,
        f"best lower bound at {best:.2f}; pass-share floor {g.min_pass_share:.0%} caps it at "
        f"{floor:.3f}",
    )


def fit_confidence(train: pl.DataFrame) -> tuple[list[list[float]], float, Suggestion]:
    data = train.drop_nulls("return_7d")
    raw = data["confidence"].to_numpy()
    up = (data["return_7d"].to_numpy() > 0).astype(float)
    fitted = fit_calibration(raw, up)
    knots = [
        [round(x, 6), round(y, 6)] for x, y in zip(fitted.knots_x, fitted.knots_y, strict=True)
    ]
    calibrated = fitted.apply(raw)
    multiplier = float(np.mean(calibrated) / max(np.mean(raw), 1e-9))
    gap_before = float(np.mean(np.abs(raw - up)))
    gap_after = float(np.mean(np.abs(calibrated - up)))
    return (
        knots,
        multiplier,
        Suggestion(
            "calibration",
            None,
            f"{fitted.method}, {len(knots)} knots",
            len(data),
            gap_before - gap_after,
            None,
            "P(up over the horizon) as a function of raw confidence",
        ),
    )


def _calibrated(data: pl.DataFrame, knots: list[list[float]]) -> np.ndarray:
    return apply_map([k[0] for k in knots], [k[1] for k in knots], data["confidence"].to_numpy())


def fit_trade_thresholds(
    train: pl.DataFrame, knots: list[list[float]], current: tuple[float, float], g: Guardrails
) -> tuple[tuple[float, float], list[Suggestion]]:
    data = train.drop_nulls("return_7d")
    c = _calibrated(data, knots)
    r = data["return_7d"].to_numpy()
    n = len(data)
    out, notes = [], []
    for name, now, grid, side in (
        ("buy_threshold", current[0], np.arange(0.50, 0.91, 0.01), 1),
        ("sell_threshold", current[1], np.arange(0.50, 0.09, -0.01), -1),
    ):
        best, best_lb, best_mean = now, -math.inf, math.nan
        for th in grid:
            admitted = side * r[(c >= th) if side > 0 else (c <= th)]
            if len(admitted) < max(g.min_samples // 5, 30):
                continue
            mean, se = _mean_se(admitted)
            if mean - se > best_lb:
                best, best_lb, best_mean = float(th), mean - se, mean
        current_trades = side * r[(c >= now) if side > 0 else (c <= now)]
        now_mean, now_se = _mean_se(current_trades)
        supported = (
            not math.isinf(best_lb)
            and not math.isnan(now_mean)
            and best_mean - now_mean > g.min_z * math.hypot(now_se, best_mean - best_lb)
        )
        target = best if supported else now
        guarded = round(_guard(name, now, target, n, g, g.max_threshold_step), 4)
        out.append(guarded)
        notes.append(
            Suggestion(
                name,
                now,
                guarded,
                n,
                None if math.isnan(best_mean) else best_mean,
                None if math.isinf(best_lb) else best_mean - best_lb,
                f"best lower bound of the admitted trades' return at {best:.2f}",
            )
        )
    buy, sell = out
    if sell >= buy:
        buy, sell = current
    return (buy, sell), notes


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


def get_optimized_discovery_params(
    train: pl.DataFrame,
    current: dict[str, Any],
    regime: str | None = None,
    g: Guardrails | None = None,
) -> tuple[dict[str, Any], list[Suggestion]]:
    """Scoring weights and discovery threshold, on the regime's decisions when enough."""
    g = g or Guardrails()
    if regime is not None and "regime" in train.columns:
        part = train.filter(pl.col("regime") == regime)
        train = part if len(part) >= g.min_samples else train
    weights, w_note = fit_weights(train, current["scoring_weights"], g)
    threshold, t_note = fit_discovery_threshold(train, weights, current["discovery_threshold"], g)
    return {"scoring_weights": weights, "discovery_threshold": threshold}, [w_note, t_note]


def get_confidence_adjustments(
    train: pl.DataFrame, g: Guardrails | None = None
) -> tuple[dict[str, Any], list[Suggestion]]:
    knots, multiplier, note = fit_confidence(train)
    low, high = (g or Guardrails()).bounds["confidence_multiplier"]
    return {
        "calibration": knots,
        "confidence_multiplier": round(min(max(multiplier, low), high), 4),
    }, [note]


def suggest_threshold_changes(
    train: pl.DataFrame,
    current: dict[str, Any],
    knots: list[list[float]],
    g: Guardrails | None = None,
) -> tuple[dict[str, Any], list[Suggestion]]:
    g = g or Guardrails()
    (buy, sell), notes = fit_trade_thresholds(
        train, knots, (current["buy_threshold"], current["sell_threshold"]), g
    )
    limit, k_note = kelly_limit(train, knots, (buy, sell), current["position_size_limit_pct"], g)
    return {"buy_threshold": buy, "sell_threshold": sell, "position_size_limit_pct": limit}, [
        *notes,
        k_note,
    ]


def adapt(
    train: pl.DataFrame,
    current: dict[str, Any],
    regime: str | None = None,
    g: Guardrails | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """All adaptive parameters from `train`, guarded, with the evidence for each."""
    g = g or Guardrails()
    discovery, notes = get_optimized_discovery_params(train, current, regime, g)
    confidence, c_notes = get_confidence_adjustments(train, g)
    # trading sees only what passes discovery: judge its thresholds on those candidates
    passed = train.filter(
        composite(discovery["scoring_weights"]) >= discovery["discovery_threshold"]
    )
    thresholds, t_notes = suggest_threshold_changes(passed, current, confidence["calibration"], g)
    params = {**current, **discovery, **confidence, **thresholds}
    return params, [asdict(n) for n in (*notes, *c_notes, *t_notes)]
