"""The planted-truth experiments: does trading with learned params beat static ones?

Two simulated years: the learner runs all along, only the second year is judged. Each
experiment measures the loop as it runs live (`intelligence.walk`): the learner's daily
cycle, its fit and its rollout judge (shadow → canary → live → rollback), and each
session trades with the version live after the cycle before it. The ungated loop —
every `REFIT_EVERY` sessions a fit, traded at once — is reported beside it, labelled as
an upper bound only: no version the live engine runs skips the judge.

* native (`run_experiment`): candidates of the engine's own six components and thesis
  confidence (`simulator.research`), the adaptive weights and thresholds against the
  seed's defaults; the ungated fits go through a `ParamsReader` (signature, bounds,
  versions, as a trading engine reads them). Expectancy per trade, an annualised Sharpe
  of the per-session P&L (positions sized by each arm's own limit), the ECE of the
  confidence each arm acted on.
* tiered (`run_tiered_experiment`): AMC-Trader's scanner 3.3.1 with planted tier
  effects (`simulator.tiered`), the learned points table against the shipped one; each
  session's picks share 1/HORIZON of equity, so a book holding every pick for the
  horizon is fully invested (decision 016). Total P&L, Sharpe, expectancy, hit rate, and how many
  planted tier errors the learned table moved the right way.

Both give the adaptive arm's P&L minus the static arm's per session with a moving-block
bootstrap interval: on pure noise it must not be negative beyond noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from amc_learning.intelligence.adaptive import Guardrails, adapt
from amc_learning.intelligence.book import Params, net_points
from amc_learning.intelligence.calibration import expected_calibration_error
from amc_learning.intelligence.cycle import explain
from amc_learning.intelligence.points import PointsGuardrails, fit_points
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.intelligence.stats import as_float, block_bootstrap_interval
from amc_learning.intelligence.walk import Walk, walk
from amc_learning.schemas.params import (
    FALLBACK_PARAMS,
    AdaptiveParams,
    ParamsPublished,
    TieredParams,
)
from amc_learning.schemas.signing import Signer, Verifier, new_private_key
from amc_learning.simulator.research import (
    HORIZONS,
    ExperimentConfig,
    simulate_candidates,
    trade,
)
from amc_learning.simulator.tiered import PLANTED, TieredConfig, simulate_tiered, truth
from amc_learning.simulator.tiered import model as tiered_model
from amc_learning.streams.params import ParamsReader, Record

HORIZON = HORIZONS[1]  # the simulated world's: what the adaptive engine judges by
REFIT_EVERY = 21
JUDGED_FROM = 252  # the second year is judged; the learner runs from a quarter in
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


def _interval(diff: np.ndarray) -> dict[str, float]:
    """The sum of a per-session P&L difference (in % of equity) with its 95 % moving-block
    bootstrap interval (blocks of HORIZON sessions: their outcomes overlap)."""
    low, high = block_bootstrap_interval(diff, HORIZON)
    return {"total": round(float(diff.sum()) * 100, 4), "low": round(low * 100, 4),
            "high": round(high * 100, 4)}


def by_version(frame: pl.DataFrame, traded: dict[int, Params],
               trades: Callable[[pl.DataFrame, Any], pl.DataFrame]) -> pl.DataFrame:
    """The trades of every session in `traded`, each made by `trades` with the params that
    session traded with."""
    groups: dict[str, tuple[Params, list[int]]] = {}
    for t, params in traded.items():
        groups.setdefault(params.model_dump_json(), (params, []))[1].append(t)
    return pl.concat([trades(frame.filter(pl.col("session_index").is_in(sessions)), params)
                      for params, sessions in groups.values()])


def path_of(gated: Walk, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """The gated loop's version path, said a line each, and as its JSON entries."""
    for step in gated.path:
        say(f"  {step['date']} v{step['version']} {step['mode']}: {explain(step)}")
    return [{k: s[k] for k in ("date", "version", "mode")} for s in gated.path]


