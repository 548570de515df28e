"""Which patterns work: pattern signatures, their performance, and failure modes.

A *signature* is the tuple (feature bins, regime, decision type). Feature bins are
quantile bins whose edges are learned on a training window (`learn_bins`) and stored with
the result, so "crowding=q3" means the same thing tomorrow as today.

Per pattern (`pattern_performance`): n, wins, win rate with a Wilson 95 % interval, a
beta-binomial shrunk win rate (few trials are pulled towards the pool), mean and median
return, expectancy (the mean return), profit factor (gains / |losses|), max return, and,
where the frame has them, average holding period and worst adverse excursion.

Significance against the baseline: returns of overlapping horizons sampled daily are not
independent, so a per-row test would overstate significance. Each pattern is reduced to
one number per session — its mean return minus the mean of all decisions of the same
type that session (the baseline; this also removes the market's move, which a BUY and a
SELL feel with opposite signs) — and that series' mean is tested with a
Newey–West t-statistic (lags = the return horizon). Two-sided p-values are turned into
Benjamini–Hochberg q-values across all patterns. Patterns with fewer than `min_n`
decisions or `min_sessions` sessions get no p-value (q = 1): no confident claim from a
small sample.

`identify_failure_modes` names three kinds: systematic losers (significantly negative
excess and negative expectancy), overconfidence (per decision source and confidence bin,
the realised win rate significantly below the confidence; see `overconfidence`), and
regime mismatch (a decision type that earns in one regime but
loses significantly in another).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.stats import norm

from amc_learning.intelligence import horizon as h
from amc_learning.intelligence.stats import (
    benjamini_hochberg,
    beta_binomial_shrink,
    newey_west_t,
    wilson_interval,
)


@dataclass(frozen=True)
class Bins:
    """Quantile edges per feature, learned on a training window."""

    edges: dict[str, tuple[float, ...]]

    def label(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add `signature`: the bins of each feature, then regime and decision type."""
        parts = []
        for name, cuts in self.edges.items():
            idx = np.searchsorted(np.asarray(cuts), frame[name].to_numpy(), side="right") + 1
            parts.append(pl.Series(np.char.add(f"{name}=q", idx.astype(str))))
        pieces = [*parts, frame["regime"], frame["decision_type"]]
        return frame.with_columns(pl.concat_str(pieces, separator="|").alias("signature"))


def learn_bins(train: pl.DataFrame, features: list[str], bins: int = 3) -> Bins:
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    return Bins(
        {
            f: tuple(float(v) for v in np.quantile(train[f].drop_nulls().to_numpy(), qs))
            for f in features
        }
    )


def pattern_performance(
    frame: pl.DataFrame,
    bins: Bins,
    *,
    horizon: int = h.DEFAULT,
    ret: str | None = None,
    min_n: int = 30,
    min_sessions: int = 20,
) -> pl.DataFrame:
    """One row per signature (see the module docstring for every column); `ret` defaults
    to the side-adjusted return over `horizon`."""
    ret = ret or h.side_returns(horizon)
    data = bins.label(frame.drop_nulls(ret))
    data = data.with_columns(
        (pl.col(ret) - pl.col(ret).mean().over("session", "decision_type")).alias("_excess")
    )
    agg = [
        pl.col("regime").first(),
        pl.col("decision_type").first(),
        pl.len().alias("n"),
        (pl.col(ret) > 0).sum().alias("wins"),
        pl.col(ret).mean().alias("expectancy"),
        pl.col(ret).median().alias("median_return"),
        pl.col(ret).max().alias("max_return"),
        pl.col(ret).filter(pl.col(ret) > 0).sum().alias("_gains"),
        pl.col(ret).filter(pl.col(ret) < 0).sum().abs().alias("_losses"),
        pl.col("session").n_unique().alias("sessions"),
    ]
    if "confidence" in data.columns:
        agg.append(pl.col("confidence").mean().alias("mean_confidence"))
    for optional in ("days_held", "max_adverse_excursion"):
        if optional in data.columns:
            agg.append(
                (
                    pl.col(optional).mean() if optional == "days_held" else pl.col(optional).min()
                ).alias(optional)
            )
    table = data.group_by("signature").agg(agg).sort("signature")
    daily = (
        data.group_by("signature", "session")
        .agg(pl.col("_excess").mean())
        .sort("signature", "session")
    )
    t_stats = {
        key[0]: newey_west_t(part["_excess"].to_numpy(), lags=horizon)
        for key, part in daily.partition_by("signature", as_dict=True).items()
    }
    n, wins = table["n"].to_numpy(), table["wins"].to_numpy()
    lower, upper = wilson_interval(wins, n)
    t = np.array([t_stats[s] for s in table["signature"]])
    enough = (n >= min_n) & (table["sessions"].to_numpy() >= min_sessions) & ~np.isnan(t)
    p = np.where(enough, 2 * norm.sf(np.abs(np.nan_to_num(t))), 1.0)
    return table.with_columns(
        pl.Series("win_rate", wins / np.maximum(n, 1)),
        pl.Series("win_rate_lower", lower),
        pl.Series("win_rate_upper", upper),
        pl.Series("win_rate_shrunk", beta_binomial_shrink(wins, n)),
        (pl.col("_gains") / pl.col("_losses")).alias("profit_factor"),
        pl.Series("excess_t", t),
        pl.Series("p_value", p),
        pl.Series("q_value", benjamini_hochberg(p)),
    ).drop("_gains", "_losses")


