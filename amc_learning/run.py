"""The main job: infrastructure, migrations, topics, consumer processes, simulation, summary."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from amc_learning.settings import Settings
from consumers.migrations import migrate
from consumers.rows import ALL_TABLES, DEAD_LETTERS
from consumers.store import count_rows
from schemas.registry import TOPIC_OF_EVENT
from simulator.corrupt import corrupt
from simulator.world import INDEX_SYMBOL, SimConfig, next_start, simulate
from streams.kafka import client_options, producer_options
from streams.publisher import LearningPublisher
from streams.topics import TopicNames, create_topics

TABLES = tuple(t.name for t in ALL_TABLES)
Say = Callable[[str], None]


class RunError(RuntimeError):
    """The run could not complete; the message says why and what to do."""


@dataclass
class Produced:
    by_topic: Counter[str] = field(default_factory=Counter)
    #: (full topic, partition) -> end offset the consumers must reach.
    targets: dict[tuple[str, int], int] = field(default_factory=dict)

    def merge_targets(self, ends: dict[tuple[str, int], int]) -> None:
        for key, end in ends.items():
            self.targets[key] = max(self.targets.get(key, 0), end)


def settings_env(settings: Settings) -> dict[str, str]:
    """The LEARNING_* environment that reproduces `settings` in a child process."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"LEARNING_{name.upper()}"] = str(value)
    return env


def prepare(settings: Settings) -> dict[str, str]:
    """Apply migrations and create topics; return topic -> created/exists."""
    assert settings.database_url and settings.kafka_bootstrap
    migrate(settings.database_url)
    return asyncio.run(create_topics(
        client_options(settings), TopicNames(settings.topic_prefix),
        settings.topic_partitions, settings.topic_replication,
    ))


def spawn_consumer(settings: Settings, name: str, log_dir: Path) -> subprocess.Popen[bytes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, "-m", "amc_learning.cli", "consume", name],
        env={**os.environ, **settings_env(settings)}, stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def last_simulated_session(database_url: str) -> date | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT max(session) FROM price_bars WHERE symbol = %s", (INDEX_SYMBOL,)
        ).fetchone()
    return row[0] if row else None


def publish_simulation(
    settings: Settings, config: SimConfig, bad_rate: float, say: Say
) -> Produced:
    """Publish every simulated event through LearningPublisher, plus deliberately broken
    copies of a `bad_rate` share of them through a raw producer (they must be rejected)."""
    produced = Produced()
    rng = random.Random(config.seed)
    broken: list[tuple[str, bytes, bytes]] = []
    names = TopicNames(settings.topic_prefix)
    publisher = LearningPublisher.from_settings(settings).start()
    try:
        for day, events in enumerate(simulate(config), start=1):
            for event in events:
                publisher.publish(event)
                if rng.random() < bad_rate:
                    _, raw = corrupt(event, rng)
                    topic = names(TOPIC_OF_EVENT[event.event_type])
                    broken.append((topic, event.key.encode(), raw))
            if not publisher.flush(timeout=120):
                raise RunError("the broker stopped acknowledging events (waited 120 s)")
            if day % 50 == 0 or day == config.days:
                say(f"  simulated {day}/{config.days} sessions, {publisher.stats.sent} events sent")
    finally:
        publisher.close()
    if publisher.stats.dropped or publisher.stats.invalid:
        raise RunError(f"publisher lost events: {publisher.stats}")
    produced.by_topic.update(publisher.stats.sent_by_topic)
    produced.merge_targets(publisher.stats.acked_end_offsets)
    produced.merge_targets(asyncio.run(_send_raw(settings, broken)))
    for topic, _, _ in broken:
        produced.by_topic[names.base(topic)] += 1
    return produced


async def _send_raw(
    settings: Settings, records: list[tuple[str, bytes, bytes]]
) -> dict[tuple[str, int], int]:
    ends: dict[tuple[str, int], int] = {}
    if not records:
        return ends
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        futures = [await producer.send(t, value, key=key) for t, key, value in records]
        for metadata in await asyncio.gather(*futures):
            key = (metadata.topic, metadata.partition)
            ends[key] = max(ends.get(key, 0), metadata.offset + 1)
    finally:
        await producer.stop()
    return ends


async def committed_offsets(
    settings: Settings, group: str, partitions: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The group's committed offsets (OffsetFetch; works on Tansu, unlike the admin API)."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        out = {}
        for topic, partition in partitions:
            offset = await consumer.committed(TopicPartition(topic, partition))
            out[(topic, partition)] = offset or 0
        return out
    finally:
        await consumer.stop()


def wait_until_consumed(
    settings: Settings, group: str, targets: dict[tuple[str, int], int],
    processes: list[subprocess.Popen[bytes]], say: Say, timeout_s: float = 900.0,
) -> None:
    """Block until `group` has committed every target offset; fail if a consumer died."""
    deadline = time.monotonic() + timeout_s
    total = sum(targets.values())
    last_report = 0.0
    while True:
        committed = asyncio.run(committed_offsets(settings, group, sorted(targets)))
        behind = sum(max(0, end - committed[key]) for key, end in targets.items())
        if behind == 0:
            return
        for proc in processes:
            if proc.poll() is not None:
                raise RunError(f"a consumer exited with code {proc.returncode}; "
                               f"see the logs in {settings.data_dir / 'logs'}")
        if time.monotonic() > deadline:
            raise RunError(f"consumers still {behind} events behind after {timeout_s:.0f} s")
        if time.monotonic() - last_report > 5:
            say(f"  waiting for consumers: {total - behind}/{total} offsets committed")
            last_report = time.monotonic()
        time.sleep(0.5)


def run(
    settings: Settings, *, days: int, seed: int, symbols: int, bad_rate: float,
    start: date | None, say: Say,
) -> dict[str, object]:
    """The whole job against provisioned settings; returns the machine-readable summary."""
    assert settings.database_url
    say("applying migrations and creating topics")
    prepare(settings)
    before = count_rows(settings.database_url, (*TABLES, DEAD_LETTERS.name))
    start = start or next_start(last_simulated_session(settings.database_url))
    config = SimConfig(seed=seed, symbols=symbols, start=start, days=days)
    consumers = [spawn_consumer(settings, "persist", settings.data_dir / "logs")]
    say(f"started consumer processes: persist (pid {consumers[0].pid})")
    try:
        say(f"simulating {days} sessions of {symbols} symbols from {start} (seed {seed})")
        produced = publish_simulation(settings, config, bad_rate, say)
        wait_until_consumed(settings, settings.persist_group, produced.targets, consumers, say)
    finally:
        for proc in consumers:
            proc.terminate()
        for proc in consumers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    after = count_rows(settings.database_url, (*TABLES, DEAD_LETTERS.name))
    stored = {t: after[t] - before[t] for t in TABLES}
    return {
        "produced": dict(sorted(produced.by_topic.items())),
        "stored": stored,
        "rejected": after[DEAD_LETTERS.name] - before[DEAD_LETTERS.name],
        "totals": {t: after[t] for t in TABLES},
    }
