"""The planted-truth experiment: does trading with adaptive params beat static defaults?

Two years of simulated candidates (`simulator.research.simulate_candidates`). The first
year is only learned from; the second is judged. Every 21 sessions of the judged year
the learner refits on every decision whose 7-session outcome was complete by then (a
purge of the horizon: no outcome leaks into the fit that is judged on it), signs the
new version and offers it to a `ParamsReader` — the same validation a trading engine
applies (signature, bounds, versions). The adaptive arm trades the next 21 sessions with
what the reader returns; the static arm always trades the seed's defaults.

Measured on the judged year: expectancy per trade, an annualised Sharpe ratio of the
per-session P&L (positions sized by each arm's own limit), and the ECE of the
confidence each arm acted on, against whether the price went up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
import polars as pl

from intelligence.adaptive import adapt
from intelligence.calibration import expected_calibration_error
from schemas.params import FALLBACK_PARAMS, AdaptiveParams, ParamsPublished, sign
from simulator.research import ExperimentConfig, simulate_candidates, trade
from streams.params import ParamsReader

HORIZON = 7
REFIT_EVERY = 21
_KEY = b"experiment-key"


def _as_params(values: dict[str, Any]) -> AdaptiveParams:
    calibration = [
        {"raw": k[0], "calibrated": k[1]} if isinstance(k, list) else k
        for k in values.get("calibration", [])
    ]
    return AdaptiveParams.model_validate({**values, "calibration": calibration})


def _metrics(trades: pl.DataFrame, sessions: list[int]) -> dict[str, Any]:
    """expectancy, sharpe, ece and trades; None where there were no trades to measure."""
    if trades.is_empty():
        return {"trades": 0, "expectancy": None, "sharpe": None, "ece": None}
    pnl = trades.group_by("session_index").agg(
        (pl.col("trade_return") * pl.col("size_pct") / 100).sum().alias("pnl")
    )
    daily = dict(zip(pnl["session_index"], pnl["pnl"], strict=True))
    series = np.array([daily.get(s, 0.0) for s in sessions])
    sd = series.std(ddof=1)
    up = (trades["return_7d"].to_numpy() > 0).astype(float)
    return {
        "trades": len(trades),
        "expectancy": round(float(trades["trade_return"].mean()), 6),  # type: ignore[arg-type]
        "sharpe": round(float(series.mean() / sd * math.sqrt(252)), 4) if sd > 0 else None,
        "ece": round(expected_calibration_error(trades["used_confidence"].to_numpy(), up), 6),
    }


def run_experiment(
    seed: int = 0, noise_only: bool = False, say: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    cfg = ExperimentConfig(seed=seed, noise_only=noise_only)
    frame = simulate_candidates(cfg)
    start = 252
    clock_now = [datetime(2017, 1, 1, tzinfo=UTC)]
    reader = ParamsReader({}, "experiment", _KEY, clock=lambda: clock_now[0])
    current = FALLBACK_PARAMS.model_dump()
    current["calibration"] = []
    adaptive_trades, static_trades, versions, rejected = [], [], 0, []
    refits = list(range(start, cfg.sessions - HORIZON, REFIT_EVERY))
    for i, t in enumerate(refits):
        train = frame.filter(pl.col("session_index") <= t - 1 - HORIZON)
        fitted, _evidence = adapt(train, current)
        versions += 1
        day = train["session"].max()
        issued = datetime.combine(day, time(22, 0), UTC)  # type: ignore[arg-type]
        clock_now[0] = issued
        message = sign(
            ParamsPublished(
                name="default",
                version=versions,
                issued_at=issued,
                valid_until=issued + timedelta(days=45),
                mode="live",
                regime="bull_low_vol",
                params=_as_params(fitted),
                provenance={"fit_until": str(day), "n": len(train)},
            ),
            _KEY,
        )
        reason = reader.offer(message.model_dump_json().encode())
        if reason:
            rejected.append(reason)
        view = reader.get()
        current = view.params.model_dump()
        end = refits[i + 1] if i + 1 < len(refits) else cfg.sessions
        judged = frame.filter(pl.col("session_index").is_between(t, end - 1))
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
    arms = {
        "adaptive": _metrics(pl.concat(adaptive_trades), sessions),
        "static": _metrics(pl.concat(static_trades), sessions),
    }
    return {
        **{arm: {k: m[k] for k in ("expectancy", "sharpe", "ece")} for arm, m in arms.items()},
        "seed": seed,
        "noise_only": noise_only,
        "trades": {arm: m["trades"] for arm, m in arms.items()},
        "versions": versions,
        "rejected": rejected,
    }
