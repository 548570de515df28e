"""The planted-truth experiment: does trading with adaptive params beat static defaults?

Two years of simulated candidates (`simulator.research.simulate_candidates`). The
learner runs all along: every 21 sessions from a quarter in, it refits on every decision
whose 7-session outcome was complete by then (a purge of the horizon: no outcome leaks
into the fit that is judged on it), signs the new version and offers it to a
`ParamsReader` — the same validation a trading engine applies (signature, bounds,
versions). Only the second year is judged: there the adaptive arm trades each 21
sessions with what the reader returns; the static arm always trades the seed's defaults.

Measured on the judged year: expectancy per trade, an annualised Sharpe ratio of the
per-session P&L (positions sized by each arm's own limit), and the ECE of the
confidence each arm acted on, against whether the price went up. `pnl_gap` is the
adaptive arm's mean per-session P&L minus the static arm's, with its standard error: on
pure noise it must not be negative by more than noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from amc_learning.intelligence.adaptive import adapt
from amc_learning.intelligence.book import net_points
from amc_learning.intelligence.calibration import expected_calibration_error
from amc_learning.intelligence.cycle import explain
from amc_learning.intelligence.points import PointsGuardrails, fit_points
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.intelligence.stats import as_float, block_bootstrap_interval
from amc_learning.intelligence.walk import walk
from amc_learning.schemas.params import FALLBACK_PARAMS, ParamsPublished, TieredParams
from amc_learning.schemas.signing import Signer, Verifier, new_private_key
from amc_learning.simulator.research import (
    HORIZONS,
    ExperimentConfig,
    simulate_candidates,
    trade,
)
from amc_learning.simulator.tiered import PLANTED, TieredConfig, simulate_tiered
from amc_learning.simulator.tiered import model as tiered_model
from amc_learning.streams.params import ParamsReader, Record

HORIZON = HORIZONS[1]  # the simulated world's: what the adaptive engine judges by
REFIT_EVERY = 21
_SIGNER = Signer(new_private_key())


def _pnl(trades: pl.DataFrame, sessions: list[int]) -> np.ndarray:
    """P&L per judged session, positions sized by the arm's own limit (0 without trades)."""
    pnl = trades.group_by("session_index").agg(
        (pl.col("trade_return") * pl.col("size_pct") / 100).sum().alias("pnl")
    )
    daily = dict(zip(pnl["session_index"], pnl["pnl"], strict=True))
    return np.array([daily.get(s, 0.0) for s in sessions])


def _metrics(trades: pl.DataFrame, sessions: list[int]) -> dict[str, Any]:
    """expectancy, sharpe, ece and trades; None where there were no trades to measure."""
    if trades.is_empty():
        return {"trades": 0, "expectancy": None, "sharpe": None, "ece": None}
    series = _pnl(trades, sessions)
    sd = series.std(ddof=1)
    up = (trades["return_7d"].to_numpy() > 0).astype(float)
    return {
        "trades": len(trades),
        "expectancy": round(as_float(trades["trade_return"].mean()), 6),
        "sharpe": round(float(series.mean() / sd * math.sqrt(252)), 4) if sd > 0 else None,
        "ece": round(expected_calibration_error(trades["used_confidence"].to_numpy(), up), 6),
    }


def _gap(adaptive: pl.DataFrame, static: pl.DataFrame, sessions: list[int]) -> dict[str, float]:
    """Mean per-session P&L of adaptive minus static, with its standard error from every
    HORIZON-th session (their 7-session outcomes do not overlap)."""
    diff = (_pnl(adaptive, sessions) - _pnl(static, sessions))[::HORIZON]
    return {
        "mean": round(float(diff.mean()), 8),
        "se": round(float(diff.std(ddof=1) / math.sqrt(len(diff))), 8),
    }


