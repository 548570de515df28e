"""Apply the numbered SQL migrations in order, atomically (one transaction per run), once."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.abc import Traversable
from importlib.resources import files
from pathlib import Path

from amc_learning.store.database import Database

#: The migrations, shipped as package data (read through importlib.resources, so an
#: installed wheel finds them as the repository does).
MIGRATIONS = files("amc_learning.store") / "sql"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
#: Serialises concurrent runners (two consumers starting at once); any constant will do.
_LOCK_KEY = 0x4C45_4152  # "LEAR"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    """An applied migration was edited, or the database is newer than this code."""


def load_migrations(directory: Traversable | Path = MIGRATIONS) -> list[Migration]:
    """The migrations in `directory`, ordered by version; file names must be NNN_name.sql."""
    found = []
    for path in sorted((p for p in directory.iterdir() if p.name.endswith(".sql")),
                       key=lambda p: p.name):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_lower_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    if not found:
        raise MigrationError(f"no migrations in {directory}: the installation is incomplete")
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def migrate(db: Database, migrations: list[Migration] | None = None) -> list[Migration]:
    """Apply what is missing; return what was applied now. Safe to run twice or concurrently."""
    migrations = load_migrations() if migrations is None else migrations
    applied_now = []
    with db.connect() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        history = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        done: dict[int, str] = dict(history)
        _check_history(done, migrations)
        for migration in migrations:
            if migration.version in done:
                continue
            with conn.transaction():
                conn.execute(migration.sql)  # type: ignore[arg-type]  # trusted files of ours
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied_now.append(migration)
    return applied_now


def schema_version(db: Database) -> int:
    """The highest applied migration (0 for an empty database)."""
    with db.unit_of_work() as uow:
        conn = uow.conn
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return 0
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0


def _check_history(done: dict[int, str], migrations: list[Migration]) -> None:
    known = {m.version: m for m in migrations}
    for version, checksum in done.items():
        if version not in known:
            raise MigrationError(
                f"database has migration {version:03d}, unknown to this code: upgrade the engine"
            )
        if known[version].checksum != checksum:
            raise MigrationError(
                f"migration {version:03d}_{known[version].name} changed after it was applied; "
                "add a new migration instead of editing an old one"
            )
