"""Real index history (NASDAQ Composite 1999-2018, VIX 2014-2019), vendored in simulator/data."""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path

import numpy as np

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
