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


class Insights:
    """The newest learning pass's findings, on one unit of work's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def patterns(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest pass's patterns, the most significant (lowest q) first."""
        return self._rows(_PATTERNS, limit=limit)

    def regimes(self, sessions: int = 20) -> list[dict[str, Any]]:
        """The regime of the last `sessions` sessions, newest first."""
        return self._rows(_REGIMES, sessions=sessions)

    def calibration(self) -> list[dict[str, Any]]:
        """The newest calibration maps (knots [[confidence, probability], ...]) per group."""
        return self._rows(_CALIBRATION)

    def _rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        rows = self.conn.cursor(row_factory=dict_row).execute(query, params).fetchall()
        return [{k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
                for row in rows]
