"""What the daily intelligence report judges: its input (`ReportData`, which
`store.report.gather` reads) and the checks it shows. `pages.report` draws the page.

The reliability diagram is judged out of sample where it can be: the calibration maps of
the newest snapshot that leaves at least `min_out_of_sample` decisions after its window
are applied to those later decisions only. Where none does, the page says the "after"
curve is in-sample (it is then optimistic by construction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl

from amc_learning.intelligence.calibration import apply_map, expected_calibration_error, reliability

BINS = 10


@dataclass(frozen=True)
class ModelParams:
    """A producer's scoring model and what was learned of its own parameters.

    declared: the producer's own (its declaration's table, or weights and threshold).
    live / proposed: the version live now, and the newest one in flight (None: none), each
      (version, params). notes: the fit's evidence of the proposed version (else the live
      one's): a points fit's per-tier notes (`points.propose`), or a weights fit's
      evidence. history: version, mode, as_of of the model's param set. arms: what trading
      made under each version its decisions name (as `ReportData.arms`)."""

    scoring_model: str
    name: str
    kind: str
    declared: Any
    live: tuple[int, Any] | None
    proposed: tuple[int, str, Any] | None
    notes: list[dict[str, Any]]
    evidence: dict[str, Any]
    read_by_producer: list[str]
    history: pl.DataFrame
    tables: int = 0
    arms: pl.DataFrame = field(default_factory=pl.DataFrame)


@dataclass(frozen=True)
class ReportData:
    """What the report shows, as read from the learning database as of `as_of`.

    decisions: session, decision_source, confidence, win — decisions whose horizon
      outcome was complete at as_of (`analysis.known_by`).
    calibration: the calibration_snapshots rows up to as_of (knots as [[x, y], ...]).
    patterns / failures / features / change_points: the newest pass's rows.
    index: session, close; regimes: session, trend, volatility, regime.
    params: params_history rows; cycles: learning_cycles rows (kind, as_of, ran_at, summary).
    arms: per params arm the trading engine decided under (arm, decisions, trades, marked,
      pnl_pct, first, last): what trading made under each version and the fallback.
    collection: per session, rows stored per table; dead_letters: reason, day, n.
    health: scalar counts (outcomes by type, backlog, totals).
    """

    as_of: date
    generated_at: datetime
    decisions: pl.DataFrame
    calibration: pl.DataFrame
    patterns: pl.DataFrame
    failures: pl.DataFrame
    features: pl.DataFrame
    change_points: pl.DataFrame
    index: pl.DataFrame
    regimes: pl.DataFrame
    params: pl.DataFrame
    cycles: pl.DataFrame
    collection: pl.DataFrame
    dead_letters: pl.DataFrame
    health: dict[str, Any]
    params_name: str = "default"
    #: the scoring model whose decisions the learning sections judge
    scoring_model: str = "native"
    #: False: the registry has no declaration of the scoring model (`service.models`)
    model_declared: bool = True
    min_out_of_sample: int = 100
    arms: pl.DataFrame = field(default_factory=pl.DataFrame)
    index_symbol: str = "^IXIC"
    #: the market-data bridge: its last sync's summary (`last_sync`, with `finished_at`)
    #: and the symbols waiting for bars (`waiting`: symbol, sessions, oldest, waiting_h)
    bars: dict[str, Any] = field(default_factory=dict)
    #: every declared scoring model with a param set of its own
    models: list[ModelParams] = field(default_factory=list)


@dataclass(frozen=True)
class Bin:
    """One reliability bin: mean stated probability, realised win rate, decisions."""

    predicted: float
    realised: float
    n: int


@dataclass(frozen=True)
class CalibrationCheck:
    """Raw vs calibrated reliability on one set of decisions."""

    snapshot_as_of: date
    window_end: date
    out_of_sample: bool
    n: int
    before: list[Bin]
    after: list[Bin]
    ece_before: tuple[float, float, float]  # estimate, 90% bootstrap low, high
    ece_after: tuple[float, float, float]


def _bins(prob: np.ndarray, won: np.ndarray) -> list[Bin]:
    table = reliability(prob, won, BINS)
    return [Bin(r["predicted"], r["realised"], r["n"]) for r in table.iter_rows(named=True)]


def _ece(prob: np.ndarray, won: np.ndarray, draws: int = 1000,
         seed: int = 0) -> tuple[float, float, float]:
    """ECE with a 90% bootstrap interval, drawn per bin so its cost does not grow with the
    number of decisions (a daily cycle of a million decisions writes this page).

    Each draw resamples the bin counts (multinomial), each bin's win count (binomial at its
    win rate) and its mean stated probability (normal, with the bin's spread): the
    resampling of decisions, summarised by what ECE depends on."""
    idx = np.minimum((prob * BINS).astype(int), BINS - 1)
    n_b = np.bincount(idx, minlength=BINS).astype(float)
    used = n_b > 0
    n_b = n_b[used]
    mean_p = np.bincount(idx, prob, minlength=BINS)[used] / n_b
    spread = np.sqrt(np.maximum(np.bincount(idx, prob**2, minlength=BINS)[used] / n_b
                                - mean_p**2, 0.0))
    rate = np.bincount(idx, won, minlength=BINS)[used] / n_b
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(prob), n_b / n_b.sum(), size=draws)
    safe = np.maximum(counts, 1)
    stated = mean_p + rng.standard_normal(counts.shape) * spread / np.sqrt(safe)
    realised = rng.binomial(counts, rate) / safe
    boot = (counts * np.abs(realised - stated)).sum(axis=1) / len(prob)
    low, high = np.quantile(boot, [0.05, 0.95])
    return expected_calibration_error(prob, won, BINS), float(low), float(high)


def calibration_check(decisions: pl.DataFrame, snapshots: pl.DataFrame,
                      min_out_of_sample: int = 100) -> CalibrationCheck | None:
    """Apply the per-source maps of a snapshot to decisions it was not fitted on, if any."""
    if decisions.is_empty() or snapshots.is_empty():
        return None
    maps = snapshots.filter(pl.col("grouping") == "decision_source")
    if maps.is_empty():
        return None
    ends = maps.select("as_of", "window_end").unique().sort("as_of", descending=True)
    chosen, test, out = ends.row(0), decisions, False
    for as_of, window_end in ends.iter_rows():
        later = decisions.filter(pl.col("session") > window_end)
        if len(later) >= min_out_of_sample:
            chosen, test, out = (as_of, window_end), later, True
            break
    if not out:
        test = decisions.filter(pl.col("session") <= chosen[1])
    if test.is_empty():
        return None
    knots = {g: k for g, k in maps.filter(pl.col("as_of") == chosen[0])
             .select("group_value", "knots").iter_rows()}
    raw = test["confidence"].to_numpy().astype(float).clip(0.0, 1.0)
    calibrated = raw.copy()
    sources = test["decision_source"].to_numpy()
    for group, pairs in knots.items():
        mask = sources == group
        if mask.any() and pairs:
            xs, ys = zip(*pairs, strict=True)
            calibrated[mask] = apply_map(xs, ys, raw[mask])
    won = test["win"].cast(pl.Float64).to_numpy()
    return CalibrationCheck(chosen[0], chosen[1], out, len(test), _bins(raw, won),
                            _bins(calibrated, won), _ece(raw, won), _ece(calibrated, won))


def spans(days: Sequence[date], labels: Sequence[str | None]) -> list[tuple[date, date, str]]:
    """Runs of equal consecutive labels as (first day, last day, label); None breaks a run."""
    spans: list[tuple[date, date, str]] = []
    for day, label in zip(days, labels, strict=True):
        if label is None:
            continue
        if spans and spans[-1][2] == label:
            spans[-1] = (spans[-1][0], day, label)
        else:
            spans.append((day, day, label))
    return spans
