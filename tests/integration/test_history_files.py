"""A user's history from files, through the real broker, consumers and PostgreSQL: bars in
the long and the wide shape, contract events, and a backtest that says how much more
history it needs when there is too little."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from amc_learning.entrypoints.supervise import spawn_consumer, stop_processes
from amc_learning.intelligence import calendar
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.service.backtest import needed_sessions
from amc_learning.streams.offsets import end_offsets
from tests.integration.helpers import rows, settle
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader"


def _ends(settings) -> dict:
    ends: dict = {}
    for topic in ("discovery", "thesis", "trades", "prices"):
        ends |= asyncio.run(end_offsets(settings, f"{settings.topic_prefix}learning."
                                                   f"{topic}.v1"))
    return ends


def test_long_and_wide_bars_store_the_same_bars_and_account_for_every_row(settings, tmp_path):
    """The long file: as traded, a 2-for-1 split on July 6th, the holiday of July 3rd, a
    row given twice and a negative open. The wide file: the same sessions' adjusted closes,
    with the same holiday, duplicate and a negative close."""
    long = tmp_path / "long.csv"
    long.write_text(
        "Ticker,Date,Open,High,Low,Close,Volume,Split_Ratio\n"
        "AAA,2026-07-01,10.0,11.0,9.5,10.4,1000,\n"
        "AAA,2026-07-02,10.0,11.0,9.5,10.5,1000,\n"
        "AAA,2026-07-03,10.5,11.0,10.0,10.8,1100,\n"
        "AAA,2026-07-06,5.40,5.60,5.20,5.50,2300,2.0\n"
        "AAA,2026-07-06,5.40,5.60,5.20,5.50,2300,2.0\n"
        "AAA,2026-07-07,-5.0,5.60,5.20,5.55,2100,\n"
        "BBB,2026-07-01,20.0,20.5,19.5,20.1,500,\n"
        "BBB,2026-07-02,20.0,20.5,19.5,20.2,500,\n"
        "BBB,2026-07-06,20.2,21.0,20.0,20.9,700,\n"
        "BBB,2026-07-07,20.9,21.2,20.5,21.0,650,\n")
    wide = tmp_path / "closes.csv"
    wide.write_text("date,AAA,BBB\n2026-07-01,5.20,20.1\n2026-07-02,5.25,20.2\n"
                    "2026-07-03,5.40,20.3\n2026-07-06,5.50,20.9\n2026-07-06,5.50,20.9\n"
                    "2026-07-07,-5.55,21.0\n")
    procs = [spawn_consumer(settings, n, settings.data_dir / "logs")
             for n in ("persist", "outcomes")]
    try:
        first = cli(settings, "prices", "import", str(long), "--column", "Ticker=symbol")
        assert first.returncode == 0, first.stderr[-2000:]
        summary = json.loads(first.stdout.strip().splitlines()[-1])
        assert (summary["rows"], summary["bars"], summary["published"]) == (10, 7, 7)
        assert sum(summary["rejected"].values()) == 3  # the holiday, the repeat, the price
        settle(settings, _ends(settings), procs)
        stored = rows(settings.database_url, "SELECT symbol, session, close, split_ratio"
                                             " FROM price_bars ORDER BY 1, 2")
        assert [(s, str(d)) for s, d, _, _ in stored] == [
            ("AAA", "2026-07-01"), ("AAA", "2026-07-02"), ("AAA", "2026-07-06"),
            ("BBB", "2026-07-01"), ("BBB", "2026-07-02"), ("BBB", "2026-07-06"),
            ("BBB", "2026-07-07")]
        assert [r for r in stored if r[3]] == [("AAA", date(2026, 7, 6), 5.5, 2.0)]
        second = cli(settings, "prices", "import", str(wide))
        assert second.returncode == 0, second.stderr[-2000:]
        again = json.loads(second.stdout.strip().splitlines()[-1])
        # the same bars: every one the wide file holds is one stored from the long file
        assert (again["shape"], again["rows"], again["bars"], again["already_stored"],
                again["published"]) == ("wide", 6, 7, 7, 0)
        assert set(again["rejected"]) == {
            "2026-07-03 is not a trading session (a weekend or an exchange holiday)",
            "a second row for 2026-07-06: the first is kept",
            "AAA: -5.55 is not a positive price"}
    finally:
        stop_processes(*procs)


def test_a_history_too_short_to_backtest_says_how_much_it_needs(settings, tmp_path):
    """AMC-Trader's vendored history imported; then one command brings its bars (and the
    index's) and contract events in from files, through its own consumers, and backtests:
    it says how many sessions it has and needs, instead of claiming an edge."""
    sessions = calendar.sessions(date(2026, 1, 26), date(2026, 3, 20))
    symbols = ("^IXIC", "RIG", "ENSC", "TPET", "USEG")
    bars = tmp_path / "bars.csv"
    bars.write_text("date," + ",".join(symbols) + "\n" + "".join(
        f"{d}," + ",".join(f"{5 + i % 7 + j:.2f}" for j in range(len(symbols))) + "\n"
        for i, d in enumerate(sessions)))
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({
        "event_type": "price_bar_closed", "event_id": "6f1c7e6e-1111-4c1d-9a1e-00000000abcd",
        "occurred_at": "2026-03-20T20:00:00Z", "symbol": "ZZZ", "session": "2026-03-20",
        "open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 10}) + "\nnot json\n")
    procs = [spawn_consumer(settings, n, settings.data_dir / "logs")
             for n in ("persist", "outcomes")]
    try:
        done = cli(settings, "import", "amc-trader", str(FIXTURES))
        assert done.returncode == 0, done.stderr[-2000:]
        settle(settings, _ends(settings), procs, timeout_s=180)
    finally:
        stop_processes(*procs)
    # one command: the bars and the events brought in (its own consumers), then the backtest
    tested = cli(settings, "backtest", "--bars", str(bars), "--events", str(events),
                 "--producer", "my-vendor")
    assert tested.returncode == 0, tested.stderr[-2000:]
    lines = tested.stdout.strip().splitlines()
    assert lines[0] == ("events: 2 read: 1 published, 1 rejected {'not JSON (Expecting value: "
                        "line 1 column 1 (char 0))': 1}")
    assert lines[1].startswith(f"bars: {len(sessions)} rows of {bars}: "
                               f"{len(sessions) * len(symbols)} bars")
    assert rows(settings.database_url, "SELECT producer FROM price_bars WHERE symbol = 'ZZZ'"
                ) == [("my-vendor",)]
    assert rows(settings.database_url, "SELECT count(*) FROM price_bars WHERE symbol = 'RIG'"
                ) == [(len(sessions),)]
    said = json.loads(lines[-1])
    assert said["enough"] is False
    assert said["reason"].startswith("amc-scanner 3.3.1: ")
    assert "sessions with complete outcomes" in said["reason"]
    assert f"a backtest needs at least {needed_sessions(RolloutPolicy(horizon=7))}" in said[
        "reason"]


def test_an_undeclared_component_models_history_backtests_in_one_command(settings, tmp_path):
    """A producer's own component model, never registered: a year of its contract-v2
    candidates for five symbols, a BUY of each that passed, and a line that is not a valid
    event, in one file; random-walk closes of those symbols and the index in the wide
    shape in another. One command brings both in and backtests, under the declaration the
    candidates imply."""
    rng = np.random.default_rng(5)
    sessions = calendar.sessions(date(2025, 1, 2), date(2025, 12, 31))
    symbols = ("AAA", "BBB", "CCC", "DDD", "EEE")
    closes = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, (len(sessions), len(symbols) + 1)),
                                   axis=0))
    bars = tmp_path / "closes.csv"
    bars.write_text("date,^IXIC," + ",".join(symbols) + "\n" + "".join(
        f"{d}," + ",".join(f"{c:.4f}" for c in row) + "\n"
        for d, row in zip(sessions, closes, strict=True)))
    lines = []
    for t, day in enumerate(sessions):
        values = rng.uniform(0, 100, (len(symbols), 3))
        raw = values @ np.array([0.5, 0.3, 0.2])
        for rank, i in enumerate(np.argsort(-raw), start=1):
            lines.append(json.dumps({
                "event_type": "candidate_scored", "schema_version": 2,
                "event_id": str(uuid.UUID(int=t * 10 + int(i) + 1)),
                "occurred_at": f"{day}T14:00:00Z", "run_id": f"scan-{day}",
                "symbol": symbols[i], "rank": rank, "passed": bool(raw[i] >= 55),
                "composite_score": round(raw[i] / 100, 8), "price": round(closes[t, i + 1], 4),
                "scoring_model": {"name": "vendor-scanner", "version": "1.0"},
                "raw_score": {"value": round(raw[i], 6), "low": 0, "high": 100},
                "components": {c: {"value": round(values[i, k], 6), "low": 0, "high": 100}
                               for k, c in enumerate(("momentum", "volume", "news"))}}))
            if raw[i] >= 55:  # what it bought: a passed candidate is tracked through it
                lines.append(json.dumps({
                    "event_type": "thesis_decided", "schema_version": 2,
                    "event_id": str(uuid.UUID(int=10**6 + t * 10 + int(i))),
                    "occurred_at": f"{day}T14:30:00Z", "decision_id": f"buy-{day}-{i}",
                    "symbol": symbols[i], "decision_type": "BUY",
                    "decision_source": "discovery", "entry_price": round(closes[t, i + 1], 4),
                    "position_size_pct": 2.0, "discovery_run_id": f"scan-{day}",
                    "scoring_model": {"name": "vendor-scanner", "version": "1.0"}}))
    lines.insert(3, json.dumps({"event_type": "candidate_scored", "symbol": "AAA"}))
    events = tmp_path / "scans.jsonl"
    events.write_text("\n".join(lines) + "\n")

    tested = cli(settings, "backtest", "--events", str(events), "--bars", str(bars),
                 "--producer", "vendor", "--cycle-every", "5", timeout=900)
    assert tested.returncode == 0, tested.stderr[-3000:]
    out = tested.stdout.strip().splitlines()
    candidates = len(sessions) * len(symbols)
    assert out[0].startswith(f"events: {len(lines):,} read: {len(lines) - 1:,} published, "
                             "1 rejected"), out[0]
    every = len(sessions) * (len(symbols) + 1)
    assert out[1].startswith(f"bars: {len(sessions)} rows of {bars}: {every:,} bars "
                             f"({every:,} published"), out[1]
    assert rows(settings.database_url, "SELECT count(*) FROM discovery_candidates"
                " WHERE scoring_model = 'vendor-scanner'") == [(candidates,)]
    said = json.loads(out[-1])
    assert said["scoring_model"] == "vendor-scanner 1.0"
    inferred = said["inferred"]
    assert "is not declared" in inferred["note"] and inferred["agreement"] == 1.0
    weights = {c["name"]: c["weight"] for c in inferred["declaration"]["components"]}
    assert weights == {"momentum": pytest.approx(0.5, abs=1e-4),
                       "volume": pytest.approx(0.3, abs=1e-4),
                       "news": pytest.approx(0.2, abs=1e-4)}
    # a backtest, not a refusal: both arms over the sessions with complete outcomes
    assert said["sessions"] >= needed_sessions(RolloutPolicy(horizon=7))
    assert said["static"]["trades"] > 0 and said["learned"]["trades"] > 0
    assert said["difference"]["low"] <= said["difference"]["total_pnl"] <= said[
        "difference"]["high"]
