"""Store the results of a learning pass (`intelligence.analysis.Analysis`) in PostgreSQL.

Within the caller's unit of work: the rows of that as-of date and scoring model are
replaced, so rerunning a pass on the same inputs leaves identical rows, and a pass over
another model's decisions leaves them be. Regime labels are causal, so a session's label
is written once and never rewritten.
"""

from __future__ import annotations

import json
import math
from typing import Any

import psycopg

from amc_learning.intelligence.analysis import Analysis

_TABLES = (
    "pattern_performance",
    "failure_modes",
    "calibration_snapshots",
    "feature_importance",
    "change_points",
)


def _num(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


class Results:
    """The learning passes' results, on one unit of work's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def store(self, analysis: Analysis, pattern_type: str = "thesis") -> dict[str, int]:
        """Write one pass (replacing the rows of its as-of date and model); the rows per
        table."""
        return _store_analysis(self.conn, analysis, pattern_type)


def _store_analysis(
    conn: psycopg.Connection[Any], analysis: Analysis, pattern_type: str = "thesis"
) -> dict[str, int]:
    """Write one pass; return the rows written per table."""
    as_of, (start, end), model = analysis.as_of, analysis.window, analysis.scoring_model
    stamp = (model, as_of, start, end)
    failing = set(analysis.failure_modes["signature"])
    definition = json.dumps(analysis.definitions)
    patterns = [
        (
            p["signature"],
            pattern_type,
            p["decision_type"],
            p["regime"],
            *stamp,
            p["n"],
            p["wins"],
            _num(p["win_rate"]),
            _num(p["win_rate_lower"]),
            _num(p["win_rate_upper"]),
            _num(p["win_rate_shrunk"]),
            _num(p["expectancy"]),
            _num(p["median_return"]),
            _num(p["expectancy"]),
            _num(p["profit_factor"]),
            _num(p.get("days_held")),
            _num(p["max_return"]),
            _num(p.get("max_adverse_excursion")),
            _num(p["p_value"]),
            _num(p["q_value"]),
            _num(p["excess_t"]),
            p["signature"] in failing,
            definition,
        )
        for p in analysis.patterns.iter_rows(named=True)
    ]
    failures = [
        (*stamp, f["kind"], f["signature"], f["n"], f["detail"])
        for f in analysis.failure_modes.iter_rows(named=True)
    ]
    calibration = [
        (
            *stamp,
            c["grouping"],
            c["group"],
            c["method"],
            c["n"],
            _num(c["brier_raw"]),
            _num(c["ece_raw"]),
            json.dumps(c["knots"]),
        )
        for c in analysis.calibration.iter_rows(named=True)
    ]
    features = [
        (
            *stamp,
            r["feature"],
            r["regime"],
            "ic",
            _num(r["mean_ic"]),
            _num(r["t_nw"]),
            _num(r["ir"]),
            r["sessions"],
        )
        for r in analysis.feature_ic.iter_rows(named=True)
    ] + [
        (*stamp, r["feature"], r["regime"], "permutation", _num(r["importance"]), None, None, None)
        for r in analysis.importance.iter_rows(named=True)
    ]
    changes = [
        (*stamp, c["stream"], c["every_sessions"], c["threshold"], c["alarm_session"])
        for c in analysis.change_points.iter_rows(named=True)
    ]
    regimes = [
        (r["session"], r["trend"], r["volatility"], r["regime"], as_of)
        for r in analysis.regimes.iter_rows(named=True)
        if r["trend"] is not None
    ]
    with conn.cursor() as cur:
        for table in _TABLES:
            cur.execute(f"DELETE FROM {table} WHERE as_of = %s AND scoring_model = %s",
                        (as_of, model))
        cur.executemany(
            "INSERT INTO pattern_performance (pattern_signature, pattern_type, decision_type,"
            " regime, scoring_model, as_of, window_start, window_end, sample_size, win_count,"
            " success_rate,"
            " win_rate_ci_low, win_rate_ci_high, shrunk_win_rate, avg_return, median_return,"
            " expectancy, profit_factor, avg_holding_period, max_return, max_adverse_excursion,"
            " p_value, q_value, excess_t, is_failure_mode, definition) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s)",
            patterns,
        )
        cur.executemany(
            "INSERT INTO failure_modes (scoring_model, as_of, window_start, window_end, kind,"
            " signature, sample_size, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            failures,
        )
        cur.executemany(
            "INSERT INTO calibration_snapshots (scoring_model, as_of, window_start, window_end,"
            " grouping, group_value, method, sample_size, brier_raw, ece_raw, knots) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            calibration,
        )
        cur.executemany(
            "INSERT INTO feature_importance (scoring_model, as_of, window_start, window_end,"
            " feature, regime, method, value, t_stat, ir, sessions) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            features,
        )
        cur.executemany(
            "INSERT INTO change_points (scoring_model, as_of, window_start, window_end, stream,"
            " every_sessions, threshold, alarm_session) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            changes,
        )
        cur.executemany(
            "INSERT INTO regime_history (session, trend, volatility, regime, labelled_as_of)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (session) DO NOTHING",
            regimes,
        )
    return {
        "pattern_performance": len(patterns),
        "failure_modes": len(failures),
        "calibration_snapshots": len(calibration),
        "feature_importance": len(features),
        "change_points": len(changes),
        "regime_history": len(regimes),
    }
