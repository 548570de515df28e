"""The market-data bridge's SQL: what is tracked, which bars are known, its own ledger."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import psycopg

from amc_learning.intelligence.prices import Tracked

#: Decisions and never-decided candidates whose outcome can still change: no outcome yet,
#: open, or a live position entered and not closed (tracked until it closes).
TRACKED = """
SELECT d.symbol, (d.decided_at AT TIME ZONE 'UTC')::date AS day,
       COALESCE(f.entered, false) AND NOT COALESCE(o.position_closed, false) AS open_position
  FROM learning_decisions d
  LEFT JOIN learning_outcomes o ON o.decision_id = d.id
  LEFT JOIN LATERAL (SELECT bool_or(t.fill_type = 'ENTRY') AS entered
                       FROM learning_trades t
                      WHERE t.decision_id = d.decision_id AND t.mode = 'live') f ON true
 WHERE o.id IS NULL OR o.outcome_type = 'open'
    OR (COALESCE(f.entered, false) AND NOT o.position_closed)
"""


class PriceLedger:
    """The bridge's reads and its ledger, on one unit of work's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def tracked(self) -> list[Tracked]:
        return [Tracked(symbol, day, bool(open_position))
                for symbol, day, open_position in self.conn.execute(TRACKED).fetchall()]

    def known(self, symbols: Iterable[str], since: date,
              again: bool = False) -> dict[str, set[date]]:
        """Per symbol, the sessions from `since` with a stored bar or a ledger note (with
        `again`: only the published ones count; no_bar and refused ones are asked again)."""
        out: dict[str, set[date]] = {}
        rows = self.conn.execute(
            "SELECT symbol, session FROM price_bars WHERE symbol = ANY(%(s)s) AND session >= "
            "%(d)s UNION SELECT symbol, session FROM price_sync WHERE symbol = ANY(%(s)s) AND "
            "session >= %(d)s AND (state = 'published' OR NOT %(again)s)",
            {"s": list(symbols), "d": since, "again": again}).fetchall()
        for symbol, session in rows:
            out.setdefault(symbol, set()).add(session)
        return out

    def note(self, provider: str, state: str, rows: Iterable[tuple[str, date]],
             reason: str | None = None) -> int:
        """Write down sessions the bridge published (`published`), found no bar for
        (`no_bar`) or was refused for what they are (`refused`, with the reason); a
        published bar replaces an earlier note of another kind."""
        rows = list(rows)
        if not rows:
            return 0
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO price_sync (symbol, session, state, provider, reason)"
                " VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (symbol, session) DO UPDATE SET state = EXCLUDED.state,"
                " provider = EXCLUDED.provider, reason = EXCLUDED.reason, noted_at = now()"
                " WHERE price_sync.state <> 'published'",
                [(symbol, session, state, provider, reason) for symbol, session in rows])
        return len(rows)

    def record_run(self, provider: str, started: datetime, finished: datetime,
                   summary: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO price_sync_runs (provider, started_at, finished_at, summary)"
            " VALUES (%s, %s, %s, %s)",
            (provider, started, finished, json.dumps(summary, default=str)))

    def last_run(self) -> dict[str, Any] | None:
        """The newest sync's summary, with when it finished."""
        row = self.conn.execute("SELECT provider, finished_at, summary FROM price_sync_runs"
                                " ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else {"provider": row[0], "finished_at": row[1], **row[2]}
