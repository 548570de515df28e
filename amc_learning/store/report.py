"""Everything the intelligence report shows, read from the database as of a session.

`gather` is the only reader; `pages.report.render` draws, `service.report` writes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import psycopg
from psycopg.rows import dict_row

from amc_learning.intelligence.analysis import known_by
from amc_learning.intelligence.report import ModelParams, ReportData
from amc_learning.schemas.models import TieredModel, shipped
from amc_learning.schemas.params import declared_params, param_set
from amc_learning.settings import Settings
from amc_learning.store.frames import DECISION_MODEL

if TYPE_CHECKING:
    from amc_learning.store.database import UnitOfWork

_COLLECTION = """
SELECT session, sum(decisions) AS decisions, sum(candidates) AS candidates,
       sum(trades) AS trades, sum(bars) AS price_bars
FROM (
  SELECT (decided_at AT TIME ZONE 'UTC')::date AS session, count(*) AS decisions,
         0 AS candidates, 0 AS trades, 0 AS bars
  FROM learning_decisions WHERE NOT is_synthetic GROUP BY 1
  UNION ALL
  SELECT (discovered_at AT TIME ZONE 'UTC')::date, 0, count(*), 0, 0
  FROM discovery_candidates GROUP BY 1
  UNION ALL
  SELECT (executed_at AT TIME ZONE 'UTC')::date, 0, 0, count(*), 0 FROM learning_trades GROUP BY 1
  UNION ALL
  SELECT session, 0, 0, 0, count(*) FROM price_bars GROUP BY 1
) c WHERE session <= %(as_of)s GROUP BY session ORDER BY session
"""

#: Per params arm the trading engine decided under (ThesisDecided.params_version/mode):
#: decisions, BUY/SELL trades, and their P&L marked at the middle horizon, in percent of
#: the portfolio (side x position size x return_7d, the return the learning judges by);
#: with `model` ("name version"), only the decisions of that scoring model (its own, or
#: its candidate's), whose version is its param set's
_ARMS = f"""
SELECT coalesce('v' || d.params_version || ' ' || d.params_mode, 'fallback') AS arm,
       count(*) AS decisions,
       count(*) FILTER (WHERE d.decision_type IN ('BUY', 'SELL')) AS trades,
       count(o.return_7d) FILTER (WHERE d.decision_type IN ('BUY', 'SELL')) AS marked,
       coalesce(sum(CASE d.decision_type WHEN 'BUY' THEN 1 WHEN 'SELL' THEN -1 END
                    * d.position_size_pct * o.return_7d), 0) AS pnl_pct,
       min((d.decided_at AT TIME ZONE 'UTC')::date) AS first,
       max((d.decided_at AT TIME ZONE 'UTC')::date) AS last
FROM learning_decisions d LEFT JOIN learning_outcomes o ON o.decision_id = d.id
WHERE NOT d.is_synthetic AND (d.decided_at AT TIME ZONE 'UTC')::date <= %(as_of)s
  AND (%(model)s::text IS NULL OR {DECISION_MODEL} = %(model)s)
GROUP BY 1 ORDER BY min(d.decided_at)
"""
_ARMS_SCHEMA = {"arm": pl.Utf8, "decisions": pl.Int64, "trades": pl.Int64, "marked": pl.Int64,
                "pnl_pct": pl.Float64, "first": pl.Date, "last": pl.Date}

_HEALTH = """
SELECT
  (SELECT count(*) FROM learning_outcomes WHERE outcome_type = 'open') AS open,
  (SELECT count(*) FROM learning_outcomes WHERE outcome_type = 'matured') AS matured,
  (SELECT count(*) FROM learning_outcomes WHERE outcome_type = 'closed') AS closed,
  (SELECT count(*) FROM outcome_backlog) AS backlog,
  (SELECT min(received_at) FROM outcome_backlog) AS backlog_oldest,
  (SELECT count(*) FROM dead_letters) AS rejected,
  (SELECT (SELECT count(*) FROM learning_decisions WHERE NOT is_synthetic)
        + (SELECT count(*) FROM discovery_candidates) + (SELECT count(*) FROM learning_trades)
        + (SELECT count(*) FROM price_bars) + (SELECT count(*) FROM catalyst_events)) AS stored
