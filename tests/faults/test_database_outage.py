"""PostgreSQL stops in the middle of a stream and comes back."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from amc_learning.consumers.loop import Backoff, LoopStats
from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.store.rows import PERSIST_TOPICS
from amc_learning.streams.offsets import committed_offsets
from tests.faults.conftest import LONG, OwnPostgres, Tally
from tests.faults.pipeline import Feeder, stream

pytestmark = pytest.mark.integration

OUTAGE_S = 12.0 if not LONG else 30.0


async def until(predicate, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_persist_rides_out_a_database_outage(settings, own_postgres: OwnPostgres,
                                                   tally: Tally):
    s = settings.with_overrides(database_url=own_postgres.url)
    events = stream(31, 40, 90)
    thirds = [events[i * len(events) // 3:(i + 1) * len(events) // 3] for i in range(3)]
    partitions = [(s.topic_prefix + t, p) for t in PERSIST_TOPICS for p in range(3)]

    async def committed() -> int:
        return sum((await committed_offsets(s, s.persist_group, partitions)).values())

    stats, stop = LoopStats(), asyncio.Event()
    task = asyncio.create_task(run_persist(bootstrap(s), stop=stop, stats=stats))
    targets: dict = {}
    try:
        first = Feeder(s, thirds[0])
        first.start()
        targets.update(await asyncio.to_thread(first.targets))
        await until(lambda: stats.consumed >= len(thirds[0]), "the first third to be stored")

        own_postgres.stop()
        down_at = time.monotonic()
        second = Feeder(s, thirds[1])
        second.start()
        await until(lambda: stats.health == "degraded", "persist to report degraded health")
        frozen = await committed()
        samples = []
        while time.monotonic() - down_at < OUTAGE_S:
            samples.append(await committed())
            await asyncio.sleep(1.0)
        retries_during = stats.retries
        own_postgres.start()

        third = Feeder(s, thirds[2])
        third.start()
        for feeder in (second, third):
            for key, end in (await asyncio.to_thread(feeder.targets)).items():
                targets[key] = max(targets.get(key, 0), end)
        await until(lambda: stats.consumed >= len(events), "every event to be stored", 120)
        await until(lambda: stats.health == "ready", "persist to report ready again")
    finally:
        stop.set()
        await task
    end = await committed()

    tally.count(events, own_postgres.url)
    tally.note = f"{OUTAGE_S:.0f} s outage, {retries_during} retries during it"
    # nothing committed while the database was away: the batch waits, nothing is skipped
    assert samples and set(samples) == {frozen}, samples
    # back-off, not a busy loop: at most the attempts of a doubling delay over the outage
    backoff = Backoff()
    bound = 2 + math.ceil(math.log2(backoff.max_s / backoff.first_s)) + OUTAGE_S / backoff.max_s
    assert 1 <= retries_during <= bound, (retries_during, bound)
    assert end == sum(targets.values()) == len(events)
    assert tally.lost == 0 and tally.duplicated == 0 and tally.stored == len(events)
