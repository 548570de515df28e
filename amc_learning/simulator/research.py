"""A vectorised research world with planted ground truth, for scoring the learner.

The event simulator (`simulator.world`) feeds the pipeline; this one produces, in one
call, the frame the analyzers read — one row per (session, symbol) decision with its
features, regime, confidence and forward returns — at a scale (years × hundreds of
symbols) that would be slow through pydantic events. What is planted is returned as
`PlantedTruth`, so tests score the learner against it:

(a) `bull_features` predict next-day returns only in bull sessions, `bear_features` only
    in bear sessions; the `noise_features` never do.
(b) thesis confidence is honest up to `overconfident_above` and overstates the win
    probability by `overconfidence_margin` above it.
(c) BUY decisions of bull sessions with `crowding` in its top third lose money
    systematically (`losing_alpha` per session).
(d) the regime switches from bull to bear at session `switch_session`: the market's
    drift turns negative and its volatility rises from `bull_vol` to `bear_vol`.

Features are persistent AR(1) processes (φ = 0.9), so today's value also predicts the
next days. The strategy is regime-blind (it trades the bull signal), so its hit rate
drops after the switch — what a change detector should notice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy.special import ndtr

from amc_learning.schemas.params import AdaptiveParams

HORIZONS = (1, 7, 30)  # the planted truth's horizons (LEARNING_OUTCOME_HORIZONS' default)


@dataclass(frozen=True)
class PlantedTruth:
    bull_features: tuple[str, ...] = ("momentum", "squeeze")
    bear_features: tuple[str, ...] = ("value",)
    noise_features: tuple[str, ...] = ("noise_1", "noise_2", "noise_3", "noise_4", "noise_5")
    losing_feature: str = "crowding"
    overconfident_above: float = 0.7
    overconfidence_margin: float = 0.15
    switch_session: int | None = 250

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.bull_features, *self.bear_features, self.losing_feature, *self.noise_features)


@dataclass(frozen=True)
class ResearchConfig:
    seed: int = 0
    symbols: int = 200
    sessions: int = 500
    start: date = date(2016, 1, 4)
    effect: float = 0.002  # daily alpha per standard deviation of a predictive feature
    losing_alpha: float = -0.006
    sigma: float = 0.02
    persistence: float = 0.9
    bull_drift: float = 0.0004
    bear_drift: float = -0.0008
    bull_vol: float = 0.008
    bear_vol: float = 0.02
    truth: PlantedTruth = field(default_factory=PlantedTruth)
    pure_noise: bool = False


def sessions_calendar(start: date, n: int) -> list[date]:
    """n weekdays from `start` (holidays ignored: this world has none)."""
    out: list[date] = []
    day = start
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def persistent(rng: np.random.Generator, sessions: int, shape: tuple[int, ...],
               phi: float) -> np.ndarray:
    """A stationary AR(1) latent of unit variance per (session, *shape), persistence φ."""
    out = np.empty((sessions, *shape))
    out[0] = rng.standard_normal(shape)
    for t in range(1, sessions):
        out[t] = phi * out[t - 1] + math.sqrt(1 - phi * phi) * rng.standard_normal(shape)
    return out


def forward(cum: np.ndarray, horizon: int) -> np.ndarray:
    """The return over the next `horizon` sessions of each (session, symbol), from the
    cumulative daily returns `cum` (a row of zeros first); NaN where it is not complete."""
    t_n = cum.shape[0] - 1
    out = np.full((t_n, cum.shape[1]), np.nan)
    out[: t_n - horizon] = cum[1 + horizon:][: t_n - horizon] - cum[1: t_n - horizon + 1]
    return out


@dataclass(frozen=True)
class ResearchWorld:
    decisions: pl.DataFrame  # one row per (session, symbol) decision
    index: pl.DataFrame  # session, close: the market the symbols move with
    truth: PlantedTruth


def simulate_research(cfg: ResearchConfig) -> ResearchWorld:
    """The decision frame and market index of a seeded world, and what was planted."""
    truth = cfg.truth
    rng = np.random.default_rng(cfg.seed)
    t_n, s_n, names = cfg.sessions, cfg.symbols, truth.features
    phi = cfg.persistence
    f = persistent(rng, t_n, (s_n, len(names)), phi)
    col = {n: i for i, n in enumerate(names)}
    switch = truth.switch_session if truth.switch_session is not None else t_n
    bull = np.arange(t_n) < switch
    effect = 0.0 if cfg.pure_noise else cfg.effect
    bull_signal = f[:, :, [col[n] for n in truth.bull_features]].sum(axis=2)
    bear_signal = f[:, :, [col[n] for n in truth.bear_features]].sum(axis=2)
    alpha = effect * np.where(bull[:, None], bull_signal, bear_signal)
    side = np.where(bull_signal >= 0, 1.0, -1.0)  # the regime-blind strategy
    crowded = f[:, :, col[truth.losing_feature]] > np.quantile(
        f[: max(switch, 1), :, col[truth.losing_feature]], 2 / 3
    )
    losing = crowded & (side > 0) & bull[:, None]
    if not cfg.pure_noise:
        alpha = alpha + np.where(losing, cfg.losing_alpha, 0.0)
    market_drift = np.where(bull, cfg.bull_drift, cfg.bear_drift)
    market_vol = np.where(bull, cfg.bull_vol, cfg.bear_vol)
    market = (market_drift + market_vol * rng.standard_normal(t_n))[:, None]
    # alpha known at the close of t drives the return of t + 1
    daily = np.zeros((t_n, s_n))
    daily[1:] = market[1:] + alpha[:-1] + cfg.sigma * rng.standard_normal((t_n - 1, s_n))
    cum = np.vstack([np.zeros((1, s_n)), np.cumsum(daily, axis=0)])
    fwd = {h: forward(cum, h) for h in HORIZONS}

    # what an honest model would say: P(side * 7-day return > 0 | today's information)
    h = 7
    decay = (1 - phi**h) / (1 - phi)
    drift = market_drift[:, None] * h + alpha * decay
    spread = np.sqrt(h * (cfg.sigma**2 + market_vol**2))[:, None]
    p_true = ndtr(side * drift / spread)
    confidence = p_true.copy()
    if not cfg.pure_noise:
        lifted = p_true + truth.overconfidence_margin > truth.overconfident_above
        confidence = np.where(
            lifted, np.minimum(0.99, p_true + truth.overconfidence_margin), p_true
        )
    source = np.where(rng.random((t_n, s_n)) < 0.8, "thesis", "discovery")

    calendar = sessions_calendar(cfg.start, t_n)
    frame = pl.DataFrame(
        {
            "session_index": np.repeat(np.arange(t_n), s_n),
            "session": np.repeat(np.array(calendar, dtype="datetime64[D]"), s_n),
            "symbol": np.tile([f"S{i:04d}" for i in range(s_n)], t_n),
            "regime": np.repeat(np.where(bull, "bull", "bear"), s_n),
            "decision_type": np.where(side > 0, "BUY", "SELL").ravel(),
            "decision_source": source.ravel(),
            "confidence": confidence.ravel(),
            **{n: f[:, :, col[n]].ravel() for n in names},
            **{f"return_{k}d": fwd[k].ravel() for k in HORIZONS},
            "side_return_1d": (side * fwd[1]).ravel(),
            "side_return_7d": (side * fwd[7]).ravel(),
            "win": (side * fwd[7] > 0).ravel(),
            "expected_return_7d": (side * drift).ravel(),  # planted truth, not for the learner
        }
    ).with_columns(pl.col("session").cast(pl.Date), pl.col("^(side_)?return_.*$").fill_nan(None))
    index = pl.DataFrame({"session": calendar, "close": 1000.0 * np.exp(np.cumsum(market[:, 0]))})
    return ResearchWorld(frame, index, truth)


# -- the experiment world: discovery scores, thesis confidence, and trading with params -----

COMPONENTS = ("volume_momentum", "squeeze", "catalyst", "options", "technical", "sentiment")


@dataclass(frozen=True)
class ExperimentConfig:
    """Candidates scored on the six components, with planted alpha and overconfidence."""

    seed: int = 0
    symbols: int = 200
    sessions: int = 504  # two years: the first to learn, the second judged
    #: daily alpha per unit of (score - 0.5); technical hurts, options/sentiment are noise
    component_alpha: tuple[float, ...] = (0.004, 0.002, 0.006, 0.0, -0.004, 0.0)
    overconfidence: float = 2.0  # the thesis logit is stretched by this factor
    sigma: float = 0.02
    noise_only: bool = False
    #: from this session on the components' alpha turns against them, while the thesis
    #: service keeps its beliefs: a strategy that goes bad (for rollback tests)
    flip_session: int | None = None


def simulate_candidates(cfg: ExperimentConfig) -> pl.DataFrame:
    """One row per (session, symbol): six scores, raw thesis confidence P(up), returns."""
    rng = np.random.default_rng([cfg.seed, 2])
    t_n, s_n, k = cfg.sessions, cfg.symbols, len(COMPONENTS)
    phi = 0.9
    latent = persistent(rng, t_n, (s_n, k), phi)
    scores = 1.0 / (1.0 + np.exp(-1.3 * latent))
    coef = np.zeros(k) if cfg.noise_only else np.array(cfg.component_alpha)
    alpha = (scores - 0.5) @ coef  # what the thesis service believes
    realised = alpha.copy()
    if cfg.flip_session is not None:
        realised[cfg.flip_session :] *= -1.0
    market = 0.0003 + 0.01 * rng.standard_normal(t_n)
    daily = np.zeros((t_n, s_n))
    daily[1:] = market[1:, None] + realised[:-1] + cfg.sigma * rng.standard_normal((t_n - 1, s_n))
    cum = np.vstack([np.zeros((1, s_n)), np.cumsum(daily, axis=0)])
    h = 7
    fwd = forward(cum, h)
    decay = (1 - phi**h) / (1 - phi)
    p_up = ndtr((0.0003 * h + alpha * decay) / math.sqrt(h * (cfg.sigma**2 + 0.01**2)))
    logit = np.log(p_up / (1 - p_up))
    stretch = 1.0 if cfg.noise_only else cfg.overconfidence
    noise = rng.normal(0.0, 0.3, (t_n, s_n))
    confidence = 1.0 / (1.0 + np.exp(-(stretch * logit + noise)))
    frame = pl.DataFrame(
        {
            "session_index": np.repeat(np.arange(t_n), s_n),
            "session": np.repeat(
                np.array(sessions_calendar(date(2016, 1, 4), t_n), dtype="datetime64[D]"), s_n
            ),
            "symbol": np.tile([f"S{i:04d}" for i in range(s_n)], t_n),
            **{c: scores[:, :, i].ravel() for i, c in enumerate(COMPONENTS)},
            "confidence": confidence.ravel(),
            "return_7d": fwd.ravel(),
        }
    ).with_columns(pl.col("session").cast(pl.Date), pl.col("return_7d").fill_nan(None))
    return frame


def trade(candidates: pl.DataFrame, params: AdaptiveParams) -> pl.DataFrame:
    """What a trading engine does with `params`: the trades, one row each.

    Discovery passes candidates whose weighted composite score clears the threshold; the
    thesis confidence is mapped through the calibration knots (if any); BUY at or above the
    buy threshold, SELL at or below the sell threshold; size = the position-size limit
    times the confidence multiplier.
    """
    weights = params.scoring_weights.model_dump()
    composite = sum(pl.col(c) * w for c, w in weights.items())
    knots = params.calibration
    data = candidates.drop_nulls("return_7d").with_columns(composite.alias("composite"))
    data = data.filter(pl.col("composite") >= params.discovery_threshold)
    raw = data["confidence"].to_numpy()
    used = np.interp(raw, [k.raw for k in knots], [k.calibrated for k in knots]) if knots else raw
    data = data.with_columns(pl.Series("used_confidence", used))
    side = (
        pl.when(pl.col("used_confidence") >= params.buy_threshold)
        .then(1.0)
        .when(pl.col("used_confidence") <= params.sell_threshold)
        .then(-1.0)
        .otherwise(0.0)
    )
    size = params.position_size_limit_pct * params.confidence_multiplier
    return (
        data.with_columns(side.alias("side"))
        .filter(pl.col("side") != 0)
        .with_columns(
            (pl.col("side") * pl.col("return_7d")).alias("trade_return"),
            pl.lit(size).alias("size_pct"),
        )
    )
