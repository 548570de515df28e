"""SIGKILL the persist and the outcomes workers at random points of a ~50k-event stream."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time

import pytest

from amc_learning.schemas import topics
from amc_learning.settings import Settings
from amc_learning.streams.offsets import committed_offsets
from tests.faults.conftest import LONG, Budget, Reference, Tally
from tests.faults.pipeline import RESERVE_S, Feeder, Pipeline
from tests.integration.helpers import (
    OUTCOME_COLUMNS,
    outcome_rows,
    read_topic,
    rows,
)

#: The calm reference run (a session fixture, charged to this test) and the kills take about
#: 400 s on one core of this machine and twice that beside a CPU hog (`make faults-slow`).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200 if not LONG else 2400)]

KILLS = 5 if not LONG else 12
SEED = 20261124


def kill_plan(rng: random.Random, n: int) -> list[float]:
    """`n` points of the stream, as shares of it, at least 5 % apart."""
    while True:
        points = sorted(rng.uniform(0.03, 0.97) for _ in range(n))
        if all(b - a >= 0.05 for a, b in itertools.pairwise(points)):
            return points


def diff_rows(got: list, expected: list) -> list:
    names = ["decision_id", *OUTCOME_COLUMNS.split(", ")]
    return [(a[0], {n: (x, y) for n, x, y in zip(names, a, b, strict=True) if x != y})
            for a, b in zip(got, expected, strict=False) if a != b]


def diagnose(settings: Settings, got: list, expected: list) -> str:
    """Where the missing outcomes went: never published, or published and not stored."""
    missing = {r[0] for r in expected} - {r[0] for r in got}
    records = asyncio.run(read_topic(settings, topics.OUTCOMES, expected=10**9, timeout=10))
    published = {json.loads(r.value)["decision_id"] for r in records}
    backlog = rows(settings.database_url, "SELECT count(*) FROM outcome_backlog")[0][0]
    return (f"{len(missing)} outcomes missing, {len(missing & published)} of them published; "
            f"{backlog} waiting in the backlog; e.g. {sorted(missing)[:3]}; "
            f"{in_state(settings, sorted(missing)[:3])}")


def in_state(settings: Settings, decisions: list[str]) -> str:
    """What the tracker's changelog says of some decisions: in how many state versions of
    their symbol each was tracked, and in how many it was already done."""
    changelog = f"{settings.outcomes_group}-outcome_state-changelog"
    records = asyncio.run(read_topic(settings, changelog, expected=10**9, timeout=10))
    seen = {d: [0, 0] for d in decisions}
    for record in records:
        state = json.loads(record.value) if record.value else {}
        for d in decisions:
            seen[d][0] += d in state.get("tracked", {})
            seen[d][1] += d in state.get("done", {})
    return f"changelog versions (tracked, done) of {len(records)}: {seen}"


def explain(settings: Settings, diffs: list) -> str:
    """The outcome messages behind the first differing row, for whoever must debug it."""
    first = diffs[0][0]
    records = asyncio.run(read_topic(settings, topics.OUTCOMES, expected=10**9, timeout=10))
    mine = [r for r in records if json.loads(r.value)["decision_id"] == first]
    keys = ("revision", "outcome_type", "sessions_elapsed", "price_at_outcome", "return_pct")
    seen = [{"at": f"{r.partition}@{r.offset}", **{k: json.loads(r.value).get(k) for k in keys}}
            for r in mine]
    partitions = sorted({(r.topic, r.partition) for r in mine})
    committed = asyncio.run(committed_offsets(settings, settings.persist_group, partitions))
    return (f"{len(diffs)} rows differ; first {diffs[0]}; its messages: {seen}; "
            f"persist committed {committed}; {in_state(settings, [first])}")


def test_sigkill_persist_and_outcomes_at_random_points(
    more_settings, reference: Reference, tally: Tally, budget: Budget
):
    rng = random.Random(SEED)
    crash = more_settings()
    total = len(reference.events)
    plan = {name: kill_plan(rng, KILLS) for name in ("persist", "outcomes")}
    pipeline = Pipeline(crash).start()
    feeder = Feeder(crash, reference.events)
    feeder.start()
    last_kill = {"persist": -1, "outcomes": -1}
    try:
        while any(plan.values()):
            if budget.left(RESERVE_S + 60) < 0:  # a minute at least to settle
                raise AssertionError(f"out of time with kills left undone: {plan} "
                                     f"(feeder sent {feeder.publisher.stats.sent} of {total})\n"
                                     f"{pipeline.report()}")
            for name, points in plan.items():
                # the next point, once the restarted worker has made progress of its own;
                # a worker that committed the whole stream in one batch past two points
                # has no progress left to make: it is killed again at once (in recovery)
                at = min(max(points[0] * total, last_kill[name] + 1), total) if points else None
                if at is not None and (done := pipeline.consumed(name)) >= at:
                    pipeline.kill(name)
                    last_kill[name] = done
                    points.pop(0)
            time.sleep(0.1)
        pipeline.settle(feeder.targets(timeout_s=budget.left(RESERVE_S)), budget)
        alive = pipeline.alive()
    finally:
        pipeline.stop()

    tally.count(reference.events, crash.database_url)
    tally.note = f"kills {pipeline.kills}, seed {SEED}"
    got = outcome_rows(crash)
    diffs = diff_rows(got, reference.outcomes)
    assert pipeline.kills == {"persist": KILLS, "outcomes": KILLS}
    assert all(alive.values()), alive
    assert tally.lost == 0 and tally.duplicated == 0 and tally.stored == total
    restarts = sum(log.read_text().count("restarting from the committed offsets")
                   for log in crash.data_dir.glob("logs/outcomes.log"))
    tally.note += f", outcomes restarted itself {restarts}x on a skip"
    why = ("" if len(got) == len(reference.outcomes) and not diffs
           else diagnose(crash, got, reference.outcomes) if len(got) != len(reference.outcomes)
           else explain(crash, diffs))
    assert not why, f"outcomes after SIGKILL differ from the calm run's: {why}"
