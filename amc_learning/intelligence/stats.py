"""Small-sample statistics shared by the analyzers.

* `wilson_interval`: the Wilson score interval for a binomial proportion. Unlike the
  normal (Wald) interval it stays inside [0, 1] and keeps near-nominal coverage at small n
  and extreme rates, which is exactly where a pattern table lives.
* `beta_binomial_shrink`: empirical-Bayes shrinkage of many win rates towards their pooled
  rate. The prior Beta(a, b) is fitted by the method of moments across groups, with the
  binomial sampling variance removed; a group with few trials is pulled towards the
  pool, one with many keeps its own rate.
* `benjamini_hochberg`: q-values controlling the false discovery rate (BH 1995, step-up).
* `binomial_test_p`: exact two-sided binomial test p-value.
* `newey_west_t`: t-statistic of a mean with Newey–West (Bartlett kernel) standard errors,
  for overlapping observations such as 7- or 30-day forward returns sampled daily.
* `block_bootstrap_interval`: the same blocks, for an interval of a series' sum (the
  P&L difference of two arms over the sessions they traded).
* `sharpe_gain_test`: whether one rule's per-session Sharpe ratio beats another's on the
  same sessions: a one-sided Student t on the difference of their scaled P&L, read
  every `block`-th session so that overlapping returns do not overlap (decision 011: a
  moving-block bootstrap with blocks of the horizon said "better" or "worse" 4-5 times
  as often as it should on so few sessions).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps


def as_float(value: object) -> float:
    """A polars reduction (`mean`, `min`, `max`) as a float; NaN where it found no value."""
    return float(value) if isinstance(value, int | float) else math.nan


def wilson_interval(
    wins: np.ndarray, n: np.ndarray, z: float = 1.96
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (lower, upper) for wins/n; (0, 1) where n == 0."""
    wins, n = np.asarray(wins, float), np.asarray(n, float)
    safe = np.where(n > 0, n, 1.0)
    p = wins / safe
    denom = 1.0 + z * z / safe
    centre = (p + z * z / (2 * safe)) / denom
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / denom
    return np.where(n > 0, centre - half, 0.0), np.where(n > 0, centre + half, 1.0)


def beta_binomial_shrink(wins: np.ndarray, n: np.ndarray, min_strength: float = 2.0) -> np.ndarray:
    """Posterior mean win rate per group under a Beta prior fitted across the groups."""
    wins, n = np.asarray(wins, float), np.asarray(n, float)
    pooled = wins.sum() / max(n.sum(), 1.0)
    rates = wins / np.where(n > 0, n, 1.0)
    weights = n / max(n.sum(), 1.0)
    observed_var = float(np.sum(weights * (rates - pooled) ** 2))
    sampling_var = float(np.sum(weights * pooled * (1 - pooled) / np.where(n > 0, n, 1.0)))
    between = observed_var - sampling_var
    if between <= 1e-12:  # no detectable spread: shrink hard
        strength = 1e6
    else:
        strength = max(pooled * (1 - pooled) / between - 1.0, min_strength)
    a, b = pooled * strength, (1 - pooled) * strength
    return (wins + a) / (n + a + b)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH q-values: the smallest FDR at which each hypothesis would be rejected."""
    p = np.asarray(p, float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def binomial_test_p(wins: np.ndarray, n: np.ndarray, p0: float) -> np.ndarray:
    """Exact two-sided binomial p-values of wins out of n against rate p0."""
    return np.array(
        [
            sps.binomtest(int(k), int(m), p0).pvalue if m > 0 else 1.0
            for k, m in zip(wins, n, strict=True)
        ]
    )


def newey_west_t(x: np.ndarray, lags: int) -> float:
    """t-statistic of mean(x) with a Newey–West HAC standard error (Bartlett weights)."""
    x = np.asarray(x, float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n < 3:
        return math.nan
    e = x - x.mean()
    var = float(e @ e) / n
    for lag in range(1, min(lags, n - 1) + 1):
        w = 1.0 - lag / (lags + 1.0)
        var += 2.0 * w * float(e[lag:] @ e[:-lag]) / n
    if var <= 0:
        return math.nan
    return float(x.mean() / math.sqrt(var / n))



def sharpe_gain_test(a: np.ndarray, b: np.ndarray, block: int,
                     spread: tuple[float, float] | None = None) -> tuple[float, float, int]:
    """(Sharpe(a) − Sharpe(b) per session, P(not better), sessions read) for two paired
    per-session series (two rules on the same sessions). Each series is divided by its
    `spread` (default: its own standard deviation; a spread of 0 counts the series as 0),
    so the mean of their difference is the Sharpe gain; it is tested by a one-sided
    Student t on every `block`-th session from the first (their `block`-session outcomes
    do not overlap, so those differences are independent enough for a plain t). NaN on
    fewer than 3 such sessions."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2:
        return math.nan, math.nan, 0
    sa, sb = spread if spread is not None else (spread_of(a), spread_of(b))
    diff = _scaled(a, sa) - _scaled(b, sb)
    read = diff[::max(block, 1)]
    n = len(read)
    if n < 3:
        return math.nan, math.nan, n
    gain, sd = float(diff.mean()), float(read.std(ddof=1))
    mean = float(read.mean())
    if sd == 0:
        return gain, 0.0 if mean > 0 else 1.0 if mean < 0 else 0.5, n
    return gain, float(sps.t.sf(mean / (sd / math.sqrt(n)), df=n - 1)), n


def spread_of(x: np.ndarray) -> float:
    """The standard deviation of a series (0 for fewer than two values)."""
    return float(np.asarray(x, float).std(ddof=1)) if len(x) > 1 else 0.0


def _scaled(x: np.ndarray, spread: float) -> np.ndarray:
    return x / spread if spread > 0 else np.zeros_like(x)


def block_bootstrap_interval(x: np.ndarray, block: int, level: float = 0.95,
                             draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A moving-block bootstrap interval of the sum of a per-session series (blocks of
    `block` sessions keep the dependence of overlapping returns); (nan, nan) on fewer
    than two blocks."""
    x = np.asarray(x, float)
    if len(x) < 2 * block:
        return math.nan, math.nan
    sums = x[_block_rows(len(x), block, draws, seed)].sum(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(sums, tail)), float(np.quantile(sums, 1 - tail))


def _block_rows(n: int, block: int, draws: int, seed: int) -> np.ndarray:
    """`draws` resamples of 0..n-1 in moving blocks of `block`, each n long."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - block + 1, size=(draws, math.ceil(n / block)))
    return (starts[:, :, None] + np.arange(block)).reshape(draws, -1)[:, :n]
