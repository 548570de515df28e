"""Replay and backfill on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from aiokafka import AIOKafkaProducer

from amc_learning.consumers.persist import run_persist
from amc_learning.consumers.replay import replay
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.entrypoints.supervise import settings_env
from amc_learning.schemas.registry import TOPIC_OF_EVENT
from amc_learning.store.database import Database
from amc_learning.store.migrations import migrate
from amc_learning.store.rows import PERSIST_TOPICS
from amc_learning.streams.kafka import producer_options
from tests import factories
from tests.faults.pipeline import stream
from tests.integration.helpers import publish, rows

pytestmark = pytest.mark.integration
#: Columns a database assigns itself: they may differ between two databases of equal content.
_OWN = {"id", "created_at", "updated_at"}
TABLES = ("learning_decisions", "discovery_candidates", "learning_trades", "price_bars",
          "catalyst_events", "dead_letters")


def content(url: str) -> dict[str, list[tuple]]:
    """Every stored row minus the columns the database assigns, in a stable order."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            columns = [c for (c,) in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " ORDER BY ordinal_position", (table,)) if c not in _OWN]
            listed = ", ".join(columns)
            out[table] = conn.execute(f"SELECT {listed} FROM {table} ORDER BY {listed}"
                                      ).fetchall()
    return out


@pytest.fixture
def fresh(empty_database):  # type: ignore[no-untyped-def]
    """A new database with the schema and nothing in it."""

    def make(label: str) -> str:
        url = empty_database(label)
        migrate(Database(url))
        return url

    return make


def test_replay_into_a_fresh_database_reproduces_the_live_rows_and_twice_changes_nothing(
    settings, fresh
):
    events = stream(5, 12, 30)
    publish(settings, events)
    live = asyncio.run(run_persist(bootstrap(settings), max_records=len(events), idle_exit_s=20))
    assert live.consumed == len(events)
    target = fresh("replay_target")
    stats = asyncio.run(replay(settings, list(PERSIST_TOPICS), Database(target)))
    assert stats.read == stats.in_window == len(events) and stats.dead_lettered == 0
    expected = content(settings.database_url)
    assert sum(len(v) for v in expected.values()) > len(events) // 2
    assert content(target) == expected
    again = asyncio.run(replay(settings, list(PERSIST_TOPICS), Database(target)))
    assert sum(again.stored.values()) == 0, again.stored
    assert content(target) == expected


async def _send_at(settings, events, stamps) -> None:  # type: ignore[no-untyped-def]
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        for event, at in zip(events, stamps, strict=True):
            topic = settings.topic_prefix + TOPIC_OF_EVENT[event.event_type]
            await producer.send_and_wait(topic, event.model_dump_json().encode(),
                                         key=event.key.encode(),
                                         timestamp_ms=int(at.timestamp() * 1000))
    finally:
        await producer.stop()


def test_a_time_bounded_replay_stores_exactly_the_records_in_the_window(settings, fresh):
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    events = [factories.thesis(decision_id=f"dec-{i}") for i in range(30)]
    # published out of time order, as producers' clocks allow
    stamps = [t0 + timedelta(minutes=(i * 7) % 30) for i in range(30)]
    asyncio.run(_send_at(settings, events, stamps))
    since, until = t0 + timedelta(minutes=10), t0 + timedelta(minutes=20)
    target = fresh("replay_window")
    stats = asyncio.run(replay(settings, ["learning.thesis.v1"], Database(target), since=since,
                               until=until))
    inside = {str(e.decision_id) for e, at in zip(events, stamps, strict=True)
              if since <= at < until}
    stored = {r[0] for r in rows(target, "SELECT decision_id FROM learning_decisions")}
    assert stored == inside and len(inside) == 10
    assert stats.read == 30, "every record was read: timestamps are not monotone"
    # Tansu's time index answers offset 0: the replay must have noticed and scanned
    assert stats.scanned_partitions >= 1


def test_the_replay_command_explains_mistakes_and_reports_json(settings, fresh):
    env = settings_env(settings)
    bad = subprocess.run([sys.executable, "-m", "amc_learning.cli", "replay", "--topic",
                          "nope"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "cannot replay 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
    publish(settings, [factories.thesis(), factories.candidate(passed=False)])
    target = fresh("replay_cli")
    ok = subprocess.run([sys.executable, "-m", "amc_learning.cli", "replay", "--topic", "all",
                         "--into", target, "--recompute"], capture_output=True, text=True,
                        env=env)
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout.splitlines()[-1])
    assert summary["in_window"] == 2 and summary["stored"]["learning_decisions"] == 2
    assert "recomputed_as_of" in summary
