"""The figures the main job and `status` print: rows stored, outcomes by state, params and
cycles, collection over a span."""

from __future__ import annotations

import time
from typing import Any

import psycopg

#: Rows that stand for produced events (synthetic decisions of unpicked candidates excluded).
STORED_QUERIES = {
    "learning_decisions": "SELECT count(*) FROM learning_decisions WHERE NOT is_synthetic",
    "discovery_candidates": "SELECT count(*) FROM discovery_candidates",
    "learning_trades": "SELECT count(*) FROM learning_trades",
    "price_bars": "SELECT count(*) FROM price_bars",
    "catalyst_events": "SELECT count(*) FROM catalyst_events",
    "dead_letters": "SELECT count(*) FROM dead_letters",
}
#: Decisions (real and synthetic) with at least `n` sessions of bars from their start.
#: Every run's: the outcome tracker rebuilds what a broker that forgot its state was
#: following (`service.rebuild`), so an earlier run's decisions advance with the new bars.
_WITH_SESSIONS = """
    FROM learning_decisions d
    WHERE (SELECT count(*) FROM price_bars b WHERE b.symbol = d.symbol
           AND (b.session > (d.decided_at AT TIME ZONE 'UTC')::date
                OR (b.session = (d.decided_at AT TIME ZONE 'UTC')::date
                    AND d.market_time <> 'afterhours'))) >= %(n)s
"""
OUTCOME_QUERIES = {
    "tracked": "SELECT count(*) FROM learning_outcomes",
    "open": "SELECT count(*) FROM learning_outcomes WHERE outcome_type = 'open'",
    "matured": "SELECT count(*) FROM learning_outcomes WHERE outcome_type = 'matured'",
    "closed": "SELECT count(*) FROM learning_outcomes WHERE outcome_type = 'closed'",
    "counterfactual": "SELECT count(*) FROM learning_outcomes WHERE is_counterfactual",
    "never_decided_candidates": "SELECT count(*) FROM learning_decisions WHERE is_synthetic",
    "waiting_for_decision": "SELECT count(*) FROM outcome_backlog",
    "started_without_row": "SELECT count(*)" + _WITH_SESSIONS + """
        AND NOT EXISTS (SELECT 1 FROM learning_outcomes o WHERE o.decision_id = d.id)""",
    "matured_not_marked": "SELECT count(*)" + _WITH_SESSIONS.replace("%(n)s", "%(longest)s")
    + """ AND NOT EXISTS (SELECT 1 FROM learning_outcomes o WHERE o.decision_id = d.id
          AND o.outcome_type IN ('matured', 'closed'))""",
}


_DATABASE = """
SELECT now(),
  (SELECT version FROM params_history WHERE name = %(name)s AND mode = 'live'
   ORDER BY recorded_at DESC LIMIT 1),
  (SELECT recorded_at FROM params_history WHERE name = %(name)s AND mode = 'live'
   ORDER BY recorded_at DESC LIMIT 1),
  (SELECT string_agg(format('v%%s %%s', version, mode), ', ' ORDER BY version)
   FROM (SELECT DISTINCT ON (version) version, mode FROM params_history
         WHERE name = %(name)s ORDER BY version, recorded_at DESC) v
   WHERE mode IN ('shadow', 'canary')),
  (SELECT max(ran_at) FROM learning_cycles WHERE kind = 'daily'),
  (SELECT max(as_of) FROM learning_cycles WHERE kind = 'daily'),
  (SELECT count(*) FROM learning_cycles WHERE ran_at > now() - interval '1 day')
"""

_COLLECTED = """
SELECT (SELECT count(*) FROM learning_decisions WHERE created_at > now() - %(span)s::interval
          AND NOT is_synthetic)
     + (SELECT count(*) FROM discovery_candidates WHERE created_at > now() - %(span)s::interval)
     + (SELECT count(*) FROM learning_trades WHERE created_at > now() - %(span)s::interval)
     + (SELECT count(*) FROM price_bars WHERE created_at > now() - %(span)s::interval)
     + (SELECT count(*) FROM catalyst_events WHERE created_at > now() - %(span)s::interval),
       (SELECT count(*) FROM dead_letters WHERE failed_at > now() - %(span)s::interval)
"""


class Figures:
    """What the main job and `status` count, on one unit of work's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def stored_counts(self) -> dict[str, int]:
        """Rows per table that stand for produced events, and the dead letters."""
        return self._counts(STORED_QUERIES)

    def outcome_counts(self, longest: int) -> dict[str, int]:
        """The outcome rows by state, and the decisions whose outcome is missing or open
        although their sessions have passed."""
        return self._counts(OUTCOME_QUERIES, n=1, longest=longest)

    def status(self, params_name: str) -> dict[str, Any]:
        """Live params and their age, versions in flight, the last daily cycle, and what
        was stored and dead-lettered over the last hour and day, with the round trip's
        latency."""
        started = time.monotonic()
        row = self._one(_DATABASE, name=params_name)
        latency = (time.monotonic() - started) * 1000
        collected = {}
        for span in ("hour", "day"):
            got = self._one(_COLLECTED, span=f"1 {span}")
            collected[span] = (int(got[0]), int(got[1]))
        keys = ("now", "live", "live_at", "in_flight", "cycle_at", "cycle_as_of", "cycles_day")
        return {**dict(zip(keys, row, strict=True)), "latency_ms": latency,
                "collected": collected}

    def _counts(self, queries: dict[str, str], **params: object) -> dict[str, int]:
        return {name: int(self._one(query, **params)[0]) for name, query in queries.items()}

    def _one(self, query: str, **params: object) -> tuple[Any, ...]:
        row = self.conn.execute(query, params).fetchone()
        if row is None:  # an aggregate always answers one row
            raise LookupError(f"no row from {query[:40]!r}")
        return tuple(row)