def run_experiment(
    seed: int = 0, noise_only: bool = False, say: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    cfg = ExperimentConfig(seed=seed, noise_only=noise_only)
    frame = simulate_candidates(cfg)
    start = 252
    clock_now = [datetime(2017, 1, 1, tzinfo=UTC)]
    reader = ParamsReader(None, "experiment", Verifier([_SIGNER.public_key]),
                          clock=lambda: clock_now[0])
    current = FALLBACK_PARAMS
    adaptive_trades, static_trades, versions, rejected = [], [], 0, []
    # the learner runs all along (from a quarter in, when there is something to learn
    # from); only the second year is judged
    refits = list(range(start % REFIT_EVERY + 3 * REFIT_EVERY, cfg.sessions - HORIZON, REFIT_EVERY))
    for i, t in enumerate(refits):
        train = frame.filter(pl.col("session_index") <= t - 1 - HORIZON)
        fitted, _evidence = adapt(train, current)
        versions += 1
        day: date = max(train["session"].to_list())
        issued = datetime.combine(day, time(22, 0), UTC)
        clock_now[0] = issued
        record = Record.signed(
            ParamsPublished(
                name="default",
                version=versions,
                issued_at=issued,
                valid_until=issued + timedelta(days=45),
                mode="live",
                regime="bull_low_vol",
                params=fitted,
                provenance={"fit_until": str(day), "n": len(train)},
            ),
            _SIGNER,
        )
        reason = reader.offer(record.value, record.signature)
        if reason:
            rejected.append(reason)
        view = reader.get()
        current = view.params
        end = refits[i + 1] if i + 1 < len(refits) else cfg.sessions
        judged = frame.filter(pl.col("session_index").is_between(max(t, start), end - 1))
        adaptive_trades.append(trade(judged, view.params))
        static_trades.append(trade(judged, FALLBACK_PARAMS))
        say(
            f"refit {i + 1}/{len(refits)} at session {t}: threshold "
            f"{view.params.discovery_threshold:.3f}, buy {view.params.buy_threshold:.2f}, "
            f"sell {view.params.sell_threshold:.2f}, "
            f"limit {view.params.position_size_limit_pct:.2f}%"
            f" ({view.source} v{view.version})"
        )
    sessions = list(range(start, cfg.sessions - HORIZON))
    adaptive, static = pl.concat(adaptive_trades), pl.concat(static_trades)
    arms = {"adaptive": _metrics(adaptive, sessions), "static": _metrics(static, sessions)}
    return {
        **{arm: {k: m[k] for k in ("expectancy", "sharpe", "ece")} for arm, m in arms.items()},
        "seed": seed,
        "noise_only": noise_only,
        "trades": {arm: m["trades"] for arm, m in arms.items()},
        "pnl_gap": _gap(adaptive, static, sessions),
        "versions": versions,
        "rejected": rejected,
    }


# -- the tiered world: AMC-Trader's points table, learned through the gated loop ----------

JUDGED_FROM = 252  # the second year is judged; the learner runs from a quarter in
SIZE = 0.01  # every pick is bought at 1 % of equity, as the scanner's trader sizes it


def tiered_trades(frame: pl.DataFrame, traded: dict[int, TieredParams]) -> pl.DataFrame:
    """session_index, trade_return: every candidate that cleared the entry threshold of
    the table its session traded with, bought."""
    parts = []
    by_table: dict[str, tuple[TieredParams, list[int]]] = {}
    for t, params in traded.items():
        by_table.setdefault(params.model_dump_json(), (params, []))[1].append(t)
    for params, sessions in by_table.values():
        rows = frame.filter(pl.col("session_index").is_in(sessions)).drop_nulls(
            f"return_{HORIZON}d")
        score = net_points(params, rows.columns)
        parts.append(rows.filter(score >= params.entry_threshold).select(
            "session_index", pl.col(f"return_{HORIZON}d").alias("trade_return")))
    return pl.concat(parts) if parts else pl.DataFrame(
        schema={"session_index": pl.Int64, "trade_return": pl.Float64})


def arm_metrics(trades: pl.DataFrame, sessions: list[int]) -> dict[str, Any]:
    """total P&L (% of equity, 1 % a pick), annualised Sharpe of the per-session P&L,
    expectancy per trade, hit rate, trades."""
    daily = dict(trades.group_by("session_index").agg(pl.col("trade_return").sum())
                 .iter_rows())
    pnl = np.array([daily.get(s, 0.0) * SIZE for s in sessions])
    sd = pnl.std(ddof=1)
    return {"total_pnl": round(float(pnl.sum()) * 100, 4),
            "sharpe": round(float(pnl.mean() / sd * math.sqrt(252)), 4) if sd > 0 else None,
            "expectancy": round(as_float(trades["trade_return"].mean()), 6),
            "hit_rate": round(as_float((trades["trade_return"] > 0).mean()), 4),
            "trades": len(trades), "pnl": pnl}


def run_tiered_experiment(seed: int = 0, noise_only: bool = False,
                          say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The shipped 3.3.1 table (static) against the table the gated loop makes live
    (adaptive), on the judged year of a tiered world; the ungated loop (each fit traded at
    once, every REFIT_EVERY sessions) beside it as an upper bound only."""
    cfg = TieredConfig(seed=seed, noise_only=noise_only)
    frame = simulate_tiered(cfg)
    declared = tiered_model()
    static = TieredParams.declared(declared)
    fit = partial(fit_points, scale=(declared.scale.low, declared.scale.high))
    guardrails = PointsGuardrails(horizon=HORIZON)
    policy = RolloutPolicy(horizon=HORIZON)
    last = cfg.sessions - HORIZON
    judged = list(range(JUDGED_FROM, last))
    say(f"tiered world, seed {seed}{' (noise only)' if noise_only else ''}: "
        f"{cfg.symbols} symbols x {cfg.sessions} sessions; the gated loop runs daily")
    gated = walk(frame, static, fit, guardrails, policy, 3 * REFIT_EVERY, last)
    for step in gated.path:
        say(f"  {step['date']} v{step['version']} {step['mode']}: {explain(step)}")
    ungated: dict[int, TieredParams] = {}
    current = static
    for t in range(JUDGED_FROM - REFIT_EVERY, last):
        if (t - JUDGED_FROM) % REFIT_EVERY == 0:
            current, _ = fit(frame.filter(pl.col("session_index") <= t - 1 - HORIZON),
                             current, None, guardrails)
        if t >= JUDGED_FROM:
            ungated[t] = current
    arms = {
        "adaptive": arm_metrics(tiered_trades(frame, {t: _tiered(gated.traded[t])
                                                      for t in judged}), judged),
        "static": arm_metrics(tiered_trades(frame, dict.fromkeys(judged, static)), judged),
        "ungated_upper_bound": arm_metrics(tiered_trades(frame, ungated), judged),
    }
    final = _tiered(gated.traded[judged[-1]])
    moves = {(f, t): new - old for f, t, old, new in final.changes(static)}
    recovered = sum(1 for (f, t), true in PLANTED.items()
                    if np.sign(moves.get((f, t), 0)) == np.sign(true - static.tables[f][t]))
    diff = arms["adaptive"]["pnl"] - arms["static"]["pnl"]
    low, high = block_bootstrap_interval(diff, HORIZON)
    keys = ("total_pnl", "sharpe", "expectancy", "hit_rate")
    return {
        **{arm: {k: m[k] for k in keys} for arm, m in arms.items()},
        "trades": {arm: m["trades"] for arm, m in arms.items()},
        "difference": {"total_pnl": round(float(diff.sum()) * 100, 4),
                       "low": round(low * 100, 4), "high": round(high * 100, 4)},
        "signs_recovered": f"{recovered}/{len(PLANTED)}",
        "largest_move_points": max((abs(v) for v in moves.values()), default=0),
        "learned_sessions": gated.learned_sessions(range(JUDGED_FROM, last)),
        "judged_sessions": len(judged),
        "versions": [{k: s[k] for k in ("date", "version", "mode")} for s in gated.path],
        "final_changes": [{"factor": f, "tier": t, "from": old, "to": new}
                          for f, t, old, new in final.changes(static)],
        "entry_threshold": final.entry_threshold,
        "seed": seed, "noise_only": noise_only,
    }


def _tiered(params: Any) -> TieredParams:
    assert isinstance(params, TieredParams)
    return params
