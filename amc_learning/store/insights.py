"""What the learner last found, as plain JSON-ready values for the HTTP API's
intelligence routes: the newest pass's patterns, the regime, the calibration maps."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

_PATTERNS = """
SELECT pattern_signature AS signature, decision_type, regime, as_of, window_start,
       window_end, sample_size, success_rate AS win_rate, win_rate_ci_low, win_rate_ci_high,
       shrunk_win_rate, expectancy, profit_factor, p_value, q_value, is_failure_mode
FROM pattern_performance
WHERE as_of = (SELECT max(as_of) FROM pattern_performance)
ORDER BY q_value NULLS LAST, sample_size DESC
LIMIT %(limit)s
"""
_REGIMES = """
SELECT session, trend, volatility, regime FROM regime_history
ORDER BY session DESC LIMIT %(sessions)s
"""
_CALIBRATION = """
SELECT as_of, window_start, window_end, grouping, group_value, method, sample_size,
       brier_raw, ece_raw, knots
FROM calibration_snapshots
WHERE as_of = (SELECT max(as_of) FROM calibration_snapshots)
ORDER BY grouping, group_value
"""


def _rows(database_url: str, query: str, **params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return [{k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
                for row in conn.execute(query, params).fetchall()]


def patterns(database_url: str, limit: int = 50) -> list[dict[str, Any]]:
    """The newest pass's patterns, the most significant (lowest q) first."""
    return _rows(database_url, _PATTERNS, limit=limit)


def regimes(database_url: str, sessions: int = 20) -> list[dict[str, Any]]:
    """The regime of the last `sessions` sessions, newest first."""
    return _rows(database_url, _REGIMES, sessions=sessions)


def calibration(database_url: str) -> list[dict[str, Any]]:
    """The newest calibration maps (knots [[confidence, probability], ...]) per group."""
    return _rows(database_url, _CALIBRATION)
