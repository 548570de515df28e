"""Which features drive returns, how strongly, in which regime — and which stopped working.

* `daily_ic`: per session, the Spearman rank correlation of each feature with the forward
  return (features and returns ranked within the session, so a market-wide move changes
  nothing).
* `ic_summary`: per feature (and regime, when asked) the mean IC, its standard deviation,
  IR = mean / sd, and a t-statistic with Newey–West standard errors with lags = the return
  horizon: 7- and 30-day returns sampled daily overlap, so consecutive ICs are correlated
  and a plain t-test overstates significance by about √horizon.
* `quantile_returns`: mean forward return per within-session quantile of a feature.
* `walk_forward_importance`: permutation importance (scikit-learn) of a histogram gradient-
  boosting model under purged walk-forward splits — each fold trains on sessions before
  the test block, minus a purge gap of `horizon` sessions whose outcomes overlap the test
  block (López de Prado 2018, ch. 7), and is scored only on the later block. Run it on a
  regime's rows for regime-conditional importance.
* `detect_regime_shifts`: features whose mean IC differs between two regimes (or two
  periods); z = difference of means over the Newey–West standard errors, BH q-values.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy.stats import norm
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance
from threadpoolctl import threadpool_limits

from amc_learning.intelligence.stats import benjamini_hochberg, newey_west_t


def daily_ic(frame: pl.DataFrame, features: list[str], ret: str) -> pl.DataFrame:
    """Long frame: session, regime (if present), feature, ic."""
    keys = ["session", "regime"] if "regime" in frame.columns else ["session"]
    data = frame.drop_nulls(ret).select(*keys, ret, *features)
    ranked = data.with_columns(pl.col(ret, *features).rank().over("session"))
    wide = ranked.group_by(keys).agg(pl.corr(f, ret).alias(f) for f in features).sort("session")
    return wide.unpivot(index=keys, on=features, variable_name="feature", value_name="ic")


def _mean_nw_se(x: np.ndarray, lags: int) -> tuple[float, float]:
    x = x[~np.isnan(x)]
    if len(x) < 3:
        return math.nan, math.nan
    t = newey_west_t(x, lags)
    mean = float(x.mean())
    return mean, (abs(mean / t) if t and not math.isnan(t) and mean else math.nan)


def ic_summary(ic: pl.DataFrame, *, horizon: int, by: list[str] | None = None) -> pl.DataFrame:
    """Mean IC, sd, IR and the Newey–West t per feature (and per `by` columns)."""
    groups = ["feature", *(by or [])]
    rows = []
    for key, part in ic.sort("session").partition_by(groups, as_dict=True).items():
        x = part["ic"].drop_nulls().to_numpy()
        sd = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
        rows.append(
            {
                **dict(zip(groups, key, strict=True)),
                "sessions": len(x),
                "mean_ic": float(np.mean(x)) if len(x) else math.nan,
                "ic_sd": sd,
                "ir": float(np.mean(x)) / sd if sd else math.nan,
                "t_nw": newey_west_t(x, lags=horizon),
            }
        )
    return pl.DataFrame(rows).sort(groups)


def quantile_returns(
    frame: pl.DataFrame, feature: str, ret: str, quantiles: int = 5
) -> pl.DataFrame:
    data = frame.drop_nulls(ret).with_columns(
        ((pl.col(feature).rank().over("session") - 1) * quantiles / pl.len().over("session"))
        .floor()
        .cast(pl.Int32)
        .alias("quantile")
    )
    return (
        data.group_by("quantile")
        .agg(pl.len().alias("n"), pl.col(ret).mean().alias("mean_return"))
        .sort("quantile")
        .with_columns(pl.col("quantile") + 1)
    )


def walk_forward_importance(
    frame: pl.DataFrame,
    features: list[str],
    ret: str,
    *,
    horizon: int,
    folds: int = 3,
    max_train: int = 200_000,
    repeats: int = 3,
    seed: int = 0,
) -> pl.DataFrame:
    """Mean permutation importance per feature over purged walk-forward folds."""
    data = frame.drop_nulls(ret).sort("session")
    sessions = data["session"].unique().sort().to_list()
    bounds = np.linspace(0, len(sessions), folds + 2).round().astype(int)
    rng = np.random.default_rng(seed)
    scores: dict[str, list[float]] = {f: [] for f in features}
    for k in range(1, folds + 1):
        test_from, test_to = sessions[bounds[k]], sessions[min(bounds[k + 1], len(sessions)) - 1]
        purge_from = sessions[max(bounds[k] - horizon, 0)]
        train = data.filter(pl.col("session") < purge_from)
        test = data.filter(pl.col("session").is_between(test_from, test_to))
        if len(train) < 100 or len(test) < 100:
            continue
        if len(train) > max_train:
            train = train[np.sort(rng.choice(len(train), max_train, replace=False))]
        model = HistGradientBoostingRegressor(
            max_iter=100, learning_rate=0.1, max_leaf_nodes=15, random_state=seed
        )
        # One OpenMP thread: with more, the model's binning runs joblib threads that race
        # on the process's warning filters (each resets them in a catch_warnings block),
        # which can leave them empty and print scikit-learn warnings at every later fit.
        with threadpool_limits(limits=1, user_api="openmp"):
            model.fit(train.select(features).to_numpy(), train[ret].to_numpy())
            result = permutation_importance(
                model,
                test.select(features).to_numpy(),
                test[ret].to_numpy(),
                n_repeats=repeats,
                random_state=seed,
                scoring="r2",
            )
        for f, v in zip(features, result.importances_mean, strict=True):
            scores[f].append(float(v))
    return pl.DataFrame(
        {
            "feature": features,
            "importance": [float(np.mean(v)) if v else math.nan for v in scores.values()],
            "folds": [len(v) for v in scores.values()],
        }
    ).sort("importance", descending=True)


def detect_regime_shifts(
    ic: pl.DataFrame, *, horizon: int, column: str = "regime", q_max: float = 0.1
) -> pl.DataFrame:
    """Features whose mean IC differs between the values of `column` (two of them)."""
    rows = []
    for (feature,), part in ic.sort("session").partition_by("feature", as_dict=True).items():
        groups = part.partition_by(column, as_dict=True)
        if len(groups) != 2:
            continue
        (a_key, a), (b_key, b) = sorted(groups.items(), key=lambda kv: str(kv[0]))
        ma, sa = _mean_nw_se(a["ic"].drop_nulls().to_numpy(), horizon)
        mb, sb = _mean_nw_se(b["ic"].drop_nulls().to_numpy(), horizon)
        z = (ma - mb) / math.sqrt(sa**2 + sb**2) if sa and sb else math.nan
        rows.append(
            {
                "feature": feature,
                "from": str(a_key[0]),
                "to": str(b_key[0]),
                "ic_from": ma,
                "ic_to": mb,
                "z": z,
                "p_value": float(2 * norm.sf(abs(z))) if not math.isnan(z) else 1.0,
            }
        )
    out = pl.DataFrame(rows)
    if out.is_empty():
        return out
    out = out.with_columns(pl.Series("q_value", benjamini_hochberg(out["p_value"].to_numpy())))
    return out.with_columns((pl.col("q_value") < q_max).alias("shifted")).sort("q_value")