def analyze_discovery_patterns(
    candidates: pl.DataFrame, bins: Bins, *, horizon: int = h.DEFAULT
) -> pl.DataFrame:
    """Pattern performance of discovery candidates, acted on or not (no survivorship bias).

    Candidates are measured as if bought (the raw forward return); their "decision
    type" is whether they passed the discovery threshold (PASSED / REJECTED), so a pattern
    of rejected candidates that beats its passed peers shows up with a low q-value.
    """
    data = candidates.with_columns(
        pl.when(pl.col("passed"))
        .then(pl.lit("PASSED"))
        .otherwise(pl.lit("REJECTED"))
        .alias("decision_type")
    )
    return pattern_performance(data, bins, horizon=horizon, ret=h.returns(horizon))


def analyze_thesis_accuracy(
    decisions: pl.DataFrame,
    by: tuple[str, ...] = ("decision_source", "decision_type", "regime"),
) -> pl.DataFrame:
    """Win rate (Wilson interval), mean confidence and their gap per group of decisions,
    and the mean thesis accuracy score where the frame has one."""
    agg = [
        pl.len().alias("n"),
        pl.col("win").sum().alias("wins"),
        pl.col("confidence").mean().alias("mean_confidence"),
    ]
    if "thesis_accuracy_score" in decisions.columns:
        agg.append(pl.col("thesis_accuracy_score").mean().alias("mean_thesis_accuracy"))
    table = decisions.drop_nulls("win").group_by(list(by)).agg(agg).sort(list(by))
    n, wins = table["n"].to_numpy(), table["wins"].to_numpy()
    lower, upper = wilson_interval(wins, n)
    return table.with_columns(
        pl.Series("win_rate", wins / np.maximum(n, 1)),
        pl.Series("win_rate_lower", lower),
        pl.Series("win_rate_upper", upper),
    ).with_columns((pl.col("mean_confidence") - pl.col("win_rate")).alias("confidence_gap"))


def overconfidence(
    frame: pl.DataFrame,
    *,
    by: str = "decision_source",
    bins: int = 10,
    horizon: int = h.DEFAULT,
    min_n: int = 30,
    q_max: float = 0.1,
) -> pl.DataFrame:
    """Confidence bins whose realised win rate is significantly below the confidence.

    Per (group, confidence bin), the gap win − confidence is averaged per session (all
    symbols share a session's market move, so rows of one session are not independent),
    and the mean of that series is tested with a Newey–West t (lags = horizon, for the
    overlapping outcomes); one-sided p-values, BH q-values across all bins.
    """
    data = frame.drop_nulls(["win", "confidence"]).with_columns(
        (pl.col("confidence") * bins).floor().clip(0, bins - 1).alias("_bin"),
        (pl.col("win").cast(pl.Float64) - pl.col("confidence")).alias("_gap"),
    )
    table = (
        data.group_by(by, "_bin")
        .agg(
            pl.len().alias("n"),
            pl.col("win").mean().alias("win_rate"),
            pl.col("confidence").mean().alias("mean_confidence"),
        )
        .sort(by, "_bin")
    )
    daily = data.group_by(by, "_bin", "session").agg(pl.col("_gap").mean())
    t = {
        key: newey_west_t(part.sort("session")["_gap"].to_numpy(), lags=horizon)
        for key, part in daily.partition_by(by, "_bin", as_dict=True).items()
    }
    keys = list(zip(table[by], table["_bin"], strict=True))
    stat = np.array([t[k] for k in keys])
    ok = (table["n"].to_numpy() >= min_n) & ~np.isnan(stat)
    p = np.where(ok, norm.cdf(np.nan_to_num(stat)), 1.0)
    return (
        table.with_columns(
            pl.Series("gap_t", stat),
            pl.Series("q_value", benjamini_hochberg(p)),
            (pl.col("_bin") / bins).round(2).alias("confidence_from"),
        )
        .filter(pl.col("q_value") < q_max)
        .drop("_bin")
    )


def identify_failure_modes(
    patterns: pl.DataFrame, frame: pl.DataFrame, *, q_max: float = 0.1,
    horizon: int = h.DEFAULT,
) -> pl.DataFrame:
    """Failure modes in a `pattern_performance` table and its decision frame."""
    cols = ["signature", "kind", "n", "detail"]
    losers = patterns.filter(
        (pl.col("q_value") < q_max) & (pl.col("expectancy") < 0) & (pl.col("excess_t") < 0)
    ).select(
        "signature",
        pl.lit("systematic_loser").alias("kind"),
        "n",
        pl.format(
            "expectancy {}, q {}", pl.col("expectancy").round(4), pl.col("q_value").round(4)
        ).alias("detail"),
    )
    over = overconfidence(frame, q_max=q_max, horizon=horizon).select(
        pl.format("{}|confidence>={}", pl.col("decision_source"), pl.col("confidence_from")).alias(
            "signature"
        ),
        pl.lit("overconfidence").alias("kind"),
        "n",
        pl.format(
            "confidence {} vs win rate {}",
            pl.col("mean_confidence").round(3),
            pl.col("win_rate").round(3),
        ).alias("detail"),
    )
    earns = patterns.group_by("decision_type").agg(
        ((pl.col("expectancy") > 0) & (pl.col("q_value") < q_max)).any().alias("_earns")
    )
    mismatch = (
        patterns.join(earns, on="decision_type")
        .filter(pl.col("_earns") & (pl.col("q_value") < q_max) & (pl.col("expectancy") < 0))
        .select(
            "signature",
            pl.lit("regime_mismatch").alias("kind"),
            "n",
            pl.format(
                "expectancy {} where the same type earns elsewhere", pl.col("expectancy").round(4)
            ).alias("detail"),
        )
    )
    return pl.concat([losers.select(cols), over.select(cols), mismatch.select(cols)]).sort(
        "kind", "signature"
    )
