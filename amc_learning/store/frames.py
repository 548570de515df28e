"""Read what the pipeline stored into the frames the analyzers take (the learner's input).

`decision_frame`: one row per decision with an outcome — real and synthetic (candidates
never decided on) — with the scoring model that informed it (`scoring_model`, "name
version": its own, else its candidate's; "native" for the engine's own six-component
contract v1; "unscored" for a v2 decision no model informed, a held position's HOLD),
its discovery features spread into columns (and the six discovery score components as
`score_<component>`, its candidate's where it carries none), the raw returns, each named
by its length in sessions (`return_{n}d` for the tracker's `LEARNING_OUTCOME_HORIZONS`,
stored as return_1d, return_7d and return_30d), and the side-adjusted ones (HOLD, IGNORE
and candidates count as bought, as the outcome tracker measures them), and `win` = the
side-adjusted return over `horizon` > 0. A feature named like one of those columns (a
producer's `return_5d`, a past return) is spread as `feature_<name>`.
`index_frame`: the index bars (and the VIX close where stored) for the regime detector.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from amc_learning.intelligence.horizon import Horizons, Market, length, side_returns
from amc_learning.schemas.models import COMPONENT, SENT

#: A decision that carries no scores or names no model takes its candidate's (same run,
#: same symbol). Inside COALESCE the lookup runs only for such a decision: the engine's
#: own (v1) decisions carry their scores and pay nothing for it.
_CANDIDATE = ("(SELECT {} FROM discovery_candidates c"
              " WHERE c.symbol = d.symbol AND c.run_id = d.discovery_run_id LIMIT 1)")
_SCORES = """CASE WHEN c.score_volume_momentum IS NOT NULL THEN jsonb_build_object(
    'volume_momentum', c.score_volume_momentum, 'squeeze', c.score_squeeze,
    'catalyst', c.score_catalyst, 'options', c.score_options,
    'technical', c.score_technical, 'sentiment', c.score_sentiment) END"""
#: The scoring model a decision `d` was informed by ("name version"): its own, the
#: engine's ("native") for a v1 decision, else its candidate's, else "unscored".
DECISION_MODEL = f"""COALESCE(d.scoring_model || ' ' || d.scoring_version,
                CASE WHEN d.schema_version = 1 THEN 'native' END,
                {_CANDIDATE.format("c.scoring_model || ' ' || c.scoring_version")},
                'unscored')"""
_DECISIONS = f"""
SELECT d.decision_id, (d.decided_at AT TIME ZONE 'UTC')::date AS session, d.symbol,
       d.decision_type, d.recommendation_source AS decision_source,
       d.confidence_score AS confidence, d.is_synthetic, d.discovery_features AS features,
       COALESCE(d.discovery_scores, {_CANDIDATE.format(_SCORES)}) AS scores,
       {DECISION_MODEL} AS scoring_model,
       o.return_1d, o.return_7d, o.return_30d, o.days_held, o.max_adverse_excursion,
       o.thesis_accuracy_score, o.outcome_type
