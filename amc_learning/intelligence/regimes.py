"""Market regimes from index bars and VIX, and change detection on strategy streams.

`label_regimes` — trend × volatility with hysteresis, strictly causal:

* trend: the index close against its 200-session simple moving average, and the 50-session
  average against the 200-session one (the classic "death cross" pair). Bull when both
  are above (the close by more than `trend_band`), bear when both are below, otherwise
  neutral.
* volatility: the VIX where given, else the 21-session realised volatility of the index
  (annualised, in VIX points). High above `vol_enter`, back to low only below `vol_exit`
  (a band, so it does not flicker around one threshold).
* hysteresis: a new trend label is adopted only after it was the raw label for
  `min_dwell` consecutive sessions.

Every input of day t's label is a trailing window ending at t, and the hysteresis is a
forward state machine, so the label of day t never changes when later data arrive (the
trap of smoothed HMM states, which look into the future). Labels are fixed words defined
by these rules, so they mean the same thing on every refit.

`CusumDetector` — one-sided CUSUM on a standardised stream (Page 1954): the reference
mean and spread come from the first `warmup` observations, S_t = max(0, S_{t-1} +
d·(x_t − μ)/σ − k), alarm when S_t > h. The textbook h ≈ 4–5 alarms on most long stable
streams; here h is calibrated by Monte Carlo (`calibrate_cusum`) so that the probability
of any alarm on a stable stream of the given length — including the error of estimating
μ and σ from the warm-up — equals the stated false-alarm rate. For an autocorrelated
stream σ is the Newey–West long-run spread (`lags` > 0), so persistence alone does not
look like a change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

BULL, BEAR, NEUTRAL = "bull", "bear", "neutral"


@dataclass(frozen=True)
class RegimeConfig:
    long_window: int = 200
    short_window: int = 50
    vol_window: int = 21
    trend_band: float = 0.0
    vol_enter: float = 25.0
    vol_exit: float = 20.0
    min_dwell: int = 10


def label_regimes(index: pl.DataFrame, cfg: RegimeConfig | None = None) -> pl.DataFrame:
    """Causal regime labels for each session of `index` (columns session, close[, vix]).

    Returns session, trend, volatility and regime (e.g. "bear_high_vol"); sessions before
    the long window has filled get null labels.
    """
    cfg = cfg or RegimeConfig()
    frame = index.sort("session")
    close = frame["close"].to_numpy().astype(float)
    n = len(close)
    long_ma = _trailing_mean(close, cfg.long_window)
    short_ma = _trailing_mean(close, cfg.short_window)
    logret = np.concatenate([[np.nan], np.diff(np.log(close))])
    realised = _trailing_std(logret, cfg.vol_window) * math.sqrt(252) * 100
    vix = frame["vix"].to_numpy().astype(float) if "vix" in frame.columns else np.full(n, np.nan)
    vol_measure = np.where(np.isnan(vix), realised, vix)

    trend: list[str | None] = [None] * n
    volatility: list[str | None] = [None] * n
    state, pending, streak = None, None, 0
    high = False
    for t in range(n):
        if not np.isnan(vol_measure[t]):
            high = vol_measure[t] > cfg.vol_enter if not high else vol_measure[t] >= cfg.vol_exit
            volatility[t] = "high_vol" if high else "low_vol"
        if np.isnan(long_ma[t]):
            continue
        above = close[t] > long_ma[t] * (1 + cfg.trend_band)
        below = close[t] < long_ma[t] * (1 - cfg.trend_band)
        raw = (
            BULL
            if above and short_ma[t] > long_ma[t]
            else BEAR
            if below and short_ma[t] < long_ma[t]
            else NEUTRAL
        )
        if state is None:
            state = raw
        elif raw != state:
            streak = streak + 1 if raw == pending else 1
            pending = raw
            if streak >= cfg.min_dwell:
                state, pending, streak = raw, None, 0
        else:
            pending, streak = None, 0
        trend[t] = state
    regime = [f"{a}_{b}" if a and b else None for a, b in zip(trend, volatility, strict=True)]
    return pl.DataFrame(
        {"session": frame["session"], "trend": trend, "volatility": volatility, "regime": regime}
    )


def _trailing_mean(x: np.ndarray, w: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) >= w:
        c = np.cumsum(np.concatenate([[0.0], x]))
        out[w - 1 :] = (c[w:] - c[:-w]) / w
    return out


def _trailing_std(x: np.ndarray, w: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for t in range(w, len(x)):
        window = x[t - w + 1 : t + 1]
        out[t] = np.std(window, ddof=1)
    return out


# -- change detection ---------------------------------------------------------------------


@dataclass(frozen=True)
class CusumDetector:
    """One-sided CUSUM on a standardised stream; `direction` -1 watches for a drop."""

    threshold: float
    drift: float = 0.5
    warmup: int = 60
    direction: int = -1
    #: Newey–West lags of the warm-up spread: > 0 for autocorrelated streams.
    lags: int = 0

    def statistic(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        ref = x[: self.warmup]
        mu, sd = float(np.mean(ref)), float(_long_run_sd(ref[None, :], self.lags)[0, 0]) or 1.0
        z = self.direction * (x[self.warmup :] - mu) / sd
        s = np.zeros(len(z))
        level = 0.0
        for i, v in enumerate(z):
            level = max(0.0, level + v - self.drift)
            s[i] = level
        return np.concatenate([np.zeros(self.warmup), s])

    def first_alarm(self, x: np.ndarray) -> int | None:
        """Index of the first alarm in `x`, or None."""
        hits = np.flatnonzero(self.statistic(x) > self.threshold)
        return int(hits[0]) if len(hits) else None


def calibrate_cusum(
    length: int,
    false_alarm_rate: float,
    *,
    drift: float = 0.5,
    warmup: int = 60,
    direction: int = -1,
    lags: int = 0,
    simulations: int = 4000,
    seed: int = 0,
    null: Callable[[np.random.Generator, tuple[int, int]], np.ndarray] | None = None,
) -> CusumDetector:
    """A detector whose chance of any alarm on a stable stream of `length` is the rate.

    Stable streams are simulated from `null` (default i.i.d. normal; pass e.g. the absolute
    value of a normal for a stream of absolute returns), standardised with the warm-up's
    mean and spread, as the detector does; h is the (1 − rate) quantile of the run's
    maximum statistic.
    """
    rng = np.random.default_rng(seed)
    x = null(rng, (simulations, length)) if null else rng.standard_normal((simulations, length))
    return _calibrated(x, false_alarm_rate, drift, warmup, direction, lags)


def _long_run_sd(ref: np.ndarray, lags: int) -> np.ndarray:
    """Per row, the Newey–West (Bartlett) long-run standard deviation; lags 0 = plain."""
    e = ref - ref.mean(axis=1, keepdims=True)
    n = ref.shape[1]
    var = (e * e).sum(axis=1) / (n - 1)
    for lag in range(1, lags + 1):
        var = var + 2 * (1 - lag / (lags + 1)) * (e[:, lag:] * e[:, :-lag]).sum(axis=1) / (n - 1)
    return np.sqrt(np.maximum(var, 1e-24))[:, None]


def _calibrated(
    x: np.ndarray, rate: float, drift: float, warmup: int, direction: int, lags: int
) -> CusumDetector:
    ref = x[:, :warmup]
    z = direction * (x[:, warmup:] - ref.mean(axis=1, keepdims=True)) / _long_run_sd(ref, lags)
    level = np.zeros(len(x))
    peak = np.zeros(len(x))
    for i in range(z.shape[1]):
        level = np.maximum(0.0, level + z[:, i] - drift)
        peak = np.maximum(peak, level)
    h = float(np.quantile(peak, 1.0 - rate))
    return CusumDetector(threshold=h, drift=drift, warmup=warmup, direction=direction, lags=lags)