def run_experiment(
    seed: int = 0, noise_only: bool = False, say: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """The seed's defaults (static) against what the gated loop makes live (adaptive) on
    the judged year of the native world; the ungated loop beside them as an upper bound."""
    cfg = ExperimentConfig(seed=seed, noise_only=noise_only)
    frame = simulate_candidates(cfg)
    last = cfg.sessions - HORIZON
    judged = list(range(JUDGED_FROM, last))
    say(f"native world, seed {seed}{' (noise only)' if noise_only else ''}: "
        f"{cfg.sessions} sessions; the gated loop runs daily")
    gated = walk(frame, FALLBACK_PARAMS, adapt, Guardrails(horizon=HORIZON),
                 RolloutPolicy(horizon=HORIZON), 3 * REFIT_EVERY, last)
    path = path_of(gated, say)
    ungated, rejected = _ungated_native(frame, cfg.sessions, say)
    arms = {
        "adaptive": by_version(frame, {t: gated.traded[t] for t in judged}, trade),
        "static": by_version(frame, dict.fromkeys(judged, FALLBACK_PARAMS), trade),
        "ungated_upper_bound": by_version(frame, ungated, trade),
    }
    measured = {arm: _metrics(trades, judged) for arm, trades in arms.items()}
    return {
        **{arm: {k: m[k] for k in ("expectancy", "sharpe", "ece")}
           for arm, m in measured.items()},
        "seed": seed,
        "noise_only": noise_only,
        "trades": {arm: m["trades"] for arm, m in measured.items()},
        "difference": _interval(_pnl(arms["adaptive"], judged) - _pnl(arms["static"], judged)),
        "learned_sessions": gated.learned_sessions(range(JUDGED_FROM, last)),
        "judged_sessions": len(judged),
        "versions": path,
        "ungated_rejected": rejected,
    }


def _ungated_native(frame: pl.DataFrame, sessions: int, say: Callable[[str], None],
                    ) -> tuple[dict[int, Params], list[str]]:
    """Every REFIT_EVERY sessions a fit on the outcomes complete by then, signed and
    offered to a `ParamsReader`; each judged session trades what the reader returns."""
    clock_now = [datetime(2017, 1, 1, tzinfo=UTC)]
    reader = ParamsReader(None, "experiment", Verifier([_SIGNER.public_key]),
                          clock=lambda: clock_now[0])
    current: AdaptiveParams = FALLBACK_PARAMS
    traded: dict[int, Params] = {}
    rejected: list[str] = []
    refits = list(range(JUDGED_FROM % REFIT_EVERY + 3 * REFIT_EVERY, sessions - HORIZON,
                        REFIT_EVERY))
    for i, t in enumerate(refits):
        train = frame.filter(pl.col("session_index") <= t - 1 - HORIZON)
        fitted, _evidence = adapt(train, current)
        day: date = max(train["session"].to_list())
        issued = clock_now[0] = datetime.combine(day, time(22, 0), UTC)
        record = Record.signed(ParamsPublished(
            name="default", version=i + 1, issued_at=issued,
            valid_until=issued + timedelta(days=45), mode="live", regime="bull_low_vol",
            params=fitted, provenance={"fit_until": str(day), "n": len(train)}), _SIGNER)
        reason = reader.offer(record.value, record.signature)
        if reason:
            rejected.append(reason)
        current = reader.get().params
        end = refits[i + 1] if i + 1 < len(refits) else sessions - HORIZON
        traded.update(dict.fromkeys(range(max(t, JUDGED_FROM), end), current))
    say(f"  ungated (upper bound): {len(refits)} fits, {len(rejected)} refused by the reader")
    return traded, rejected


# -- the tiered world: AMC-Trader's points table, learned through the gated loop ----------

#: each session's picks share this slice of equity: held HORIZON sessions, the book is
#: fully invested, and a table that buys fewer names puts the same money on each
SLICE = 1 / HORIZON


def picks(candidates: pl.DataFrame, params: TieredParams) -> pl.DataFrame:
    """session_index, trade_return: every candidate that clears the entry threshold of
    `params`, bought."""
    rows = candidates.drop_nulls(f"return_{HORIZON}d")
    return rows.filter(net_points(params, rows.columns) >= params.entry_threshold).select(
        "session_index", pl.col(f"return_{HORIZON}d").alias("trade_return"))


def arm_metrics(trades: pl.DataFrame, sessions: list[int]) -> dict[str, Any]:
    """total P&L (% of equity, each session's picks sharing `SLICE`), annualised Sharpe of
    the per-session P&L, expectancy per trade, hit rate, trades."""
    daily = dict(trades.group_by("session_index").agg(pl.col("trade_return").mean())
                 .iter_rows())
    pnl = np.array([daily.get(s, 0.0) * SLICE for s in sessions])
    sd = pnl.std(ddof=1)
    return {"total_pnl": round(float(pnl.sum()) * 100, 4),
            "sharpe": round(float(pnl.mean() / sd * math.sqrt(252)), 4) if sd > 0 else None,
            "expectancy": round(as_float(trades["trade_return"].mean()), 6),
            "hit_rate": round(as_float((trades["trade_return"] > 0).mean()), 4),
            "trades": len(trades), "pnl": pnl}


def planted_z(planted: np.ndarray, static: np.ndarray) -> float:
    """How far the planted table's per-session P&L beats the static one's: the paired z
    of their difference, read every HORIZON-th session (no two outcomes overlap)."""
    diff = (planted - static)[::HORIZON]
    sd = float(diff.std(ddof=1))
    return round(float(diff.mean()) / sd * math.sqrt(len(diff)), 3) if sd > 0 else 0.0


def excess_pnl(frame: pl.DataFrame, traded: dict[int, Params], judged: list[int]) -> np.ndarray:
    """The per-session P&L on `judged` of the tables `traded` (session -> table), every
    pick's return in excess of its session's mean candidate (as the rollout judge reads
    P&L: what the table's selection earned, without the market move every pick shares)."""
    ret = f"return_{HORIZON}d"
    frame = frame.with_columns(pl.col(ret) - pl.col(ret).mean().over("session"))
    return arm_metrics(by_version(frame, traded, picks), judged)["pnl"]


def shipped_and_planted() -> tuple[TieredParams, TieredParams]:
    """AMC-Trader 3.3.1's shipped table, and the same with the planted truth's points."""
    declared = tiered_model()
    static = TieredParams.declared(declared)
    return static, static.model_copy(update={"tables": truth(declared)})


def planted_power(symbols: int, seeds: range = range(10)) -> list[float]:
    """`planted_z` on the judged year of each seed's tiered world of `symbols`: what an
    experiment of that size can show at best (decision 014 sets the universe by it)."""
    static, planted = shipped_and_planted()
    out = []
    for seed in seeds:
        cfg = TieredConfig(seed=seed, symbols=symbols)
        frame = simulate_tiered(cfg)
        judged = list(range(JUDGED_FROM, cfg.sessions - HORIZON))
        out.append(planted_z(excess_pnl(frame, dict.fromkeys(judged, planted), judged),
                             excess_pnl(frame, dict.fromkeys(judged, static), judged)))
    return out


def perfect_fit_share(symbols: int, seeds: range = range(10)) -> list[float]:
    """For each seed's tiered world of `symbols`: the share of the judged year a perfect
    learner trades the planted truth, when every cycle's fit returns it and the live
    judge decides as it does for any fit. What the experiment can show at best through
    the judge within its judged year."""
    static, planted = shipped_and_planted()
    out = []
    for seed in seeds:
        cfg = TieredConfig(seed=seed, symbols=symbols)
        last = cfg.sessions - HORIZON
        gated = walk(simulate_tiered(cfg), static, lambda *_: (planted, {}),
                     PointsGuardrails(horizon=HORIZON), RolloutPolicy(horizon=HORIZON),
                     3 * REFIT_EVERY, last)
        out.append(gated.learned_sessions(range(JUDGED_FROM, last)) / (last - JUDGED_FROM))
    return out


def run_tiered_experiment(seed: int = 0, noise_only: bool = False,
                          say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The shipped 3.3.1 table (static) against the table the gated loop makes live
    (adaptive), on the judged year of a tiered world; the ungated loop (each fit traded at
    once, every REFIT_EVERY sessions) beside it as an upper bound only."""
    cfg = TieredConfig(seed=seed, noise_only=noise_only)
    frame = simulate_tiered(cfg)
    declared = tiered_model()
    static, planted = shipped_and_planted()
    fit = partial(fit_points, scale=(declared.scale.low, declared.scale.high))
    guardrails = PointsGuardrails(horizon=HORIZON)
    last = cfg.sessions - HORIZON
    judged = list(range(JUDGED_FROM, last))
    say(f"tiered world, seed {seed}{' (noise only)' if noise_only else ''}: "
        f"{cfg.symbols} symbols x {cfg.sessions} sessions; the gated loop runs daily")
    gated = walk(frame, static, fit, guardrails, RolloutPolicy(horizon=HORIZON),
                 3 * REFIT_EVERY, last)
    path = path_of(gated, say)
    ungated: dict[int, Params] = {}
    current = static
    for t in range(JUDGED_FROM - REFIT_EVERY, last):
        if (t - JUDGED_FROM) % REFIT_EVERY == 0:
            current, _ = fit(frame.filter(pl.col("session_index") <= t - 1 - HORIZON),
                             current, None, guardrails)
        if t >= JUDGED_FROM:
            ungated[t] = current
    arms = {
        "adaptive": arm_metrics(by_version(frame, {t: gated.traded[t] for t in judged}, picks),
                                judged),
        "static": arm_metrics(by_version(frame, dict.fromkeys(judged, static), picks), judged),
        "ungated_upper_bound": arm_metrics(by_version(frame, ungated, picks), judged),
        "planted_truth": arm_metrics(by_version(frame, dict.fromkeys(judged, planted), picks),
                                     judged),
    }
    fixed: dict[str, Params] = {"static": static, "planted": planted}
    selection = {name: excess_pnl(frame, dict.fromkeys(judged, p), judged)
                 for name, p in fixed.items()}
    selection["adaptive"] = excess_pnl(frame, {t: gated.traded[t] for t in judged}, judged)
    final = gated.traded[judged[-1]]
    assert isinstance(final, TieredParams)
    moves = {(f, t): new - old for f, t, old, new in final.changes(static)}
    recovered = sum(1 for (f, t), true in PLANTED.items()
                    if np.sign(moves.get((f, t), 0)) == np.sign(true - static.tables[f][t]))
    keys = ("total_pnl", "sharpe", "expectancy", "hit_rate")
    return {
        **{arm: {k: m[k] for k in keys} for arm, m in arms.items()},
        "trades": {arm: m["trades"] for arm, m in arms.items()},
        "difference": _interval(arms["adaptive"]["pnl"] - arms["static"]["pnl"]),
        "difference_in_selection": _interval(selection["adaptive"] - selection["static"]),
        "planted_truth_z": planted_z(selection["planted"], selection["static"]),
        "signs_recovered": f"{recovered}/{len(PLANTED)}",
        "largest_move_points": max((abs(v) for v in moves.values()), default=0),
        # the largest step any proposed version took from its incumbent, live or not
        "largest_step_points": max((abs(n["proposed"] - n["current"]) for step in gated.path
                                    if step["mode"] == "shadow"
                                    for n in (step["provenance"].get("fit") or {})
                                    .get("tiers", [])), default=0),
        "learned_sessions": gated.learned_sessions(range(JUDGED_FROM, last)),
        "judged_sessions": len(judged),
        "versions": path,
        "final_changes": [{"factor": f, "tier": t, "from": old, "to": new}
                          for f, t, old, new in final.changes(static)],
        "entry_threshold": final.entry_threshold,
        "seed": seed, "noise_only": noise_only,
    }
