"""Migrations apply once, in order, and refuse an edited history."""

from __future__ import annotations

import dataclasses

import pytest

from amc_learning.store.database import Database
from amc_learning.store.migrations import MigrationError, load_migrations, migrate, schema_version
from tests.integration.helpers import rows

pytestmark = pytest.mark.integration


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
