"""A learning pass stored in the real PostgreSQL: stamped, complete, reproducible."""

from __future__ import annotations

import itertools
from dataclasses import replace

import polars as pl
import pytest

from amc_learning.intelligence.analysis import AnalysisConfig, analyze
from amc_learning.simulator.research import ResearchConfig, simulate_research
from amc_learning.store.database import Database
from amc_learning.store.migrations import migrate
from tests.integration.helpers import rows

pytestmark = pytest.mark.integration

TABLES = (
    "pattern_performance",
    "failure_modes",
    "calibration_snapshots",
    "feature_importance",
    "change_points",
    "regime_history",
)


def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every stored value but the serial ids and the write time."""
    out = {}
    for table in TABLES:
        columns = [
            c
            for (c,) in rows(
                url,
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = %s ORDER BY ordinal_position",
                table,
            )
            if c not in ("id", "last_updated")
        ]
        out[table] = sorted(rows(url, f"SELECT {', '.join(columns)} FROM {table}"))
    return out


def test_a_pass_is_stored_with_its_window_and_rerunning_it_changes_nothing(database_url):
    migrate(Database(database_url))
    world = simulate_research(ResearchConfig(seed=4, symbols=60, sessions=320))
    cfg = AnalysisConfig(features=world.truth.features, signature_features=("crowding", "noise_1"))
    as_of = world.decisions["session"].unique().sort()[-1]
    first = analyze(world.decisions, world.index, as_of, cfg)
    db = Database(database_url)
    with db.unit_of_work() as uow:
        written = uow.results.store(first)
    before = snapshot(database_url)
    assert all(written[t] == len(before[t]) and written[t] > 0 for t in TABLES), written
    again = analyze(world.decisions, world.index, as_of, cfg)  # same inputs, a new pass
    with db.unit_of_work() as uow:
        uow.results.store(again)
    assert snapshot(database_url) == before

    stamps = rows(
        database_url, "SELECT DISTINCT as_of, window_start, window_end FROM pattern_performance"
    )
    assert stamps == [(as_of, *first.window)]
    [(failures,)] = rows(
        database_url, "SELECT count(*) FROM pattern_performance WHERE is_failure_mode"
    )
    losers = first.failure_modes.filter(pl.col("kind") != "overconfidence")
    assert failures == losers["signature"].n_unique()
    [(knots,)] = rows(
        database_url,
        "SELECT knots FROM calibration_snapshots"
        " WHERE grouping = 'decision_source' AND group_value = 'thesis'",
    )
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(knots))  # monotone map


def test_two_scoring_models_keep_their_own_rows_of_one_as_of_date(database_url):
    """A pass over model B's decisions stores beside model A's of the same as-of date (it
    used to replace them); a rerun of A replaces only A's; the API's reads take a model,
    or the newest pass's."""
    migrate(Database(database_url))
    world = simulate_research(ResearchConfig(seed=5, symbols=40, sessions=300))
    cfg = AnalysisConfig(features=world.truth.features, signature_features=("crowding",))
    as_of = world.decisions["session"].unique().sort()[-1]
    base = analyze(world.decisions, world.index, as_of, cfg)
    a = replace(base, scoring_model="amc-scanner 3.3.1")
    b = replace(base, scoring_model="native")
    db = Database(database_url)
    with db.unit_of_work() as uow:
        uow.results.store(a)
        uow.results.store(b)
    counts = dict(rows(database_url, "SELECT scoring_model, count(*) FROM pattern_performance"
                                     " WHERE as_of = %s GROUP BY 1", as_of))
    assert counts == {"amc-scanner 3.3.1": len(base.patterns), "native": len(base.patterns)}
    with db.unit_of_work() as uow:
        uow.results.store(replace(a, patterns=a.patterns.head(1)))  # A again, one pattern
    counts = dict(rows(database_url, "SELECT scoring_model, count(*) FROM pattern_performance"
                                     " WHERE as_of = %s GROUP BY 1", as_of))
    assert counts == {"amc-scanner 3.3.1": 1, "native": len(base.patterns)}
    with db.unit_of_work() as uow:
        of_a = uow.insights.patterns(1000, "amc-scanner 3.3.1")
        of_b = uow.insights.calibration("native")
        newest = uow.insights.patterns(1000)
        unknown = uow.insights.patterns(1000, "alphastack 4.1")
    assert len(of_a) == 1 and {r["scoring_model"] for r in of_a} == {"amc-scanner 3.3.1"}
    assert of_b and {r["scoring_model"] for r in of_b} == {"native"}
    assert {r["scoring_model"] for r in newest} == {"amc-scanner 3.3.1"}  # stored last
    assert unknown == []
