"""Migrations apply once, in order, and refuse an edited history."""

from __future__ import annotations

import dataclasses

import pytest

from amc_learning.schemas.models import shipped
from amc_learning.schemas.params import FALLBACK_PARAMS, TieredParams
from amc_learning.store.database import Database
from amc_learning.store.migrations import MigrationError, load_migrations, migrate, schema_version
from tests.integration.helpers import rows

pytestmark = pytest.mark.integration
SCANNER = next(m for m in shipped() if m.name == "amc-scanner")


def test_running_migrations_again_changes_nothing(database_url):
    before = rows(database_url, "SELECT version, checksum, applied_at FROM schema_migrations")
    assert migrate(Database(database_url)) == []
    assert rows(database_url,
                "SELECT version, checksum, applied_at FROM schema_migrations") == before
    assert schema_version(Database(database_url)) == len(load_migrations())
    tables = {r[0] for r in rows(database_url,
                                 "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"learning_decisions", "learning_outcomes", "pattern_performance",
            "discovery_candidates", "learning_trades", "price_bars", "dead_letters"} <= tables


def test_an_edited_migration_is_refused(database_url):
    edited = [dataclasses.replace(m, sql=m.sql + "\n-- edited") for m in load_migrations()]
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(Database(database_url), edited)


def test_a_database_newer_than_the_code_is_refused(database_url):
    with pytest.raises(MigrationError, match="upgrade the engine"):
        migrate(Database(database_url), [])


def test_results_stored_before_the_model_column_take_the_model_their_cycle_judged(
        empty_database):
    """Migration 010 on a database with a pass stored by 009's code: the rows of an as-of
    date a daily cycle ran for take its scoring model; the rest say 'unrecorded'."""
    url = empty_database("upgrade")
    db = Database(url)
    before = [m for m in load_migrations() if m.version < 10]
    after = [m for m in load_migrations() if m.version <= 10]
    migrate(db, before)
    with db.unit_of_work() as uow:
        uow.conn.execute("INSERT INTO learning_cycles (kind, as_of, name, summary) VALUES"
                         " ('daily', '2024-05-02', 'default',"
                         " '{\"scoring_model\": \"amc-scanner 3.3.1\"}')")
        for as_of in ("2024-05-02", "2024-05-03"):
            uow.conn.execute(
                "INSERT INTO change_points (as_of, window_start, window_end, stream,"
                " every_sessions, threshold) VALUES (%s, '2024-01-02', %s, 'mean', 5, 1.0)",
                (as_of, as_of))
    migrate(db, after)
    assert rows(url, "SELECT as_of::text, scoring_model FROM change_points ORDER BY 1") == [
        ("2024-05-02", "amc-scanner 3.3.1"), ("2024-05-03", "unrecorded")]
    with db.unit_of_work() as uow:  # the same as-of date and stream, another model: fine
        uow.conn.execute(
            "INSERT INTO change_points (scoring_model, as_of, window_start, window_end, stream,"
            " every_sessions, threshold) VALUES ('native', '2024-05-02', '2024-01-02',"
            " '2024-05-02', 'mean', 5, 1.0)")
    assert rows(url, "SELECT count(*) FROM change_points WHERE as_of = '2024-05-02'") == [(2,)]


def test_params_recorded_before_one_set_per_model_say_which_model_they_are_for(
        empty_database):
    """Migration 011 on a history recorded by 010's code: the engine's own params are
    'native', a points table names its model."""
    url = empty_database("upgrade11")
    db = Database(url)
    migrate(db, [m for m in load_migrations() if m.version < 11])
    table = TieredParams.declared(SCANNER)
    with db.unit_of_work() as uow:
        for name, params in (("default", FALLBACK_PARAMS), ("amc-scanner:3.3.1", table)):
            uow.conn.execute(
                "INSERT INTO params_history (name, version, mode, as_of, params, provenance,"
                " published) VALUES (%s, 1, 'shadow', '2024-05-02', %s, '{}', true)",
                (name, params.model_dump_json()))
    migrate(db, [m for m in load_migrations() if m.version <= 11])
    assert rows(url, "SELECT name, scoring_model FROM params_history ORDER BY 1") == [
        ("amc-scanner:3.3.1", "amc-scanner 3.3.1"), ("default", "native")]
    with db.unit_of_work() as uow:  # the store names the model of each row it records
        assert [v.params for v in uow.params.versions("amc-scanner:3.3.1")] == [table]
