"""The measures of one tracked decision's path: excursions, realised volatility, whether
the thesis's catalyst and volume came true, and its accuracy score. Definitions are in
`intelligence.tracking`'s docstring; these are pure functions of a list of bars."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

_WEIGHTS = {"direction": 0.5, "target": 0.3, "stop": 0.2}
_MIN_BASELINE = 5


@dataclass(frozen=True)
class Bar:
    """One session's bar of the symbol."""

    session: str
    open: float
    high: float
    low: float
    close: float
    volume: float


def rounded(x: float) -> float:
    return round(x, 10)


def side_return(side: float, price: float | None, entry: float) -> float | None:
    return None if price is None else rounded(side * (price / entry - 1.0))


def excursions(path: list[Bar], entry: float, side: float) -> dict[str, float | None]:
    """Maximum favourable (>= 0) and adverse (<= 0) excursion relative to the side."""
    if not path:
        return {"max_favorable_excursion": None, "max_adverse_excursion": None}
    if side > 0:
        fav = max(b.high for b in path) / entry - 1.0
        adv = min(b.low for b in path) / entry - 1.0
    else:
        fav = 1.0 - min(b.low for b in path) / entry
        adv = 1.0 - max(b.high for b in path) / entry
    return {"max_favorable_excursion": rounded(max(0.0, fav)),
            "max_adverse_excursion": rounded(min(0.0, adv))}


def realized_volatility(prices: list[float], annualisation: int = 252) -> float | None:
    """Annualised sample standard deviation of the log returns between consecutive prices."""
    returns = [math.log(b / a) for a, b in pairwise(prices)]
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return rounded(math.sqrt(var * annualisation))


def catalyst_materialized(thesis: dict[str, Any], bars: list[Bar],
              catalysts: dict[str, list[str]]) -> bool | None:
    kind, window = thesis["catalyst"], thesis["catalyst_window"]
    if not kind or not window or not bars:
        return None
    end = bars[min(window, len(bars)) - 1].session
    if any(bars[0].session <= s <= end and k == kind for s, k in catalysts.values()):
        return True
    return False if len(bars) >= window else None


def volume_accuracy(thesis: dict[str, Any], bars: list[Bar], baseline: list[float],
            horizon: int) -> float | None:
    expected = thesis["volume_ratio"]
    if expected is None or len(bars) < horizon or len(baseline) < _MIN_BASELINE:
        return None
    base = sum(baseline) / len(baseline)
    if base <= 0:
        return None
    realised = sum(b.volume for b in bars[:horizon]) / horizon / base
    if realised <= 0:
        return 0.0
    return rounded(min(realised, expected) / max(realised, expected))


def thesis_accuracy(thesis: dict[str, Any], path: list[Bar], entry: float, horizon: int,
                    flat_band: float) -> float | None:
    """Direction, target and stop scores at the thesis horizon (see the module docstring)."""
    if len(path) < horizon:
        return None
    move = path[horizon - 1].close / entry - 1.0
    direction = thesis["direction"]
    scores = {"direction": float(
        move > 0 if direction == "UP" else move < 0 if direction == "DOWN"
        else abs(move) <= flat_band
    )}
    high, low = max(b.high for b in path), min(b.low for b in path)
    target, stop = thesis["target"], thesis["stop"]
    if target is not None and target != entry:
        best = high if target > entry else low
        scores["target"] = min(1.0, max(0.0, (best - entry) / (target - entry)))
    if stop is not None and stop != entry:
        touched = low <= stop if stop < entry else high >= stop
        scores["stop"] = 0.0 if touched else 1.0
    total = sum(_WEIGHTS[k] for k in scores)
    return rounded(sum(_WEIGHTS[k] * v for k, v in scores.items()) / total)
