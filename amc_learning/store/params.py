"""The params history (the params topic's outbox, migration 005) and the learning cycles."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

from amc_learning.intelligence.rollout import Version, versions_of


class ParamsHistory:
    """The params history and the cycles, on one unit of work's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def versions(self, name: str) -> list[Version]:
        """Each version's current mode, from the newest row of its history."""
        return versions_of(self.conn.execute(
            "SELECT version, mode, as_of, parent_version, params FROM params_history"
            " WHERE name = %s ORDER BY version, recorded_at, as_of", (name,),
        ).fetchall())

    def cycle_summary(self, kind: str, as_of: date, name: str) -> dict[str, Any] | None:
        """The stored summary of a cycle that already ran, or None."""
        done = self.conn.execute(
            "SELECT summary FROM learning_cycles WHERE kind = %s AND as_of = %s"
            " AND name = %s", (kind, as_of, name)).fetchone()
        return done[0] if done else None

    def record_cycle(self, kind: str, as_of: date, name: str,
                     entries: Iterable[dict[str, Any]], summary: dict[str, Any],
                     scoring_model: str = "native") -> None:
        """The history rows of a cycle of the set `name` (each published one with its
        exact message) and the cycle itself: in the unit of work's transaction, all of it
        or nothing."""
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO params_history (name, version, mode, canary_pct, as_of,"
                " parent_version, params, provenance, evidence, published, message,"
                " scoring_model) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(name, e["version"], e["mode"], e["canary_pct"], as_of, e["parent"],
                  e["params"].model_dump_json(), json.dumps(e["provenance"], default=str),
                  json.dumps(e["evidence"], default=str), e["publish"], e.get("message"),
                  scoring_model)
                 for e in entries],
            )
        self.conn.execute("INSERT INTO learning_cycles (kind, as_of, name, summary)"
                          " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                          (kind, as_of, name, json.dumps(summary, default=str)))

    def unsent(self) -> list[tuple[str, int, str, str]]:
        """(set, version, mode, message JSON) recorded but not yet sent, of every set,
        oldest first."""
        rows = self.conn.execute(
            "SELECT name, version, mode, message FROM params_history WHERE published"
            " AND sent_at IS NULL AND message IS NOT NULL ORDER BY recorded_at, name, version"
        ).fetchall()
        return [(name, version, mode, json.dumps(message))
                for name, version, mode, message in rows]

    def mark_sent(self, name: str, version: int, mode: str) -> None:
        self.conn.execute("UPDATE params_history SET sent_at = now() WHERE name = %s"
                          " AND version = %s AND mode = %s", (name, version, mode))

    def history(self, name: str) -> list[dict[str, Any]]:
        """The params history of a set, oldest first."""
        return self.conn.cursor(row_factory=dict_row).execute(
            "SELECT version, mode, canary_pct, as_of, parent_version, published, provenance,"
            " evidence FROM params_history WHERE name = %s ORDER BY recorded_at, version",
            (name,),
        ).fetchall()

    def settled(self, session: date, quiet_s: float) -> bool:
        """True once nothing landed for `quiet_s`: neither a bar of `session` nor an outcome."""
        row = self.conn.execute(
            "SELECT greatest((SELECT max(created_at) FROM price_bars WHERE session = %s),"
            " (SELECT max(updated_at) FROM learning_outcomes)) < now() - %s * interval '1 s'",
            (session, quiet_s)).fetchone()
        return bool(row and row[0])
