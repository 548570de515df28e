"""The outcomes worker (Faust) and persist, as real processes on the real broker + PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import statistics
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from amc_learning.consumers.loop import LoopStats
from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.entrypoints.supervise import spawn_consumer, stop_processes
from amc_learning.schemas.outcomes import OutcomeUpdated
from amc_learning.simulator.world import SimConfig, simulate
from amc_learning.streams.offsets import committed_offsets
from tests import factories
from tests.integration.helpers import (
    OUTCOME_COLUMNS,
    outcome_rows,
    publish,
    publish_and_settle,
    rows,
    settle,
    wait_for,
)

pytestmark = pytest.mark.integration

D0 = date(2024, 3, 4)


def session_time(i: int, hour: int) -> datetime:
    midnight = datetime.combine(D0 + timedelta(days=i), datetime.min.time(), UTC)
    return midnight + timedelta(hours=hour)


def test_scripted_decisions_and_bars_give_exactly_the_expected_rows(settings):
    settings = settings.with_overrides(outcome_horizons="1,2,3")
    path = [(100, 104, 98, 102, 1000), (102, 103, 95, 96, 2000), (96, 110, 96, 108, 3000)]
    bars = [factories.bar(symbol=sym, session=D0 + timedelta(days=i), open=o, high=h, low=lo,
                          close=c, volume=v, occurred_at=session_time(i, 21))
            for sym in ("AMC", "GME") for i, (o, h, lo, c, v) in enumerate(path)]
    buy = factories.thesis(
        decision_id="dec-amc", symbol="AMC", entry_price=100.0, occurred_at=session_time(0, 14),
        thesis={"expected_direction": "UP", "horizon_days": 2, "target_price": 105.0,
                "stop_price": 94.0},
    )
    entry = factories.fill(fill_id="f1", decision_id="dec-amc", price=100.0,
                           occurred_at=session_time(0, 15))
    exit_ = factories.fill(fill_id="f2", decision_id="dec-amc", fill_type="EXIT", side="SELL",
                           price=96.0, exit_reason="stop_loss", occurred_at=session_time(1, 20))
    ignored = factories.candidate(symbol="GME", run_id="run-9", passed=False,
                                  composite_score=0.4, price=100.0,
                                  occurred_at=session_time(0, 13))
    procs = [spawn_consumer(settings, n, settings.data_dir / "logs")
             for n in ("persist", "outcomes")]
    try:
        # disorder: a bar before its decision, the exit before the entry, a duplicate bar
        publish_and_settle(settings, [bars[1], exit_, buy, ignored, bars[0], entry, *bars[2:],
                                      bars[0]], procs)
    finally:
        stop_processes(*procs)
    got = {r[0]: dict(zip(["decision_id", *OUTCOME_COLUMNS.split(", ")], r, strict=True))
           for r in outcome_rows(settings)}
    assert set(got) == {"dec-amc", "cand:run-9:GME"}
    amc, gme = got["dec-amc"], got["cand:run-9:GME"]
    hold_vol = statistics.stdev([math.log(102 / 100), math.log(96 / 102)]) * math.sqrt(252)
    assert amc["outcome_type"] == "closed" and amc["position_closed"] is True
    assert (amc["exit_price"], amc["exit_reason"], amc["days_held"]) == (96.0, "stop_loss", 2)
    assert (amc["return_1d"], amc["return_7d"], amc["return_30d"]) == pytest.approx(
        (0.02, -0.04, 0.08))
    assert amc["return_pct"] == pytest.approx(-0.04)
    assert amc["max_favorable_excursion"] == pytest.approx(0.04)
    assert amc["max_adverse_excursion"] == pytest.approx(-0.05)
    assert amc["volatility_realized"] == pytest.approx(hold_vol)
    assert amc["thesis_accuracy_score"] == pytest.approx(0.44)
    assert amc["is_counterfactual"] is False and amc["sessions_elapsed"] == 3
    assert gme["outcome_type"] == "matured" and gme["is_counterfactual"] is True
    assert gme["tracked_from"] == "candidate" and gme["return_pct"] == pytest.approx(0.08)
    assert gme["max_favorable_excursion"] == pytest.approx(0.10)
    [(synthetic,)] = rows(settings.database_url,
                          "SELECT recommendation_source || '/' || decision_type"
                          " FROM learning_decisions WHERE is_synthetic")
    assert synthetic == "discovery/IGNORE"


def test_outcomes_survive_sigkill_and_match_an_uninterrupted_run(more_settings):
    events = [e for day in simulate(SimConfig(seed=11, symbols=12, days=45)) for e in day]
    half = len(events) // 2
    calm, crash = more_settings(), more_settings()

    procs = [spawn_consumer(calm, n, calm.data_dir / "logs") for n in ("persist", "outcomes")]
    try:
        publish_and_settle(calm, events, procs)
    finally:
        stop_processes(*procs)
    expected = outcome_rows(calm)
    assert len(expected) > 100

    persist = spawn_consumer(crash, "persist", crash.data_dir / "logs")
    worker = spawn_consumer(crash, "outcomes", crash.data_dir / "logs")
    group = crash.topic_prefix + crash.outcomes_group
    try:
        first = publish(crash, events[:half])
        targets = dict(first.stats.acked_end_offsets)

        def worker_committed() -> bool:
            got = asyncio.run(committed_offsets(crash, group, sorted(targets)))
            return sum(got.values()) > 0

        wait_for(worker_committed, "the outcomes worker to commit its first offsets")
        os.kill(worker.pid, signal.SIGKILL)  # no shutdown, no final commit, no flush
        worker.wait(timeout=10)
        second = publish(crash, events[half:])
        for key, end in second.stats.acked_end_offsets.items():
            targets[key] = max(targets.get(key, 0), end)
        worker = spawn_consumer(crash, "outcomes", crash.data_dir / "logs")
        settle(crash, targets, [persist, worker])
    finally:
        stop_processes(persist, worker)
    got = outcome_rows(crash)
    names = ["decision_id", *OUTCOME_COLUMNS.split(", ")]
    diffs = [
        (a[0], {n: (x, y) for n, x, y in zip(names, a, b, strict=True) if x != y})
        for a, b in zip(got, expected, strict=False) if a != b
    ]
    assert len(got) == len(expected) and not diffs, diffs[:5]


async def test_persist_keeps_the_last_outcome_on_the_topic_and_waits_for_late_decisions(
    settings,
):
    decision = factories.thesis(decision_id="dec-late")

    def update(revision: int, ret: float) -> OutcomeUpdated:
        return OutcomeUpdated(
            event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), producer="test",
            decision_id="dec-late", symbol="AMC", decision_type="BUY", is_counterfactual=False,
            entry_price=5.25, revision=revision, sessions_elapsed=revision, return_1d=ret,
        )

    # the worker publishes a decision's outcomes in causal order: the last one is the newest,
    # whatever its revision (a late bar can lower it, see rows.OUTCOMES)
    first, second, third = update(5, 0.05), update(3, 0.03), update(7, 0.07)
    publish(settings, [first])  # before its decision: waits in the backlog
    await run_persist(bootstrap(settings), max_records=1, idle_exit_s=15, stats=LoopStats())
    assert rows(settings.database_url, "SELECT revision FROM outcome_backlog") == [(5,)]
    publish(settings, [decision, second])
    await run_persist(bootstrap(settings), max_records=2, idle_exit_s=15)
    assert rows(settings.database_url, "SELECT revision, return_1d FROM learning_outcomes") == [
        (3, 0.03)]
    assert rows(settings.database_url, "SELECT count(*) FROM outcome_backlog") == [(0,)]
    publish(settings, [first, third])  # several in one batch: the last of them
    await run_persist(bootstrap(settings), max_records=2, idle_exit_s=15)
    assert rows(settings.database_url, "SELECT revision, return_1d FROM learning_outcomes") == [
        (7, 0.07)]
