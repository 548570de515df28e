"""What a trading rule earns, and how a choice is judged out of sample.

`Book` holds the candidates trading would see as arrays, so that the per-session P&L of
any (discovery threshold, buy, sell) rule is one `bincount` away. The score is the
weighted composite under `AdaptiveParams`, under `TieredParams` the net points of each
row's tiers (columns `tier:<factor>`), under `ComponentParams` the weighted sum of the
model's components (columns `component:<name>`, on the model's scale). A scoring model's
rule buys what clears its threshold. Every rule trades one book: a session's trades
share the same slice of equity, so a session earns the mean of its trades (decision 016).
`split_for_validation` and `paired_gain` are how the adaptive engine judges a choice on
sessions it was not fitted on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.stats import t as student_t

from amc_learning.intelligence.calibration import calibrate
from amc_learning.intelligence.horizon import returns
from amc_learning.schemas.models import COMPONENT, TIER
from amc_learning.schemas.params import AdaptiveParams, ComponentParams, TieredParams

Params = AdaptiveParams | TieredParams | ComponentParams
#: points a row earns outside its tiers (AMC-Trader's bonuses), kept as they were scored
BONUS = "bonus_points"


def composite(weights: dict[str, float]) -> pl.Expr:
    """The weighted discovery score of each row."""
    return sum((pl.col(c) * w for c, w in weights.items()), pl.lit(0.0))


def net_points(params: TieredParams, columns: list[str]) -> pl.Expr:
    """The net score of each row under a points table: its tiers' points (none for a
    factor missing or in no tier), plus its bonus points where the frame has them."""
    terms = [pl.col(TIER.format(f)).replace_strict(tiers, default=0, return_dtype=pl.Int64)
             for f, tiers in params.tables.items() if TIER.format(f) in columns]
    if BONUS in columns:
        terms.append(pl.col(BONUS).fill_null(0))
    return sum(terms, pl.lit(0)).cast(pl.Float64)


def score(data: pl.DataFrame, params: Params) -> np.ndarray:
    """Each row's discovery score under `params`, on the params' own scale."""
    if isinstance(params, TieredParams):
        expr = net_points(params, data.columns)
    elif isinstance(params, ComponentParams):
        expr = composite({COMPONENT.format(c): w for c, w in params.weights.items()})
    else:
        expr = composite(weights_of(params))
    return data.select(expr).to_series().to_numpy()


def weights_of(params: AdaptiveParams) -> dict[str, float]:
    return params.scoring_weights.model_dump()


@dataclass(frozen=True)
class Rule:
    discovery_threshold: float
    buy_threshold: float
    sell_threshold: float

    @classmethod
    def of(cls, params: Params) -> Rule:
        if isinstance(params, TieredParams):  # a scanner's pick is bought: no thesis bar
            return cls(params.entry_threshold, -math.inf, -math.inf)
        if isinstance(params, ComponentParams):
            return cls(params.threshold, -math.inf, -math.inf)
        return cls(params.discovery_threshold, params.buy_threshold, params.sell_threshold)


@dataclass(frozen=True)
class Book:
    """The candidates trading would see, as arrays."""

    session: np.ndarray  # the row's session, as 0..sessions-1 in time order
    sessions: int
    score: np.ndarray  # weighted composite discovery score
    confidence: np.ndarray  # calibrated thesis confidence
    ret: np.ndarray  # forward return over the horizon

    @classmethod
    def of(cls, data: pl.DataFrame, params: Params, horizon: int) -> Book:
        """The book under `params`: their score, and the confidence through their
        calibration map (a tiered model's rule reads no confidence)."""
        ret = returns(horizon)
        data = data.drop_nulls(ret).sort("session")
        codes = data["session"].rank("dense").cast(pl.Int64).to_numpy() - 1
        confidence = (calibrate(params.calibration, data["confidence"].to_numpy())
                      if isinstance(params, AdaptiveParams) else np.zeros(len(data)))
        return cls(
            session=codes,
            sessions=int(codes.max()) + 1 if len(codes) else 0,
            score=score(data, params),
            confidence=confidence,
            ret=data[ret].to_numpy(),
        )

    def side(self, rule: Rule) -> np.ndarray:
        """+1 buy, -1 sell, 0 no trade for each row under `rule`."""
        passed = self.score >= rule.discovery_threshold
        buy = self.confidence >= rule.buy_threshold
        sell = self.confidence <= rule.sell_threshold
        return (buy.astype(float) - sell.astype(float)) * passed

    def pnl(self, rule: Rule) -> np.ndarray:
        """What trading earns per session: the mean of its trades (0 without one)."""
        return self.pnl_of(self.side(rule))

    def pnl_of(self, side: np.ndarray) -> np.ndarray:
        """`pnl` for sides already computed (`side`)."""
        earned = np.bincount(self.session, weights=side * self.ret, minlength=self.sessions)
        trades = np.bincount(self.session, weights=np.abs(side), minlength=self.sessions)
        return earned / np.maximum(trades, 1.0)


def split_for_validation(train: pl.DataFrame,
                         horizon: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(fit, validate): the first 2/3 of the sessions, then the rest after a purge of the
    horizon, so a choice made on `fit` is judged on outcomes it never saw."""
    sessions = train["session"].unique().sort()
    if len(sessions) < 3 * horizon:
        return train, train.clear()
    cut = int(len(sessions) * 2 / 3)
    fit = train.filter(pl.col("session") < sessions[cut])
    validate = train.filter(pl.col("session") >= sessions[min(cut + horizon, len(sessions) - 1)])
    return fit, validate


def paired_gain(diff: np.ndarray, horizon: int,
                min_z: float) -> tuple[float | None, float | None]:
    """Mean of a per-session difference (new - current) and a standard error scaled so that
    "gain > min_z * se" is a one-sided Student-t test at the level min_z has for a normal
    (2 -> 2.3 %). Only every horizon-th session is used: their outcomes do not overlap, so
    the errors are independent enough for a plain standard error (Newey-West is unreliable
    on so few sessions)."""
    diff = diff[::horizon]
    if len(diff) < 4:
        return None, None
    mean, se = float(np.mean(diff)), float(np.std(diff, ddof=1) / math.sqrt(len(diff)))
    level = float(student_t.sf(min_z, df=10_000))
    return mean, se * float(student_t.isf(level, df=len(diff) - 1)) / min_z


def sharpe(pnl: np.ndarray) -> float:
    sd = float(np.std(pnl, ddof=1)) if len(pnl) > 1 else 0.0
    return float(np.mean(pnl)) / sd if sd > 0 else -math.inf
