"""Export, backup and restore against the real PostgreSQL (and the real broker to fill it)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg
import pytest

from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.store.backup import MANIFEST, BackupError, backup, restore, table_digests
from amc_learning.store.database import Database
from amc_learning.store.export import TABLES, export_table
from tests import factories
from tests.integration.helpers import publish, rows

pytestmark = pytest.mark.integration
DAY = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)


@pytest.fixture
def filled(settings):
    """A database holding decisions on 6 days, candidates, fills and bars, via persist."""
    events = []
    for i in range(6):
        at = DAY + timedelta(days=i)
        events += [factories.thesis(occurred_at=at, decision_id=f"dec-{i}"),
                   factories.candidate(occurred_at=at, run_id=f"run-{i}", passed=i % 2 == 0),
                   factories.fill(occurred_at=at), factories.bar(session=at.date())]
    publish(settings, events)
    stats = asyncio.run(run_persist(bootstrap(settings), max_records=len(events), idle_exit_s=15))
    assert stats.consumed == len(events) and stats.dead_lettered == 0
    return settings


def test_every_table_exports_to_parquet_and_csv_with_its_rows_and_types(filled, tmp_path):
    url = filled.database_url
    for table in TABLES:
        for fmt in ("parquet", "csv"):
            done = export_table(Database(url), table, fmt, tmp_path / fmt)
            assert done.rows == rows(url, f"SELECT count(*) FROM {table}")[0][0], (table, fmt)
    decisions = pl.scan_parquet(tmp_path / "parquet" / "learning_decisions" / "*.parquet")
    frame = decisions.collect().sort("decision_id")
    stored = rows(url, "SELECT decision_id, confidence_score, decided_at, discovery_features"
                       " FROM learning_decisions ORDER BY decision_id")
    assert frame["decision_id"].to_list() == [r[0] for r in stored]
    assert frame["confidence_score"].to_list() == [r[1] for r in stored]
    assert frame["decided_at"].to_list() == [r[2] for r in stored]
    assert frame.schema["decided_at"] == pl.Datetime("us", "UTC")
    assert [json.loads(f) for f in frame["discovery_features"]] == [r[3] for r in stored]
    csv = pl.read_csv(tmp_path / "csv" / "learning_decisions.csv")
    assert sorted(csv["decision_id"].to_list()) == [r[0] for r in stored]


def test_a_time_bounded_export_holds_exactly_the_rows_in_the_window(filled, tmp_path):
    since, until = DAY + timedelta(days=2), DAY + timedelta(days=4)
    done = export_table(Database(filled.database_url), "learning_decisions", "parquet", tmp_path,
                        since=since, until=until)
    got = pl.read_parquet(done.path / "*.parquet")
    expected = rows(filled.database_url, "SELECT decision_id FROM learning_decisions WHERE"
                    " decided_at >= %s AND decided_at < %s", since, until)
    assert sorted(got["decision_id"].to_list()) == sorted(r[0] for r in expected)
    # days 2 and 3 of 0..5 (the bounds are [from, to)): two thesis decisions, and the
    # synthetic decision of day 3's candidate, which was never handed on
    assert len(expected) == 3
    with pytest.raises(ValueError, match="no time column"):
        export_table(Database(filled.database_url), "outcome_backlog", "csv", tmp_path, since=since)


_MEASURE = """
import io, json, sys
from pathlib import Path
import polars as pl
from amc_learning.store.database import Database
from amc_learning.store.export import export_table
def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
# what every process pays anyway: polars' engine and parquet writer, a connection
pl.DataFrame({"a": [1], "b": ["x"]}).write_parquet(io.BytesIO())
db = Database(sys.argv[1])
with db.unit_of_work():
    pass
