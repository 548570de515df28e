"""The learner's full daily cycle (`service.cycle.run_cycle`) on 100k and 1M decisions.

The decisions and their outcomes come from the research world (`simulator.research`:
planted patterns, regimes and a miscalibrated confidence), written once into a database
of their own (`amc_bench_cycle_<n>`) and reused by later runs while the generator is the
same. Each cycle runs in a fresh process (`python -m bench.cycle RUN ...`) so that its
peak RSS is its own; a new params name per run keeps the cycles independent (a tiered
model's set has a fixed name: its history is cleared before each run instead).

With two models (`amc_bench_cycle_<n>_two`), half the decisions are the research world's
(the engine's own contract) and half are AMC-Trader scanner 3.3.1's candidates from the
tiered world (`simulator.tiered`), each never decided on, with its tiers as the producer
sends them: one cycle learns both, each its own param set.

`backtest` walks the learner's loop over the one-model database's whole history (a cycle
every `BACKTEST_EVERY` sessions), timed against the cycle of the same run.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg
from psycopg.conninfo import make_conninfo

from amc_learning.entrypoints.bootstrap import with_signing_key
from amc_learning.entrypoints.supervise import settings_env
from amc_learning.intelligence.adaptive import COMPONENTS
from amc_learning.schemas.models import UNTIERED
from amc_learning.settings import Settings
from amc_learning.simulator.research import ResearchConfig, simulate_research
from amc_learning.simulator.tiered import TieredConfig, simulate_tiered
from amc_learning.store.database import Database
from amc_learning.store.migrations import migrate

#: Bump when the generated data change, so cached databases are rebuilt (a database of
#: two models has a name of its own).
GENERATOR = 1
SYMBOLS = 200
#: the backtest's cycle cadence: weekly, as `make run` paces the learner
BACKTEST_EVERY = 5

_STAGE = """
CREATE UNLOGGED TABLE bench_stage (
    id bigint, session date, symbol text, decision_type text, source text,
    confidence float8, features jsonb, scores jsonb,
    return_1d float8, return_7d float8, return_30d float8)
"""
_DECISIONS = """
INSERT INTO learning_decisions (id, event_id, decision_id, symbol, decision_type,
    recommendation_source, confidence_score, price_at_decision, market_time,
    discovery_scores, discovery_features, decided_at, producer, schema_version)
SELECT id, gen_random_uuid(), 'bench-' || id, symbol, decision_type, source, confidence,
       100.0, 'regular', scores, features, session + time '15:00' AT TIME ZONE 'UTC',
       'bench', 1
FROM bench_stage
"""
_OUTCOMES = """
INSERT INTO learning_outcomes (decision_id, symbol, outcome_type, return_pct, days_held,
    return_1d, return_7d, return_30d, max_adverse_excursion, sessions_elapsed)
SELECT id, symbol, CASE WHEN return_30d IS NULL THEN 'open' ELSE 'matured' END,
       coalesce(return_30d, return_7d, return_1d), 30, return_1d, return_7d, return_30d,
       least(0.0, coalesce(return_1d, 0.0)), 30
FROM bench_stage
"""


_TIERED_STAGE = """
CREATE UNLOGGED TABLE bench_tiered (
    id bigint, session date, symbol text, tiers jsonb, return_7d float8)
"""
_TIERED_CANDIDATES = """
INSERT INTO discovery_candidates (event_id, run_id, symbol, rank, composite_score, passed,
    price, discovered_at, producer, schema_version, scoring_model, scoring_version, detail)
SELECT gen_random_uuid(), 'scan-' || session, symbol, 1, 0.5, false, 10.0,
       session + time '14:30' AT TIME ZONE 'UTC', 'amc-trader', 2, 'amc-scanner', '3.3.1',
       jsonb_build_object('tiers', tiers)
FROM bench_tiered
"""
_TIERED_DECISIONS = """
INSERT INTO learning_decisions (id, event_id, decision_id, symbol, decision_type,
    recommendation_source, confidence_score, price_at_decision, market_time,
    discovery_run_id, discovery_features, decided_at, producer, schema_version, is_synthetic,
    scoring_model, scoring_version)