"""


def _frame(conn: psycopg.Connection[Any], query: str, schema: dict[str, Any],
           **params: Any) -> pl.DataFrame:
    rows = conn.cursor(row_factory=dict_row).execute(query, params).fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row")


def _newest(conn: psycopg.Connection[Any], table: str, columns: str, schema: dict[str, Any],
            as_of: date, model: str) -> pl.DataFrame:
    """The rows of `table`'s newest pass over `model`'s decisions up to `as_of`."""
    return _frame(conn, f"SELECT {columns} FROM {table} WHERE scoring_model = %(model)s"
                        f" AND as_of = (SELECT max(as_of) FROM {table}"
                        f" WHERE as_of <= %(as_of)s AND scoring_model = %(model)s)",
                  schema, as_of=as_of, model=model)


def gather(uow: UnitOfWork, settings: Settings, as_of: date | None,
           scoring_model: str = "native", decisions: pl.DataFrame | None = None,
           waiting: list[dict[str, Any]] | None = None) -> ReportData:
    """Everything the report shows of `scoring_model` and its param set (`param_set`), with
    the horizons and market of `settings`, as of `as_of` (None: the last stored session).

    `decisions`: a `Frames.decisions` already read (the learner passes its own, so a cycle
    does not read the decisions twice)."""
    params_name = param_set(scoring_model, settings.params_name)
    horizons, market = settings.horizons, settings.market
    as_of = as_of or uow.frames.last_session(market[0]) or datetime.now(UTC).date()
    frame = uow.frames.decisions(horizons) if decisions is None else decisions
    known = known_by(frame, as_of, horizons[1]) if not frame.is_empty() else frame
    known = (known.select("session", "decision_source", "confidence", "win")
             if not known.is_empty() else pl.DataFrame(
                 schema={"session": pl.Date, "decision_source": pl.Utf8,
                         "confidence": pl.Float64, "win": pl.Boolean}))
    index = uow.frames.index(market).filter(pl.col("session") <= as_of)
    conn = uow.conn
    date_ = pl.Date
    calibration = _frame(
        conn, "SELECT as_of, window_end, grouping, group_value, method, sample_size,"
              " ece_raw, knots FROM calibration_snapshots WHERE as_of <= %(as_of)s"
              " AND scoring_model = %(model)s",
        {"as_of": date_, "window_end": date_, "grouping": pl.Utf8, "group_value": pl.Utf8,
         "method": pl.Utf8, "sample_size": pl.Int64, "ece_raw": pl.Float64,
         "knots": pl.List(pl.List(pl.Float64))}, as_of=as_of, model=scoring_model)
    patterns = _newest(
        conn, "pattern_performance",
        "pattern_signature, decision_type, regime, window_start, window_end, sample_size,"
        " success_rate, win_rate_ci_low, win_rate_ci_high, shrunk_win_rate, expectancy,"
        " profit_factor, excess_t, p_value, q_value, is_failure_mode",
        {"pattern_signature": pl.Utf8, "decision_type": pl.Utf8, "regime": pl.Utf8,
         "window_start": date_, "window_end": date_, "sample_size": pl.Int64,
         "success_rate": pl.Float64, "win_rate_ci_low": pl.Float64,
         "win_rate_ci_high": pl.Float64, "shrunk_win_rate": pl.Float64,
         "expectancy": pl.Float64, "profit_factor": pl.Float64, "excess_t": pl.Float64,
         "p_value": pl.Float64, "q_value": pl.Float64, "is_failure_mode": pl.Boolean},
        as_of, scoring_model)
    failures = _newest(conn, "failure_modes", "kind, signature, sample_size, detail",
                       {"kind": pl.Utf8, "signature": pl.Utf8, "sample_size": pl.Int64,
                        "detail": pl.Utf8}, as_of, scoring_model)
    features = _newest(conn, "feature_importance",
                       "feature, regime, method, value, t_stat, ir, sessions",
                       {"feature": pl.Utf8, "regime": pl.Utf8, "method": pl.Utf8,
                        "value": pl.Float64, "t_stat": pl.Float64, "ir": pl.Float64,
                        "sessions": pl.Int64}, as_of, scoring_model)
    change_points = _newest(conn, "change_points", "as_of, stream, alarm_session",
                            {"as_of": date_, "stream": pl.Utf8, "alarm_session": date_},
                            as_of, scoring_model)
    regimes = _frame(conn, "SELECT session, trend, volatility, regime FROM regime_history"
                           " WHERE session <= %(as_of)s ORDER BY session",
                     {"session": date_, "trend": pl.Utf8, "volatility": pl.Utf8,
                      "regime": pl.Utf8}, as_of=as_of)
    params = _frame(conn, "SELECT version, mode, canary_pct, as_of, parent_version,"
                          " published, evidence, recorded_at FROM params_history"
                          " WHERE name = %(name)s AND as_of <= %(as_of)s"
                          " ORDER BY recorded_at, version",
                    {"version": pl.Int64, "mode": pl.Utf8, "canary_pct": pl.Float64,
                     "as_of": date_, "parent_version": pl.Int64, "published": pl.Boolean,
                     "evidence": pl.Object, "recorded_at": pl.Datetime("us", "UTC")},
                    name=params_name, as_of=as_of)
    arms = _frame(conn, _ARMS, _ARMS_SCHEMA, as_of=as_of, model=None)
    cycles = _frame(conn, "SELECT kind, as_of, ran_at, summary FROM learning_cycles"
                          " WHERE name = %(name)s AND as_of <= %(as_of)s"
                          " ORDER BY ran_at DESC LIMIT 10",
                    {"kind": pl.Utf8, "as_of": date_, "ran_at": pl.Datetime("us", "UTC"),
                     "summary": pl.Object}, name=params_name, as_of=as_of)
    collection = _frame(conn, _COLLECTION,
                        {"session": date_, "decisions": pl.Int64, "candidates": pl.Int64,
                         "trades": pl.Int64, "price_bars": pl.Int64}, as_of=as_of)
    dead = _frame(conn, "SELECT reason, (failed_at AT TIME ZONE 'UTC')::date AS day,"
                        " count(*) AS n FROM dead_letters GROUP BY 1, 2",
                  {"reason": pl.Utf8, "day": date_, "n": pl.Int64})
    health = conn.cursor(row_factory=dict_row).execute(_HEALTH).fetchone() or {}
    return ReportData(
        as_of=as_of, generated_at=datetime.now(UTC), decisions=known, calibration=calibration,
        patterns=patterns, failures=failures, features=features, change_points=change_points,
        index=index.select("session", "close"), regimes=regimes, params=params, cycles=cycles,
        collection=collection, dead_letters=dead, health=dict(health), params_name=params_name,
        arms=arms, scoring_model=scoring_model, index_symbol=market[0],
        bars={"last_sync": uow.prices.last_run(), "waiting": waiting or []},
        models=models(uow, as_of))


def models(uow: UnitOfWork, as_of: date) -> list[ModelParams]:
    """Every declared scoring model with a param set of its own (not the engine's), what
    its producer declared and what was learned of it, as of `as_of`."""
    out = []
    sets = uow.conn.execute(
        "SELECT DISTINCT name, scoring_model FROM params_history WHERE scoring_model <> "
        "'native' AND as_of <= %s ORDER BY scoring_model", (as_of,)).fetchall()
    for name, scoring_model in sets:
        model_name, _, version = scoring_model.partition(" ")
        declaration = next((m for m in shipped() if (m.name, m.version) == (
            model_name, version)), None) or uow.models.get(model_name, version)
        if declaration is None:
            continue
        versions = [v for v in uow.params.versions(name) if v.mode_since <= as_of
                    + timedelta(days=1)]
        rows = [r for r in uow.params.history(name) if r["as_of"] <= as_of]
        live = next(((v.version, v.params) for v in reversed(versions) if v.mode == "live"),
                    None)
        flight = next(((v.version, v.mode, v.params) for v in reversed(versions)
                       if v.mode in ("shadow", "canary")), None)
        shown = flight[0] if flight else live[0] if live else None
        fit = next(((r["provenance"] or {}).get("fit") or {} for r in rows
                    if r["version"] == shown and r["mode"] == "shadow"), {})
        out.append(ModelParams(
            scoring_model=scoring_model, name=name, kind=declaration.kind,
            declared=declared_params(declaration), live=live, proposed=flight,
            notes=list(fit.get("tiers") or []), evidence=fit,
            read_by_producer=(declaration.read_by_producer
                              if isinstance(declaration, TieredModel) else []),
            history=pl.DataFrame([{k: r[k] for k in ("version", "mode", "as_of")}
                                  for r in rows],
                                 schema={"version": pl.Int64, "mode": pl.Utf8,
                                         "as_of": pl.Date}),
            tables=(len(declaration.factors) + len(declaration.bonuses)
                    if isinstance(declaration, TieredModel) else 0),
            arms=_frame(uow.conn, _ARMS, _ARMS_SCHEMA, as_of=as_of, model=scoring_model)))
    return out
