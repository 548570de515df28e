"""The simulated trading side's rules: how a thesis becomes BUY/SELL/HOLD/IGNORE under the
params it reads, and how a position opens and closes.

`with_params` is where the simulated trading engine reads what the learner publishes,
exactly as a real one would through its `ParamsReader`: the calibration map on its
confidence, the buy and sell thresholds, the position-size limit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from amc_learning.schemas.common import DecisionType, ExitReason, Side
from amc_learning.schemas.params import FALLBACK_PARAMS
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.streams.params import ParamsView

#: The position-size limit, in percent of the portfolio, when no params are read.
DEFAULT_LIMIT_PCT = 5.0


@dataclass(frozen=True)
class TradingPolicy:
    """How the simulated discovery, thesis and trading services behave."""

    discovery_weights: tuple[float, ...] = (0.25, 0.20, 0.20, 0.15, 0.10, 0.10)
    discovery_threshold: float = 0.66
    #: candidates a discovery run writes (a points scanner: every one that clears its bar),
    #: and the best of them the thesis looks at
    candidates_per_run: int = 30
    buy_confidence: float = 0.60
    sell_confidence: float = 0.40
    stop_loss: float = 0.06
    profit_target: float = 0.10
    max_hold_sessions: int = 10
    manual_exit_prob: float = 0.01
    portfolio_value: float = 1_000_000.0


@dataclass(frozen=True)
class Bars:
    """One session's bars of every symbol, as arrays."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


@dataclass
class Position:
    trade_id: str
    decision_id: str
    symbol: int
    side: Side
    entry_session: int
    entry_price: float
    quantity: float
    size_pct: float


#: What a reader hands out when it has nothing valid: the counterfactual arm trades on it.
FALLBACK_VIEW = ParamsView(FALLBACK_PARAMS, "fallback", "counterfactual", "default")


def arm(view: ParamsView) -> str:
    """The arm a decision was made in: "fallback", or the version and mode ("v3 live")."""
    return f"v{view.version} {view.mode}" if view.source == "published" else "fallback"


def with_params(view: ParamsView, confidence: float,
                policy: TradingPolicy) -> tuple[float, TradingPolicy, float]:
    """(the confidence trading acts on, the policy with the params' thresholds, the
    position-size limit) under the params a reader returned."""
    knots = view.params.calibration
    used = confidence
    if knots:
        used = float(np.interp(confidence, [k.raw for k in knots], [k.calibrated for k in knots]))
    policy = replace(policy, buy_confidence=view.params.buy_threshold,
                     sell_confidence=view.params.sell_threshold)
    return used, policy, view.params.position_size_limit_pct


def position_size(confidence: float, limit_pct: float) -> float:
    """Percent of the portfolio for a BUY or SELL: more for a surer thesis, capped."""
    return round(min(limit_pct, 1.0 + 8.0 * abs(confidence - 0.5)), 3)


def decision(confidence: float, policy: TradingPolicy) -> DecisionType:
    if confidence >= policy.buy_confidence:
        return "BUY"
    if confidence <= policy.sell_confidence:
        return "SELL"
    return "HOLD" if confidence >= 0.5 else "IGNORE"


def open_position(d: ThesisDecided, i: int, t: int, policy: TradingPolicy) -> Position:
    """The position a BUY or SELL opens (no other decision opens one)."""
    if d.decision_type not in ("BUY", "SELL"):
        raise ValueError(f"a {d.decision_type} decision opens no position")
    side: Side = "BUY" if d.decision_type == "BUY" else "SELL"
    notional = policy.portfolio_value * d.position_size_pct / 100.0
    return Position(
        trade_id=f"trd-{d.decision_id.removeprefix('dec-')}", decision_id=d.decision_id,
        symbol=i, side=side, entry_session=t, entry_price=d.entry_price,
        quantity=round(notional / d.entry_price, 4), size_pct=d.position_size_pct,
    )


def exit_of(p: Position, t: int, bars: Bars, manual: bool, i: int,
            policy: TradingPolicy) -> tuple[ExitReason, float] | None:
    """(reason, price) when position `p` of symbol `i` closes in session `t`, else None."""
    if p.entry_session >= t:
        return None
    long = p.side == "BUY"
    stop = p.entry_price * (1 - policy.stop_loss if long else 1 + policy.stop_loss)
    target = p.entry_price * (1 + policy.profit_target if long else 1 - policy.profit_target)
    if (bars.low[i] <= stop) if long else (bars.high[i] >= stop):
        return "stop_loss", stop
    if (bars.high[i] >= target) if long else (bars.low[i] <= target):
        return "profit_target", target
    if t - p.entry_session >= policy.max_hold_sessions:
        return "time", float(bars.close[i])
    if manual:
        return "manual", float(bars.close[i])
    return None
