"""Migration files are numbered, unique and ordered."""

from __future__ import annotations

import pytest

from amc_learning.store.migrations import MigrationError, load_migrations


def test_shipped_migrations_are_ordered_from_one():
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_badly_named_files_are_refused(tmp_path):
    (tmp_path / "1_init.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="NNN_lower_name"):
        load_migrations(tmp_path)


def test_an_empty_migrations_directory_is_an_incomplete_installation(tmp_path):
    with pytest.raises(MigrationError, match="incomplete"):
        load_migrations(tmp_path)
