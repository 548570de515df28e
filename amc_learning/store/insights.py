"""What the learner last found, as plain JSON-ready values for the HTTP API's
intelligence routes: the newest pass's patterns, the regime, the calibration maps. A pass
reads one scoring model's decisions: the routes take a model, or the newest pass's."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

#: the newest pass of `table` over %(model)s's decisions (NULL: of any model)
_NEWEST = """
WITH pass AS (SELECT scoring_model, as_of FROM {table}
              WHERE %(model)s::text IS NULL OR scoring_model = %(model)s
              ORDER BY as_of DESC, id DESC LIMIT 1)
"""
_PATTERNS = _NEWEST.format(table="pattern_performance") + """
SELECT pattern_signature AS signature, scoring_model, decision_type, regime, as_of,
       window_start, window_end, sample_size, success_rate AS win_rate, win_rate_ci_low,
       win_rate_ci_high, shrunk_win_rate, expectancy, profit_factor, p_value, q_value,
       is_failure_mode
FROM pattern_performance JOIN pass USING (scoring_model, as_of)
ORDER BY q_value NULLS LAST, sample_size DESC
LIMIT %(limit)s
"""
_REGIMES = """
SELECT session, trend, volatility, regime FROM regime_history
ORDER BY session DESC LIMIT %(sessions)s
"""
_CALIBRATION = _NEWEST.format(table="calibration_snapshots") + """
SELECT scoring_model, as_of, window_start, window_end, grouping, group_value, method,
       sample_size, brier_raw, ece_raw, knots
FROM calibration_snapshots JOIN pass USING (scoring_model, as_of)
ORDER BY grouping, group_value
"""


class Insights:
    """The newest learning pass's findings, on one unit of work's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def patterns(self, limit: int = 50, model: str | None = None) -> list[dict[str, Any]]:
        """The newest pass's patterns (over `model`'s decisions, or the newest pass's
        model), the most significant (lowest q) first."""
        return self._rows(_PATTERNS, limit=limit, model=model)

    def regimes(self, sessions: int = 20) -> list[dict[str, Any]]:
        """The regime of the last `sessions` sessions, newest first."""
        return self._rows(_REGIMES, sessions=sessions)

    def calibration(self, model: str | None = None) -> list[dict[str, Any]]:
        """The newest calibration maps (knots [[confidence, probability], ...]) per group,
        of `model`'s decisions (None: the newest pass's model)."""
        return self._rows(_CALIBRATION, model=model)

    def _rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        rows = self.conn.cursor(row_factory=dict_row).execute(query, params).fetchall()
        return [{k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
                for row in rows]
