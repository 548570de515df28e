"""Is a confidence score honest? Calibration maps, Brier score, ECE, reliability tables.

`fit_calibration` fits P(win | confidence):

* isotonic regression (scikit-learn, `increasing=True`) when there are at least
  `min_isotonic` decisions: non-parametric, assumes only that higher confidence should not
  mean a lower win rate;
* Platt scaling (a logistic regression on the logit of the confidence) below that, where
  isotonic steps would chase noise.

The result is a monotone piecewise-linear map, a list of (confidence, probability) knots,
that any consumer applies with one binary search (`apply_map`, numpy.interp). A map
fitted on one period is judged on a later one (`reliability` / `expected_calibration_error`
on held-out data): nothing is judged on the data it was fitted on.

`expected_calibration_error` is the bin-count-weighted mean |win rate − mean confidence|
over `bins` equal-width bins (Naeini et al. 2015); the Brier score is the mean squared
error of the probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from amc_learning.schemas.params import CalibrationKnot

_EPS = 1e-6


@dataclass(frozen=True)
class CalibrationMap:
    """Monotone piecewise-linear map from raw confidence to calibrated probability."""

    knots_x: tuple[float, ...]
    knots_y: tuple[float, ...]
    method: str
    n: int

    def apply(self, confidence: np.ndarray) -> np.ndarray:
        return apply_map(self.knots_x, self.knots_y, confidence)

    def as_knots(self, digits: int = 6) -> list[CalibrationKnot]:
        """The map as the params contract publishes it, each value rounded to `digits`."""
        return [CalibrationKnot(raw=float(round(x, digits)), calibrated=float(round(y, digits)))
                for x, y in zip(self.knots_x, self.knots_y, strict=True)]


def apply_map(
    knots_x: tuple[float, ...] | list[float],
    knots_y: tuple[float, ...] | list[float],
    confidence: np.ndarray,
) -> np.ndarray:
    """Interpolate between knots; flat beyond the ends."""
    return np.interp(np.asarray(confidence, float), knots_x, knots_y)


def calibrate(knots: Sequence[CalibrationKnot], confidence: np.ndarray) -> np.ndarray:
    """Confidence through a published map; unchanged where there is no map yet."""
    if not knots:
        return np.asarray(confidence)
    return apply_map([k.raw for k in knots], [k.calibrated for k in knots], confidence)


def fit_calibration(
    confidence: np.ndarray, won: np.ndarray, *, min_isotonic: int = 500, max_knots: int = 50
) -> CalibrationMap:
    """Fit the map on (confidence, won) pairs; see the module docstring for the method."""
    x = np.clip(np.asarray(confidence, float), 0.0, 1.0)
    y = np.asarray(won, float)
    if len(x) == 0:
        return CalibrationMap((0.0, 1.0), (0.0, 1.0), "identity", 0)
    if len(x) >= min_isotonic:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(x, y)
        kx, ky = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
        if len(kx) > max_knots:  # thin the steps; keep the ends and monotonicity
            keep = np.unique(np.linspace(0, len(kx) - 1, max_knots).round().astype(int))
            kx, ky = kx[keep], ky[keep]
        return CalibrationMap(tuple(map(float, kx)), tuple(map(float, ky)), "isotonic", len(x))
    logit = np.log(np.clip(x, _EPS, 1 - _EPS) / np.clip(1 - x, _EPS, 1))
    model = LogisticRegression(C=1.0)
    if len(np.unique(y)) < 2:
        rate = float(y.mean())
        return CalibrationMap((0.0, 1.0), (rate, rate), "constant", len(x))
    model.fit(logit.reshape(-1, 1), y)
    grid = np.linspace(0.0, 1.0, 21)
    g = np.log(np.clip(grid, _EPS, 1 - _EPS) / np.clip(1 - grid, _EPS, 1))
    probs = model.predict_proba(g.reshape(-1, 1))[:, 1]
    probs = (
        np.maximum.accumulate(probs)
        if model.coef_[0, 0] >= 0
        else np.full_like(probs, float(y.mean()))
    )
    return CalibrationMap(tuple(map(float, grid)), tuple(map(float, probs)), "platt", len(x))


def brier_score(prob: np.ndarray, won: np.ndarray) -> float:
    return float(np.mean((np.asarray(prob, float) - np.asarray(won, float)) ** 2))


def reliability(prob: np.ndarray, won: np.ndarray, bins: int = 10) -> pl.DataFrame:
    """Per equal-width bin: n, mean predicted probability, realised win rate."""
    p, y = np.asarray(prob, float), np.asarray(won, float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    frame = pl.DataFrame({"bin": idx, "p": p, "y": y})
    return (
        frame.group_by("bin")
        .agg(
            pl.len().alias("n"),
            pl.col("p").mean().alias("predicted"),
            pl.col("y").mean().alias("realised"),
        )
        .sort("bin")
        .with_columns((pl.col("bin") / bins).alias("bin_lower"))
    )


def expected_calibration_error(prob: np.ndarray, won: np.ndarray, bins: int = 10) -> float:
    table = reliability(prob, won, bins)
    counts = table["n"].to_numpy().astype(float)
    if not counts.sum():
        return float("nan")
    gap = np.abs(table["realised"].to_numpy() - table["predicted"].to_numpy())
    return float((gap * counts).sum() / counts.sum())


def calibration_report(
    frame: pl.DataFrame,
    *,
    by: str | None = None,
    confidence: str = "confidence",
    won: str = "win",
    min_isotonic: int = 500,
) -> pl.DataFrame:
    """One calibration per group of `by` (e.g. decision_source or regime), or overall.

    Columns: group, n, method, brier_raw, ece_raw, knots (list of [x, y]); the raw scores
    describe the confidence as given, on the rows the map was fitted on.
    """
    frame = frame.drop_nulls([confidence, won])  # a decision without a confidence: none to judge
    groups = frame.partition_by(by, as_dict=True) if by else {("all",): frame}
    rows = []
    for key, part in sorted(groups.items(), key=lambda kv: str(kv[0])):
        c, y = part[confidence].to_numpy(), part[won].to_numpy().astype(float)
        fitted = fit_calibration(c, y, min_isotonic=min_isotonic)
        rows.append(
            {
                "group": str(key[0]),
                "n": len(part),
                "method": fitted.method,
                "brier_raw": brier_score(c, y),
                "ece_raw": expected_calibration_error(c, y),
                "knots": [list(k) for k in zip(fitted.knots_x, fitted.knots_y, strict=True)],
            }
        )
    return pl.DataFrame(rows)
