"""The outcome tracker rebuilds what a broker forgot from PostgreSQL: decisions tracked on
one broker, that broker gone with its topics, a new one, the tracker started again, and
every outcome row after the next bars is the row of an uninterrupted run."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from amc_learning.entrypoints import infra
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.entrypoints.supervise import spawn_consumer, stop_processes, wait_until_started
from amc_learning.settings import Settings
from amc_learning.simulator.world import SimConfig, simulate
from amc_learning.streams.kafka import client_options
from amc_learning.streams.topics import TopicNames, create_topics
from tests.integration.helpers import outcome_rows, publish_and_settle, rows

pytestmark = pytest.mark.integration

#: 60 sessions, then the broker is lost, then 40 more: the decisions of the last 30
#: sessions before the loss are still open (the longest horizon is 30 sessions)
SEED, SYMBOLS, BEFORE, AFTER = 29, 12, 60, 40


def _start(settings: Settings) -> list:
    return [spawn_consumer(settings, name, settings.data_dir / "logs")
            for name in ("persist", "outcomes")]


def _own_broker(settings: Settings, log: Path) -> tuple[int, Settings]:
    pid, bootstrap = infra.start_broker(log, port=infra.free_port())
    own = settings.with_overrides(kafka_bootstrap=bootstrap)
    asyncio.run(create_topics(client_options(own), TopicNames(own.topic_prefix), 3, 1))
    return pid, own


def test_a_tracker_whose_broker_forgot_everything_rebuilds_its_open_state(
        settings, more_settings, tmp_path):
    days = [list(events) for events in simulate(SimConfig(seed=SEED, symbols=SYMBOLS,
                                                          days=BEFORE + AFTER))]
    before = [e for day in days[:BEFORE] for e in day]
    after = [e for day in days[BEFORE:] for e in day]

    calm = more_settings()  # the yardstick: one broker all along
    procs = _start(calm)
    try:
        publish_and_settle(calm, before + after, procs)
    finally:
        stop_processes(*procs)
    expected = outcome_rows(calm)

    pid, first = _own_broker(settings, tmp_path / "broker-1.log")
    procs = _start(first)
    try:
        publish_and_settle(first, before, procs)
    finally:
        stop_processes(*procs)
        infra.stop_process(pid)  # its topics, the tracker's changelog among them, are gone
    [(open_,)] = rows(settings.database_url, "SELECT count(*) FROM learning_outcomes"
                                             " WHERE outcome_type = 'open'")
    assert open_ > 0
    # what the rebuild will publish, symbol by symbol: each symbol's own open decisions
    deps = bootstrap(settings)
    with deps.db.unit_of_work() as uow:
        per_symbol = uow.tracking.open_symbols(30, 250)
        listed = {s: uow.tracking.open_of(s, 30, 250) for s, _ in per_symbol}
    deps.close()
    assert all(len(listed[s]) == n and {r["decision_id"] for r in listed[s]} <= {
        d for (d,) in rows(settings.database_url, "SELECT decision_id FROM"
                           " learning_decisions WHERE symbol = %s", s)}
        for s, n in per_symbol)
    expected_rebuilt = sum(n for _, n in per_symbol)
    assert expected_rebuilt >= open_

    pid, second = _own_broker(settings, tmp_path / "broker-2.log")
    procs = _start(second)
    try:
        # the tracker publishes what it lost before it starts: wait until it has started
        wait_until_started(second, procs)
        publish_and_settle(second, after, procs)
    finally:
        stop_processes(*procs)
        infra.stop_process(pid)
    got = outcome_rows(settings)
    assert len(got) == len(expected)
    differ = [(g, e) for g, e in zip(got, expected, strict=True) if g != e]
    assert not differ, f"{len(differ)} outcome rows differ, e.g. {differ[:2]}"
    log = (settings.data_dir / "logs" / "outcomes.log").read_text()
    [line] = [x for x in log.splitlines() if "outcome state rebuilt from PostgreSQL" in x]
    decisions, candidates = (int(w.replace(",", "")) for w in re.findall(
        r"([\d,]+) open decisions and ([\d,]+) candidates", line)[0])
    assert decisions + candidates == expected_rebuilt, line
