"""One learning pass as of a date: what was knowable then, and everything learned from it.

`known_by` is the only gate between the data and the analyzers: a decision of session s
enters an analysis as of day t only once its `horizon`-session outcome is complete
(s is at least `horizon` sessions before t), and a longer-horizon return that was not
yet complete at t is blanked. Regime labels and change detection are causal by
construction. So every result as of t is identical whether computed on data up to t or
on data up to t + 100 sessions (tested).

`analyze` runs every analyzer and stamps each result with the as-of date and the window
of sessions it saw, so a stored row says what it was computed on and can be recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from amc_learning.intelligence import horizon as h
from amc_learning.intelligence.attribution import (
    daily_ic,
    detect_regime_shifts,
    ic_summary,
    walk_forward_importance,
)
from amc_learning.intelligence.calibration import calibration_report
from amc_learning.intelligence.patterns import (
    identify_failure_modes,
    learn_bins,
    pattern_performance,
)
from amc_learning.intelligence.regimes import calibrate_cusum, label_regimes

#: The features whose bins make a pattern's signature, beside the decision source.
SIGNATURE = ("catalyst_strength", "relative_volume")


@dataclass(frozen=True)
class AnalysisConfig:
    features: tuple[str, ...]
    signature_features: tuple[str, ...]
    horizon: int = h.DEFAULT
    bins: int = 3
    #: Bins are learned on this leading share of the window's sessions.
    bin_training_share: float = 0.5
    q_max: float = 0.1
    calibration_groups: tuple[str, ...] = ("decision_source", "regime")
    change_false_alarm_rate: float = 0.05
    change_warmup: int = 60
    #: The strategy's daily streams are autocorrelated (positions and signals persist).
    change_lags: int = 5


@dataclass(frozen=True)
class Analysis:
    as_of: date
    window: tuple[date, date]
    patterns: pl.DataFrame
    failure_modes: pl.DataFrame
    calibration: pl.DataFrame
    feature_ic: pl.DataFrame
    importance: pl.DataFrame
    regime_shifts: pl.DataFrame
    change_points: pl.DataFrame
    regimes: pl.DataFrame
    definitions: dict[str, object] = field(default_factory=dict)
    #: the scoring model whose decisions the pass read (decision 007)
    scoring_model: str = "native"


def known_by(frame: pl.DataFrame, as_of: date, horizon: int) -> pl.DataFrame:
    """Rows whose `horizon` outcome was complete at `as_of`; later returns blanked.

    A row old enough whose `horizon` return is still missing (its tracking stopped, e.g.
    the tracker's state was lost) is left out: it has no outcome to learn from."""
    sessions = frame.filter(pl.col("session") <= as_of)["session"].unique().sort()
    if len(sessions) <= horizon:
        return frame.clear()
    position = {s: i for i, s in enumerate(sessions.to_list())}
    last = len(sessions) - 1
    data = frame.filter(pl.col("session") <= sessions[last - horizon])
    if h.returns(horizon) in data.columns:
        data = data.filter(pl.col(h.returns(horizon)).is_not_null())
    age = last - data["session"].replace_strict(position, return_dtype=pl.Int64)
    blanks = []
    for name in data.columns:
        sessions_ahead = h.length(name)
        if sessions_ahead is not None and sessions_ahead > horizon:
            blanks.append(pl.when(age >= sessions_ahead).then(pl.col(name)).otherwise(None)
                          .alias(name))
    return data.with_columns(blanks) if blanks else data


def analyze(
    decisions: pl.DataFrame, index: pl.DataFrame, as_of: date, cfg: AnalysisConfig
) -> Analysis:
    """Every analyzer on what was known at `as_of` (see the module docstring)."""
    regimes = label_regimes(index.filter(pl.col("session") <= as_of))
    data = known_by(decisions, as_of, cfg.horizon)
    if "regime" not in data.columns:
        data = data.join(
            regimes.select("session", pl.col("trend").fill_null("unknown").alias("regime")),
            on="session",
            how="left",
        ).with_columns(pl.col("regime").fill_null("unknown"))
    sessions = data["session"].unique().sort()
    window = (sessions[0], sessions[-1]) if len(sessions) else (as_of, as_of)
    cut = (
        sessions[max(int(len(sessions) * cfg.bin_training_share) - 1, 0)]
        if len(sessions)
        else as_of
    )
    bins = learn_bins(data.filter(pl.col("session") <= cut), list(cfg.signature_features), cfg.bins)
    patterns = pattern_performance(data, bins, horizon=cfg.horizon)
    failures = identify_failure_modes(patterns, data, q_max=cfg.q_max, horizon=cfg.horizon)
    calibration = pl.concat(
        [
            calibration_report(data, by=group).with_columns(pl.lit(group).alias("grouping"))
            for group in cfg.calibration_groups
        ]
    )
    ic = daily_ic(data, list(cfg.features), h.returns(cfg.horizon))
    return Analysis(
        as_of=as_of,
        window=window,
        patterns=_stable(patterns),
        failure_modes=failures,
        calibration=_stable(calibration),
        feature_ic=_stable(ic_summary(ic, horizon=cfg.horizon, by=["regime"])),
        importance=_stable(_importance(data, cfg)),
        regime_shifts=_stable(detect_regime_shifts(ic, horizon=cfg.horizon, q_max=cfg.q_max)),
        regimes=regimes,
        change_points=change_points(data, h.side_returns(cfg.horizon), cfg),
        definitions={
            "bins": {k: list(v) for k, v in bins.edges.items()},
            "bins_learned_until": str(cut),
            "horizon": cfg.horizon,
        },
    )


def change_points(data: pl.DataFrame, ret: str, cfg: AnalysisConfig) -> pl.DataFrame:
    """CUSUM on the strategy's daily mean return and hit rate, watching for a drop.

    The detector's calibration assumes independent observations, so the streams use the
    1-session return where the frame has one (`side_return_1d`), else every `horizon`-th
    session of `ret` (non-overlapping). The threshold is calibrated for the stream's length
    at `cfg.change_false_alarm_rate`.
    """
    step = 1
    if "side_return_1d" in data.columns:
        ret = "side_return_1d"
    else:
        sessions = data["session"].unique().sort()
        data = data.filter(pl.col("session").is_in(sessions.gather_every(cfg.horizon).implode()))
        step = cfg.horizon
    daily = (
        data.drop_nulls(ret)
        .group_by("session")
        .agg(pl.col(ret).mean().alias("mean_return"), (pl.col(ret) > 0).mean().alias("hit_rate"))
        .sort("session")
    )
    warmup = cfg.change_warmup
    rows = []
    if len(daily) > 2 * warmup:
        detector = calibrate_cusum(
            len(daily), cfg.change_false_alarm_rate, warmup=warmup, lags=cfg.change_lags
        )
        for stream in ("mean_return", "hit_rate"):
            alarm = detector.first_alarm(daily[stream].to_numpy())
            rows.append(
                {
                    "stream": stream,
                    "every_sessions": step,
                    "threshold": round(detector.threshold, 10),
                    "alarm_session": daily["session"][alarm] if alarm is not None else None,
                }
            )
    schema = {
        "stream": pl.String,
        "every_sessions": pl.Int64,
        "threshold": pl.Float64,
        "alarm_session": pl.Date,
    }
    return pl.DataFrame(rows, schema=schema)


def _importance(data: pl.DataFrame, cfg: AnalysisConfig) -> pl.DataFrame:
    """Walk-forward permutation importance, per regime (regime-conditional importance)."""
    parts = [
        walk_forward_importance(
            part, list(cfg.features), h.returns(cfg.horizon), horizon=cfg.horizon
        ).with_columns(pl.lit(str(key[0])).alias("regime"))
        for key, part in sorted(data.partition_by("regime", as_dict=True).items())
        if part["session"].n_unique() > 4 * cfg.horizon
    ]
    return pl.concat(parts) if parts else pl.DataFrame()


def _stable(frame: pl.DataFrame) -> pl.DataFrame:
    """Round floats to 10 decimals: polars' multi-threaded sums differ in the last bits
    from run to run, and stored results must be reproducible from the same inputs."""
    return frame.with_columns(pl.col(pl.Float64).round(10))
