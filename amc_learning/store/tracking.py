"""What the outcome tracker's state is made of, read back from what persist stored: the
decisions and never-decided candidates whose outcome can still change, and the bars,
fills and catalysts of their symbol (`service.rebuild` turns them back into the facts the
tracker follows)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

#: A stored decision (real, or the synthetic row of a never-decided candidate) whose
#: outcome can still change: no outcome row yet, or one the tracker would not call final
#: (`tracking.outcome`: final = matured and (closed or never entered), or followed for
#: max_track sessions). A candidate is final once matured: it is never entered.
_OPEN = """
FROM learning_decisions d LEFT JOIN learning_outcomes o ON o.decision_id = d.id
WHERE (o.id IS NULL OR (o.sessions_elapsed < %(max_track)s AND (
    o.sessions_elapsed < %(longest)s
    OR (NOT d.is_synthetic AND NOT o.position_closed AND EXISTS (
        SELECT 1 FROM learning_trades t WHERE t.decision_id = d.decision_id
        AND t.fill_type = 'ENTRY' AND t.mode = 'live')))))
"""


class Tracking:
    """The tracker's open work as stored, on one unit of work's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def open_symbols(self, longest: int, max_track: int) -> list[tuple[str, int]]:
        """(symbol, its open decisions and candidates), symbol by symbol."""
        rows = self.conn.execute(
            f"SELECT d.symbol, count(*) {_OPEN} GROUP BY d.symbol ORDER BY d.symbol",
            {"longest": longest, "max_track": max_track}).fetchall()
        return [(r[0], int(r[1])) for r in rows]

    def open_of(self, symbol: str, longest: int, max_track: int) -> list[dict[str, Any]]:
        """The open decisions of `symbol`, oldest first: decision_id, is_synthetic, the day
        decided and the event it was stored from (`decision_data`, as received)."""
        return self.conn.cursor(row_factory=dict_row).execute(
            "SELECT d.decision_id, d.is_synthetic, (d.decided_at AT TIME ZONE 'UTC')::date"
            f" AS day, d.decision_data {_OPEN} AND d.symbol = %(symbol)s"
            " ORDER BY d.decided_at, d.decision_id",
            {"longest": longest, "max_track": max_track, "symbol": symbol}).fetchall()

    def bars(self, symbol: str, since: date) -> Iterator[dict[str, Any]]:
        """The stored bars of `symbol` from `since` on, as traded, oldest first."""
        yield from self.conn.cursor(row_factory=dict_row).execute(
            "SELECT event_id, symbol, session, open, high, low, close, volume, producer,"
            " split_ratio FROM price_bars WHERE symbol = %s AND session >= %s ORDER BY session",
            (symbol, since))

    def fills(self, decision_ids: list[str]) -> list[dict[str, Any]]:
        """The stored fills of `decision_ids`."""
        return self.conn.cursor(row_factory=dict_row).execute(
            "SELECT event_id, fill_id, trade_id, decision_id, symbol, fill_type, side,"
            " quantity, price, position_size_pct, exit_reason, executed_at, producer,"
            " schema_version, order_id, mode FROM learning_trades"
            " WHERE decision_id = ANY(%s) ORDER BY executed_at, fill_id",
            (decision_ids,)).fetchall()

    def catalysts(self, symbol: str, since: date) -> list[dict[str, Any]]:
        """The stored catalysts of `symbol` from `since` on."""
        return self.conn.cursor(row_factory=dict_row).execute(
            "SELECT event_id, symbol, session, kind, headline, magnitude, observed_at,"
            " producer FROM catalyst_events WHERE symbol = %s AND session >= %s"
            " ORDER BY session, event_id", (symbol, since)).fetchall()

    def sessions_before(self, symbol: str, day: date, n: int) -> date:
        """The first of the `n` stored sessions of `symbol` before `day` (a decision's
        volume baseline), else `day`."""
        row = self.conn.execute(
            "SELECT min(session) FROM (SELECT session FROM price_bars WHERE symbol = %s"
            " AND session < %s ORDER BY session DESC LIMIT %s) b", (symbol, day, n)).fetchone()
        return row[0] if row and row[0] is not None else day