SELECT id, gen_random_uuid(), 'cand:scan-' || session || ':' || symbol, symbol, 'IGNORE',
       'discovery', 0.5, 10.0, 'premarket', 'scan-' || session, '{}',
       session + time '14:30' AT TIME ZONE 'UTC', 'amc-trader', 2, true, 'amc-scanner', '3.3.1'
FROM bench_tiered
"""
_TIERED_OUTCOMES = """
INSERT INTO learning_outcomes (decision_id, symbol, outcome_type, is_counterfactual,
    return_pct, days_held, return_7d, sessions_elapsed)
SELECT id, symbol, 'open', true, return_7d, 7, return_7d, 7 FROM bench_tiered
"""


def database(admin_url: str, decisions: int, say: Any = print, two: bool = False) -> str:
    """The URL of a database holding `decisions` decisions with outcomes (built if missing);
    `two`: half of them of a second scoring model (the module's description)."""
    name = f"amc_bench_cycle_{decisions}" + ("_two" if two else "")
    url = make_conninfo(admin_url, dbname=name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists and _generator(url) == GENERATOR:
        migrate(Database(url))  # built by an older engine: its schema, brought up to date
        return url
    say(f"  building {decisions:,} decisions with outcomes into {name} (once; cached)")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate(Database(url))
    _fill(url, decisions // 2 if two else decisions)
    if two:
        _fill_tiered(url, decisions - decisions // 2)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url


def _generator(url: str) -> int | None:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT generator FROM bench_generated").fetchone()
            return int(row[0]) if row else None
    except psycopg.Error:
        return None


def _fill(url: str, decisions: int) -> None:
    world = simulate_research(ResearchConfig(seed=5, symbols=SYMBOLS,
                                             sessions=max(60, decisions // SYMBOLS)))
    frame = world.decisions.head(decisions)
    features = [*world.truth.bull_features, *world.truth.bear_features,
                *world.truth.noise_features, world.truth.losing_feature]
    rng = np.random.default_rng(5)
    scores = pl.DataFrame({c: rng.uniform(0, 1, len(frame)) for c in COMPONENTS})
    stage = pl.DataFrame({
        "id": np.arange(1, len(frame) + 1),
        "session": frame["session"],
        "symbol": frame["symbol"],
        "decision_type": frame["decision_type"],
        "source": frame["decision_source"],
        "confidence": frame["confidence"].clip(0.0, 1.0),
        "features": frame.select(pl.struct(features).struct.json_encode())[:, 0],
        "scores": scores.select(pl.struct(COMPONENTS).struct.json_encode())[:, 0],
        "return_1d": frame["return_1d"], "return_7d": frame["return_7d"],
        "return_30d": frame["return_30d"],
    })
    index = world.index.with_columns(pl.col("session").cast(pl.Date))
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute(_STAGE)
        _copy(conn, "bench_stage", stage)
        conn.execute(_DECISIONS)
        conn.execute(_OUTCOMES)
        conn.execute("SELECT setval('learning_decisions_id_seq', %s)", (len(frame),))
        conn.execute("CREATE TEMP TABLE bench_index (session date, close float8)")
        _copy(conn, "bench_index", index.select("session", "close"))
        conn.execute("INSERT INTO price_bars (event_id, symbol, session, open, high, low, close,"
                     " volume, producer) SELECT gen_random_uuid(), '^IXIC', session, close,"
                     " close, close, close, 0, 'bench' FROM bench_index")
        conn.execute("DROP TABLE bench_stage")
        conn.execute("CREATE TABLE bench_generated (generator int, decisions bigint)")
        conn.execute("INSERT INTO bench_generated VALUES (%s, %s)", (GENERATOR, len(frame)))


def _fill_tiered(url: str, candidates: int) -> None:
    """`candidates` of AMC-Trader's scanner 3.3.1 from the tiered world, on the research
    world's calendar, after the decisions already there."""
    world = simulate_tiered(TieredConfig(seed=5, symbols=SYMBOLS,
                                         sessions=max(60, candidates // SYMBOLS)))
    frame = world.head(candidates)
    tiers = [c for c in frame.columns if c.startswith("tier:")]
    sent = frame.select(pl.struct(
        pl.when(pl.col(c).is_not_null() & (pl.col(c) != UNTIERED))
        .then(pl.struct(pl.col(c).alias("tier"))).alias(c.removeprefix("tier:"))
        for c in tiers).struct.json_encode().str.replace_all(r'"[a-z_]+":null,?', "")
        .str.replace(",}", "}", literal=True))[:, 0]
    with psycopg.connect(url) as conn, conn.transaction():
        first = conn.execute("SELECT coalesce(max(id), 0) FROM learning_decisions").fetchone()
        start = int(first[0]) if first else 0
        stage = pl.DataFrame({"id": np.arange(start + 1, start + len(frame) + 1),
                              "session": frame["session"], "symbol": frame["symbol"],
                              "tiers": sent, "return_7d": frame["return_7d"]})
        conn.execute(_TIERED_STAGE)
        _copy(conn, "bench_tiered", stage)
        conn.execute(_TIERED_CANDIDATES)
        conn.execute(_TIERED_DECISIONS)
        conn.execute(_TIERED_OUTCOMES)
        conn.execute("SELECT setval('learning_decisions_id_seq', %s)", (start + len(frame),))
        conn.execute("DROP TABLE bench_tiered")
        conn.execute("UPDATE bench_generated SET decisions = decisions + %s", (len(frame),))


def _copy(conn: psycopg.Connection[Any], table: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, null_value="")
    with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


def timed_cycle(settings: Settings, database_url: str,
                scoring_model: str | None = None) -> dict[str, float]:
    """One daily cycle in a fresh process (of `scoring_model` only, else of every model
    active): wall seconds of the cycle and the peak RSS."""
    with psycopg.connect(database_url, autocommit=True) as conn:  # a tiered set's name is
        for table in ("learning_cycles", "params_history"):  # fixed: start it afresh
            conn.execute(f"DELETE FROM {table} WHERE name LIKE 'amc-scanner:%'")
    run = with_signing_key(settings.with_overrides(
        database_url=database_url, params_name=f"bench-{uuid.uuid4().hex[:8]}",
        scoring_model=scoring_model))
    out = subprocess.run([sys.executable, "-m", "bench.cycle", "RUN"], env=settings_env(run),
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the cycle failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def timed_backtest(settings: Settings, database_url: str) -> dict[str, float]:
    """`backtest` of the whole stored history, a cycle every `BACKTEST_EVERY` sessions, in
    a fresh process: wall seconds and the peak RSS."""
    run = settings.with_overrides(database_url=database_url)
    out = subprocess.run([sys.executable, "-m", "bench.cycle", "BACKTEST"],
                         env=settings_env(run), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the backtest failed:\n{out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not `ru_maxrss`: Linux carries the parent's
    high-water mark across fork and exec into it, so a cycle started by a bench process
    that had grown to 1.4 GB (the ingest workload) reported 1.4 GB whatever it used."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: the peak RSS cannot be read here")


def _run() -> None:
    from amc_learning.entrypoints.bootstrap import bootstrap
    from amc_learning.service.cycle import run_cycle

    deps = bootstrap(Settings())
    with deps.db.unit_of_work() as uow:
        as_of: date | None = uow.frames.last_session(deps.settings.index_symbol)
    started = time.perf_counter()
    summary = run_cycle(deps, "daily", as_of)
    seconds = time.perf_counter() - started
    if not summary.get("ran"):
        raise SystemExit(f"the cycle did not run: {summary.get('reason')}")
    rss_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb,
                      "decisions": summary.get("decisions"),
                      "models": {s["scoring_model"]: s["decisions"]
                                 for s in summary.get("models", [summary])}}))


def _backtest() -> None:
    from amc_learning.entrypoints.bootstrap import bootstrap
    from amc_learning.service.backtest import backtest

    deps = bootstrap(Settings(), kafka=False)
    started = time.perf_counter()
    result = backtest(deps, every=BACKTEST_EVERY)
    print(json.dumps({"seconds": time.perf_counter() - started, "rss_mb": peak_rss_mb(),
                      "sessions": result["sessions"], "versions": len(result["versions"])}))


if __name__ == "__main__":
    if sys.argv[1:] == ["RUN"]:
        _run()
    elif sys.argv[1:] == ["BACKTEST"]:
        _backtest()
    else:
        raise SystemExit("python -m bench.cycle RUN|BACKTEST is run by `make bench` (see "
                         "bench/__main__.py)")
