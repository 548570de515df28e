"""An AMC-Trader history imported through the normal topics: persist stores rows that carry
the scoring model, the raw score and the normalised one; a second import stores nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.entrypoints.supervise import spawn_consumer, stop_processes
from amc_learning.streams.offsets import end_offsets
from tests import factories
from tests.integration.helpers import publish, rows, settle, stored_event_ids
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader"


def test_a_history_and_its_fills_round_trip_to_rows_and_tracked_outcomes(settings, tmp_path):
    """The scan history, the lessons, the portfolio and the logged entry fills, imported;
    the bars a market-data bridge would publish; persist and the outcome tracker running."""
    trades = FIXTURES / "payloads" / "r1_memory_trade_log.json"
    first = cli(settings, "import", "amc-trader", str(FIXTURES), str(trades))
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["published"] == summary["events"] == {
        "learning.discovery.v1": 729, "learning.thesis.v1": 25, "learning.trades.v1": 10}
    sessions = [d for d in (date(2026, 2, 9) + timedelta(days=i) for i in range(26))
                if d.weekday() < 5]
    bars = [factories.bar(symbol="RIG", session=day, open=5.3, high=5.5 + i / 20,
                          low=5.2, close=5.345 * (1 + 0.01 * i),
                          occurred_at=datetime.combine(day, time(21), UTC))
            for i, day in enumerate(sessions)] + [  # the index (the learning clock), and
        factories.bar(symbol=symbol, session=day, open=1.0, high=1.1 + i % 3, low=0.9,  # the
                      close=1.0 + i % 3, occurred_at=datetime.combine(day, time(21), UTC))
        for symbol in ("^IXIC", "ENSC", "TPET", "USEG")  # 3.3.1 scanner's entered picks
        for i, day in enumerate(sessions)]
    procs = [spawn_consumer(settings, n, settings.data_dir / "logs")
             for n in ("persist", "outcomes")]
    try:
        publish(settings, bars).close()
        ends: dict = {}
        for topic in ("discovery", "thesis", "trades", "prices"):
            ends |= asyncio.run(end_offsets(settings, f"{settings.topic_prefix}learning."
                                                       f"{topic}.v1"))
        settle(settings, ends, procs, timeout_s=180)
    finally:
        stop_processes(*procs)
    url = settings.database_url
    models = dict(rows(url, "SELECT scoring_model || ' ' || scoring_version, count(*)"
                            " FROM discovery_candidates GROUP BY 1"))
    # 728 scan picks (one rejected: ORCLpD, 2026-02-10) by the version of their day, and
    # the current scanner's one pick
    assert models == {"amc-scanner before-3.2_explosive": 674, "amc-scanner 3.2_explosive": 26,
                      "amc-scanner 3.3.1": 28 + 1}
    [(raw, high, composite)] = rows(url, "SELECT raw_score, raw_high, composite_score"
                                         " FROM discovery_candidates"
                                         " WHERE symbol = 'RIG' AND raw_score = 125")
    assert (raw, high) == (125.0, 230.0) and composite == pytest.approx((125 + 75) / 305)
    labels = dict(rows(url, "SELECT label, count(*) FROM learning_decisions"
                            " WHERE NOT is_synthetic GROUP BY label"))
    assert labels == {"entered": 7, "held": 17, "CANCELLED": 1}
    linked = rows(url, "SELECT t.decision_id, t.price, t.quantity FROM learning_trades t"
                       " JOIN learning_decisions d ON d.decision_id = t.decision_id"
                       " ORDER BY t.decision_id")
    assert [r[0] for r in linked] == ["amc-scan:ENSC:2026-03-02", "amc-scan:PAAA:2026-02-12",
                                      "amc-scan:RIG:2026-02-10", "amc-scan:USEG:2026-03-04"]
    [rig] = rows(url, "SELECT d.price_at_decision, o.return_1d, o.return_7d, o.days_held,"
                      " o.position_closed FROM learning_outcomes o JOIN learning_decisions d"
                      " ON d.id = o.decision_id WHERE d.decision_id = 'amc-scan:RIG:2026-02-10'")
    entry, one, seven, held, closed = rig
    # decided 2026-02-10 (its first bar: that session's, index 1): close/entry - 1
    assert entry == 5.345 and one == pytest.approx(0.01) and seven == pytest.approx(0.07)
    assert held >= 7 and closed is False  # entered by its fill, never exited

    again = cli(settings, "import", "amc-trader", str(FIXTURES), str(trades))
    assert again.returncode == 0, again.stderr[-2000:]
    asyncio.run(run_persist(bootstrap(settings), max_records=764, idle_exit_s=20))
    assert max(stored_event_ids(url).values()) == 1
    assert rows(url, "SELECT count(*) FROM discovery_candidates") == [(729,)]
    assert rows(url, "SELECT count(*) FROM learning_trades") == [(10,)]

    # the learner learns from the scanner in use now, and says which fields look broken
    keyed = factories.keyed(settings)
    cycle = cli(keyed, "cycle", "daily")
    assert cycle.returncode == 0, cycle.stderr[-2000:]
    done = json.loads(cycle.stdout.strip().splitlines()[-1])
    assert done["scoring_model"] == "amc-scanner 3.3.1"
    found = {(f["producer"], f["scoring_model"], f["field"], f["kind"])
             for f in done["data_quality"]}
    assert ("amc-trader-scanner", "amc-scanner before-3.2_explosive", "float_shares",
            "stuck") in found
    page = tmp_path / "report.html"
    assert cli(keyed, "report", "--out", str(page)).returncode == 0
    html = page.read_text()
    assert "scoring model <code>amc-scanner 3.3.1</code>" in html
    assert "Fields that look broken" in html and "float_shares" in html


def test_a_wrong_path_or_zone_is_a_clear_error(settings, tmp_path):
    missing = cli(settings, "import", "amc-trader", str(tmp_path / "nowhere"), "--dry-run")
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    zone = cli(settings, "import", "amc-trader", str(FIXTURES), "--dry-run", "--tz", "Mars/Base")
    assert zone.returncode == 2 and "--tz: unknown time zone 'Mars/Base'" in zone.stderr
    assert "Traceback" not in missing.stderr + zone.stderr