FROM learning_decisions d JOIN learning_outcomes o ON o.decision_id = d.id
ORDER BY d.decided_at, d.decision_id
"""
_SCHEMA = {
    "decision_id": pl.Utf8, "session": pl.Date, "symbol": pl.Utf8, "decision_type": pl.Utf8,
    "decision_source": pl.Utf8, "confidence": pl.Float64, "is_synthetic": pl.Utf8,
    "features": pl.Utf8, "scores": pl.Utf8, "scoring_model": pl.Utf8,
    "return_1d": pl.Float64, "return_7d": pl.Float64, "return_30d": pl.Float64,
    "days_held": pl.Int64, "max_adverse_excursion": pl.Float64,
    "thesis_accuracy_score": pl.Float64, "outcome_type": pl.Utf8,
}


class Frames:
    """What the learner reads, on one unit of work's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def decisions(self, horizons: Horizons, horizon: int | None = None) -> pl.DataFrame:
        """The `decision_frame` of what is stored (module docstring)."""
        return decision_frame(self._copy(_DECISIONS), horizons, horizon)

    def candidates(self, as_of: date, days: int = 30) -> pl.DataFrame:
        """The candidates of the `days` calendar days up to `as_of` (its whole day), oldest
        first: producer, scoring_model, raw_score and its declared scale, and a column per
        feature (null where a candidate lacks it): what `intelligence.quality.stream_health`
        watches."""
        until = datetime.combine(as_of + timedelta(days=1), time(0), UTC)
        records = self.conn.cursor(row_factory=dict_row).execute(
            _CANDIDATES, {"since": until - timedelta(days=days + 1), "until": until}).fetchall()
        return candidate_frame(records)

    def scored(self, name: str, version: str, horizons: Horizons,
               factors: Sequence[str] = (), components: Sequence[str] = ()) -> pl.DataFrame:
        """The `scored_frame` of the candidates the model `name` `version` scored, with
        the tier sent for each of `factors` and the value of each of `components`, read
        out of their JSON by the database (decoding every row's nested JSON here took
        half the cycle of a tiered model at 500k candidates)."""
        columns = [sql.SQL("c.detail->'tiers'->{}->>'tier' AS {}").format(
            sql.Literal(f), sql.Identifier(SENT.format(f))) for f in factors]
        columns += [sql.SQL("(c.detail->'components'->{}->>'value')::float8 AS {}").format(
            sql.Literal(c), sql.Identifier(COMPONENT.format(c))) for c in components]
        query = sql.SQL(_SCORED).format(columns=sql.SQL("").join(
            sql.SQL(", ") + column for column in columns)).as_string(self.conn)
        return scored_frame(self._copy(query, {"name": name, "version": version}), horizons,
                            factors, components)

    def scores_of(self, name: str, version: str, limit: int = 100_000) -> list[dict[str, Any]]:
        """The newest `limit` candidates of model `name` `version`: raw_score, raw_low,
        raw_high, passed and components (name -> value): what the model's own rule made of
        each (`intelligence.inference` reads a declaration from them)."""
        records = self.conn.cursor(row_factory=dict_row).execute(
            "SELECT raw_score, raw_low, raw_high, passed, detail->'components' AS components"
            " FROM discovery_candidates WHERE scoring_model = %s AND scoring_version = %s"
            " ORDER BY id DESC LIMIT %s", (name, version, limit)).fetchall()
        for r in records:
            r["components"] = {k: v.get("value") for k, v in (r["components"] or {}).items()
                               if isinstance(v, dict)}
        return records

    def index(self, market: Market) -> pl.DataFrame:
        """The index's closes (and the VIX close where stored) for the regime detector."""
        query = ("SELECT i.session, i.close, v.close AS vix FROM price_bars i"
                 " LEFT JOIN price_bars v ON v.session = i.session AND v.symbol = %s"
                 " WHERE i.symbol = %s ORDER BY i.session")
        index_symbol, vix_symbol = market
        records = self.conn.cursor(row_factory=dict_row).execute(
            query, (vix_symbol, index_symbol)).fetchall()
        schema = {"session": pl.Date, "close": pl.Float64, "vix": pl.Float64}
        return pl.DataFrame(records, schema=schema)

    def last_session(self, index_symbol: str) -> date | None:
        """The newest session with an index bar: the learning clock."""
        row = self.conn.execute("SELECT max(session) FROM price_bars WHERE symbol = %s",
                                (index_symbol,)).fetchone()
        return row[0] if row else None

    def _copy(self, query: str, params: dict[str, Any] | None = None) -> io.BytesIO:
        buffer = io.BytesIO()
        with self.conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER)",
                                     params) as copy:
            for chunk in copy:
                buffer.write(chunk)
        return buffer


def decision_frame(buffer: io.BytesIO, horizons: Horizons,
                   horizon: int | None = None) -> pl.DataFrame:
    """The decisions' CSV (COPY) as the frame the analyzers read. `horizons`: the tracker's
    (`Settings.horizons`); `horizon`, the one `win` is judged by, is one of them (default:
    the middle one). The rows stream as CSV into polars, which also parses the JSON
    columns: on a million decisions this takes a fraction of the memory of Python rows
    (the learning cycle's peak RSS went from 6.9 GB to the figure in BENCHMARKS.md)."""
    horizon = horizons[1] if horizon is None else horizon
    if horizon not in horizons:
        raise ValueError(f"the horizon {horizon} is not one the outcome tracker measures "
                         f"({', '.join(map(str, horizons))}: LEARNING_OUTCOME_HORIZONS)")
    if buffer.tell() == 0:
        return pl.DataFrame()
    buffer.seek(0)
    frame = pl.read_csv(buffer, schema=_SCHEMA)
    if frame.is_empty():
        return pl.DataFrame()
    frame = frame.rename(dict(zip(("return_1d", "return_7d", "return_30d"),
                                  (f"return_{n}d" for n in horizons), strict=True)))
    frame = frame.with_columns(pl.col("is_synthetic") == "t")
    features = _spread(frame["features"])
    features = features.rename({  # a feature named like a frame column keeps its value
        c: f"feature_{c}" for c in features.columns
        if c in frame.columns or c == "win" or length(c) is not None})
    scores = _spread(frame["scores"])
    frame = pl.concat([frame.drop("features", "scores"),
                       features.select(pl.all().cast(pl.Float64)),
                       scores.select(pl.all().cast(pl.Float64).name.prefix("score_"))],
                      how="horizontal")
    side = pl.when(pl.col("decision_type") == "SELL").then(-1.0).otherwise(1.0)
    returns = [c for c in frame.columns if c.startswith("return_")]
    return frame.with_columns(
        *[(side * pl.col(c)).alias(f"side_{c}") for c in returns],
    ).with_columns(
        pl.when(pl.col(side_returns(horizon)).is_null()).then(None)
        .otherwise(pl.col(side_returns(horizon)) > 0).alias("win")
    )


