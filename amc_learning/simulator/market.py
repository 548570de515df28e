"""Real index history (NASDAQ Composite 1999-2018, VIX 2014-2019), vendored in simulator/data."""

from __future__ import annotations

import csv
import gzip
import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path

import numpy as np

from amc_learning.schemas.common import Regime
from amc_learning.schemas.thesis import MarketConditions

#: (trend, volatility) -> the regime a thesis service reports
REGIMES: dict[tuple[str, str], Regime] = {
    ("bull", "high_vol"): "bull_high_vol", ("bull", "low_vol"): "bull_low_vol",
    ("bear", "high_vol"): "bear_high_vol", ("bear", "low_vol"): "bear_low_vol"}

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class IndexHistory:
    """Daily sessions of the index with OHLCV, and the VIX close where known (else NaN)."""

    sessions: tuple[date, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    vix: np.ndarray

    def index_of(self, day: date) -> int:
        """Position of the first session on or after `day`."""
        for i, session in enumerate(self.sessions):
            if session >= day:
                return i
        raise ValueError(f"no session on or after {day}; the history ends {self.sessions[-1]}")

    def vix_at(self, t: int) -> float:
        """The real VIX where known; before 2014, 21-day realised index vol as a proxy."""
        if not math.isnan(self.vix[t]):
            return float(self.vix[t])
        closes = self.close[t - 21 : t + 1]
        return float(np.std(np.diff(np.log(closes))) * math.sqrt(252) * 100 * 1.1)

    def conditions(self, t: int) -> MarketConditions:
        """What a thesis service knows of the market at session `t`'s open."""
        closes = self.close[t - 50 : t]
        trend = closes[-1] / closes.mean() - 1.0
        vix = self.vix_at(t - 1)
        volatility = "high_vol" if vix >= 20 else "low_vol"
        direction = "bull" if trend > 0 else "bear"
        regime: Regime = "sideways" if abs(trend) < 0.01 else REGIMES[direction, volatility]
        return MarketConditions(vix=round(vix, 4), sector="index", regime=regime)


def _parse_date(text: str) -> date:
    return datetime.strptime(text, "%m/%d/%Y").date()


@cache
def load_history() -> IndexHistory:
    with gzip.open(DATA_DIR / "nasdaq.csv.gz", "rt") as f:
        rows = [r for r in csv.DictReader(f)]
    with gzip.open(DATA_DIR / "vix.csv.gz", "rt") as f:
        # FRED-style export: "." marks a session without a value.
        vix_by_day = {
            _parse_date(r["Date"]): float(r["vix"]) for r in csv.DictReader(f) if r["vix"] != "."
        }
    sessions = tuple(_parse_date(r["Date"]) for r in rows)

    def column(name: str) -> np.ndarray:
        return np.array([float(r[name]) for r in rows])

    return IndexHistory(
        sessions=sessions,
        open=column("Open"),
        high=column("High"),
        low=column("Low"),
        close=column("Close"),
        volume=column("Volume"),
        vix=np.array([vix_by_day.get(s, np.nan) for s in sessions]),
    )
