"""Idempotent batch writes: COPY into a staging table, then INSERT ... ON CONFLICT DO NOTHING."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from consumers.rows import DEAD_LETTERS, Plan, Table, dead_letter_row


class BatchStore:
    """Writes plans through one connection; each `write` is one transaction."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._conn: psycopg.Connection[Any] | None = None
        self._staged: set[str] = set()

    def write(self, plan: Plan) -> dict[str, int]:
        """Store the rows and dead letters of `plan` atomically; return rows inserted per table.

        Rows already present (same event_id or natural key) are skipped, so a redelivered
        batch changes nothing. Raises psycopg errors; the caller's error policy decides.
        """
        conn = self._connection()
        inserted: dict[str, int] = {}
        try:
            with conn.transaction():
                for table, rows in plan.rows.items():
                    inserted[table.name] = self._insert(conn, table, rows)
                if plan.dead_letters:
                    rows = [dead_letter_row(d) for d in plan.dead_letters]
                    inserted[DEAD_LETTERS.name] = self._insert(conn, DEAD_LETTERS, rows)
        except psycopg.OperationalError:
            self.close()  # the connection is suspect: reconnect on the next attempt
            raise
        except Exception:
            self._staged.clear()  # staging tables created in the failed transaction are gone
            raise
        return inserted

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
                self._staged.clear()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
            self._staged.clear()
        return self._conn

    def _insert(
        self, conn: psycopg.Connection[Any], table: Table, rows: Sequence[tuple[Any, ...]]
    ) -> int:
        if not rows:
            return 0
        stage = sql.Identifier(f"_stage_{table.name}")
        columns = sql.SQL(", ").join(map(sql.Identifier, table.columns))
        if table.name not in self._staged:
            conn.execute(sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {stage} AS "
                "SELECT {columns} FROM {table} WITH NO DATA"
            ).format(stage=stage, columns=columns, table=sql.Identifier(table.name)))
            self._staged.add(table.name)
        with conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {stage} ({columns}) FROM STDIN").format(
                stage=stage, columns=columns,
            )) as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(sql.SQL(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} "
                "ON CONFLICT DO NOTHING"
            ).format(table=sql.Identifier(table.name), columns=columns, stage=stage))
            inserted = cur.rowcount
            cur.execute(sql.SQL("TRUNCATE {stage}").format(stage=stage))
        return inserted


def count_rows(database_url: str, tables: Sequence[str]) -> dict[str, int]:
    """Exact row counts of `tables` (for summaries and tests)."""
    with psycopg.connect(database_url) as conn:
        return {
            name: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            ).fetchone()[0]  # type: ignore[index]
            for name in tables
        }