baseline = status_mb("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM): from here on it is the export's
done = export_table(db, "learning_decisions", "parquet", Path(sys.argv[2]),
                    memory_mb=float(sys.argv[3]))
print(json.dumps({"baseline_mb": baseline, "peak_mb": status_mb("VmHWM"), "rows": done.rows,
                  "chunk_rows": done.chunk_rows}))
"""


def test_an_export_of_a_table_larger_than_the_memory_cap_stays_within_it(database_url, tmp_path):
    cap = 24
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO learning_decisions (event_id, decision_id, symbol, decision_type,
                recommendation_source, confidence_score, price_at_decision, market_time,
                discovery_features, decision_data, decided_at, producer, schema_version)
            SELECT gen_random_uuid(), 'big-' || i, 'AMC', 'BUY', 'thesis', 0.5, 10.0, 'regular',
                   jsonb_build_object('rsi_14', i % 100, 'noise', md5(i::text)),
                   jsonb_build_object('reasoning', repeat(md5(i::text), 16)),
                   now() - i * interval '1 minute', 'test', 1
            FROM generate_series(1, 60000) AS i""")
        size_mb = conn.execute("SELECT pg_total_relation_size('learning_decisions')"
                               ).fetchone()[0] / 2**20
    assert size_mb > 2 * cap, f"the table ({size_mb:.0f} MB) must exceed the cap ({cap} MB)"
    out = subprocess.run([sys.executable, "-c", _MEASURE, database_url, str(tmp_path), str(cap)],
                         capture_output=True, text=True, check=True)
    m = json.loads(out.stdout)
    print("EXPORT MEMORY", m, f"table {size_mb:.0f} MB")
    assert m["rows"] == 60000 and m["chunk_rows"] < 60000
    assert m["peak_mb"] - m["baseline_mb"] <= cap, m
    assert pl.scan_parquet(tmp_path / "learning_decisions" / "*.parquet").select(
        pl.len()).collect().item() == 60000


def test_backup_then_restore_into_a_fresh_database_is_identical(filled, empty_database,
                                                                 tmp_path):
    before = table_digests(Database(filled.database_url))
    manifest = backup(Database(filled.database_url), tmp_path / "b")
    assert manifest.tables == before and manifest.schema_version >= 5
    assert before["learning_decisions"]["rows"] == 9  # 6 thesis + 3 never-decided candidates
    target = Database(empty_database("restore"))
    restore(tmp_path / "b", target)
    assert table_digests(target) == before
    with pytest.raises(BackupError, match="not empty"):
        restore(tmp_path / "b", target)
    restore(tmp_path / "b", target, clean=True)  # replacing is allowed when asked
    assert table_digests(target) == before


def test_restore_refuses_a_newer_schema_and_a_tampered_dump(filled, empty_database, tmp_path):
    backup(Database(filled.database_url), tmp_path / "b")
    with pytest.raises(BackupError, match="already holds a backup"):
        backup(Database(filled.database_url), tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / MANIFEST).read_text())
    target = Database(empty_database("refused"))
    (tmp_path / "b" / MANIFEST).write_text(json.dumps({**manifest, "schema_version": 999}))
    with pytest.raises(BackupError, match="newer than this code"):
        restore(tmp_path / "b", target)
    (tmp_path / "b" / MANIFEST).write_text(json.dumps({**manifest, "dump_sha256": "0" * 64}))
    with pytest.raises(BackupError, match="does not match its manifest"):
        restore(tmp_path / "b", target)
    assert table_digests(target) == {}, "a refused restore writes nothing"


def test_cli_mistakes_get_one_line_and_a_hint(filled, tmp_path):
    env = {"LEARNING_DATABASE_URL": filled.database_url, "PATH": "/usr/bin:/bin"}
    bad = subprocess.run([sys.executable, "-m", "amc_learning.cli", "export", "--table", "nope",
                          "--out", str(tmp_path)], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "unknown table(s) nope" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "amc_learning.cli", "restore",
                              str(tmp_path / "none")], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "no readable manifest" in missing.stderr
    assert "Traceback" not in missing.stderr
    ok = subprocess.run([sys.executable, "-m", "amc_learning.cli", "export", "--table",
                         "learning_decisions", "--format", "csv", "--out", str(tmp_path),
                         "--from", "2024-03-03"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    # days 2..5: four thesis decisions and the never-decided candidates of days 3 and 5
    assert json.loads(ok.stdout.splitlines()[-1])["rows"] == 6