def _spread(column: pl.Series) -> pl.DataFrame:
    """A column of JSON objects as one column per key (null where a row lacks it)."""
    objects = column.fill_null("{}")
    if (objects == "{}").all():
        return pl.DataFrame()
    return objects.str.json_decode(infer_schema_length=None).struct.unnest()


#: Every candidate a model scored with its decision (its own, or the synthetic IGNORE of
#: one never decided on) and that decision's outcome; the first decision where several
#: name the same run.
_SCORED = """
SELECT DISTINCT ON (c.id) (d.decided_at AT TIME ZONE 'UTC')::date AS session, c.symbol,
       d.decision_type, d.is_synthetic, c.features,
       o.return_1d, o.return_7d, o.return_30d{columns}
FROM discovery_candidates c
JOIN learning_decisions d ON d.discovery_run_id = c.run_id AND d.symbol = c.symbol
JOIN learning_outcomes o ON o.decision_id = d.id
WHERE c.scoring_model = %(name)s AND c.scoring_version = %(version)s
ORDER BY c.id, d.decided_at
"""
def scored_frame(buffer: io.BytesIO, horizons: Horizons, factors: Sequence[str] = (),
                 components: Sequence[str] = ()) -> pl.DataFrame:
    """The candidates of one scoring model (`_SCORED`'s CSV), one row each: session,
    symbol, decision_type, is_synthetic, the tier the producer sent for each of `factors`
    (`SENT`), the value of each of `components` on its scale (`COMPONENT`), its features
    (Float64) and the raw returns named by the tracker's `horizons`.
    `intelligence.cycle`'s learning frames read a model's tiers or components from it."""
    if buffer.tell() == 0:
        return pl.DataFrame()
    buffer.seek(0)
    frame = pl.read_csv(buffer, schema={
        "session": pl.Date, "symbol": pl.Utf8, "decision_type": pl.Utf8,
        "is_synthetic": pl.Utf8, "features": pl.Utf8,
        "return_1d": pl.Float64, "return_7d": pl.Float64, "return_30d": pl.Float64,
        **{SENT.format(f): pl.Utf8 for f in factors},
        **{COMPONENT.format(c): pl.Float64 for c in components}})
    if frame.is_empty():
        return pl.DataFrame()
    frame = frame.rename(dict(zip(("return_1d", "return_7d", "return_30d"),
                                  (f"return_{n}d" for n in horizons), strict=True)))
    features = _spread(frame["features"])
    features = features.rename({c: f"feature_{c}" for c in features.columns  # as in
                                if c in frame.columns or length(c) is not None})  # decisions
    return pl.concat([frame.drop("features").with_columns(pl.col("is_synthetic") == "t"),
                      features.select(pl.all().cast(pl.Float64))], how="horizontal")


_CANDIDATES = """
SELECT producer, COALESCE(scoring_model || ' ' || scoring_version, 'native') AS scoring_model,
       raw_score, raw_low, raw_high, features::text AS features
FROM discovery_candidates
WHERE discovered_at >= %(since)s AND discovered_at < %(until)s
ORDER BY discovered_at, event_id
"""


def candidate_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Candidate rows (`_CANDIDATES`) with their features spread into columns."""
    schema = {"producer": pl.Utf8, "scoring_model": pl.Utf8, "raw_score": pl.Float64,
              "raw_low": pl.Float64, "raw_high": pl.Float64, "features": pl.Utf8}
    frame = pl.DataFrame(records, schema=schema)
    if frame.is_empty():
        return frame
    features = _spread(frame["features"])
    features = features.rename({c: f"feature_{c}" for c in features.columns
                                if c in frame.columns})
    return pl.concat([frame.drop("features"), features.select(pl.all().cast(pl.Float64))],
                     how="horizontal")


_NOT_FEATURES = {"confidence", "days_held", "max_adverse_excursion", "thesis_accuracy_score"}


def feature_columns(decisions: pl.DataFrame) -> list[str]:
    """The discovery features of a `decision_frame` the analyzers study (not the outcome
    columns, not the six score components)."""
    return [
        c for c, t in decisions.schema.items()
        if t == pl.Float64 and c not in _NOT_FEATURES and length(c) is None
        and not c.startswith("score_")
    ]
