"""The main job: infrastructure, migrations, topics, consumer processes, simulation, summary.

With learning on (the default), the simulated market is paced by the learner. Every
`cycle_every` sessions a daily cycle starts as of the last session published: it waits
until persist and outcomes have stored and tracked everything up to that session, then
learns. The market goes on meanwhile, as it would live. `cycle_every` sessions later the
run waits for that cycle to end and for the simulated trading engine's `ParamsReader` to
hold what it published, then starts the next one: params issued as of session D trade
from session D + cycle_every + 1 on. Faster than real time, causally the same as live: a
decision of session S is made on params a cycle issued as of a session before S.

About 400 lines: the job's steps, the waits on its consumers and the paced learner, which
share the consumer processes and the publishing loop.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from amc_learning.consumers.outcomes import tracker_config
from amc_learning.feeds import AmcTraderFeed
from amc_learning.intelligence.adaptive import Guardrails
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.schemas.registry import TOPIC_OF_EVENT
from amc_learning.schemas.signing import new_private_key
from amc_learning.schemas.topics import OUTCOMES
from amc_learning.service.cycle import explain, run_cycle
from amc_learning.settings import Settings
from amc_learning.simulator.corrupt import corrupt
from amc_learning.simulator.world import SimConfig, World, next_start, simulate
from amc_learning.store.figures import STORED_QUERIES, outcome_counts, stored_counts
from amc_learning.store.frames import last_session
from amc_learning.store.migrations import migrate
from amc_learning.store.params import history
from amc_learning.streams.kafka import client_options, producer_options, stop_client
from amc_learning.streams.params import ParamsReader
from amc_learning.streams.publisher import LearningPublisher
from amc_learning.streams.topics import TopicNames, create_topics

Say = Callable[[str], None]
class RunError(RuntimeError):
    """The run could not complete; the message says why and what to do."""


@dataclass
class Produced:
    by_topic: Counter[str] = field(default_factory=Counter)
    #: (full topic, partition) -> end offset the consumers must reach.
    targets: dict[tuple[str, int], int] = field(default_factory=dict)
    #: decisions per params arm the simulated trading engine read ("fallback", "v3 live")
    params_used: Counter[str] = field(default_factory=Counter)
    #: what each arm earned, beside the counterfactual fallback (`simulator.ledger`)
    pnl: dict[str, object] = field(default_factory=dict)
    #: with a producer's shapes: its records, what the adapters made of them
    native: AmcTraderFeed | None = None

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


def spawn_consumer(settings: Settings, name: str, log_dir: Path,
                   log_name: str | None = None) -> subprocess.Popen[bytes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_dir / f"{log_name or name}.log", "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, "-m", "amc_learning.cli", "consume", name],
        env={**os.environ, **settings_env(settings)}, stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def stop_processes(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM each (they drain and exit), SIGKILL what is still running 30 s later."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class Pacing:
    """Learning between sessions (see the module docstring)."""

    consumers: list[subprocess.Popen[bytes]]
    every: int = 5
    policy: RolloutPolicy | None = None
    guardrails: Guardrails | None = None


def publish_simulation(
    settings: Settings, config: SimConfig, bad_rate: float, say: Say,
    pacing: Pacing | None = None, producer: str = "native",
) -> Produced:
    """Publish every simulated event through LearningPublisher, plus deliberately broken
    copies of a `bad_rate` share of them through a raw producer (they must be rejected).
    With `pacing`, learn every `pacing.every` sessions before the next one. `producer`:
    "amc-trader" sends them through AMC-Trader's shapes and the adapters
    (`AmcTraderFeed`)."""
    produced = Produced(native=AmcTraderFeed() if producer == "amc-trader" else None)
    rng = random.Random(config.seed)
    broken: list[tuple[str, bytes, bytes]] = []
    names = TopicNames(settings.topic_prefix)
    publisher = LearningPublisher.from_settings(settings).start()
    reader = ParamsReader.from_settings(settings).start()
    world = World(config, params=reader, params_name=settings.params_name)

    def send_broken() -> None:
        produced.merge_targets(asyncio.run(send_records(settings, broken)))
        for topic, _, _ in broken:
            produced.by_topic[names.base(topic)] += 1
        broken.clear()

    learner = Learner(settings, pacing, reader, say) if pacing is not None else None
    try:
        for day, events in enumerate(simulate(config, world=world), start=1):
            if produced.native is not None:
                events = produced.native(events)
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
            if learner is not None and day % learner.pacing.every == 0 and day < config.days:
                send_broken()
                produced.merge_targets(publisher.stats.acked_end_offsets)
                learner.join()  # the previous cycle's params trade from the next session
                learner.start(world.hist.sessions[world.t - 1], produced.targets)
    finally:
        if learner is not None:
            learner.join()
        publisher.close()
        reader.close()
    produced.params_used = world.params_used
    produced.pnl = world.ledger.summary()
    if publisher.stats.dropped or publisher.stats.invalid:
        raise RunError(f"publisher lost events: {publisher.stats}")
    produced.by_topic.update(publisher.stats.sent_by_topic)
    produced.merge_targets(publisher.stats.acked_end_offsets)
    send_broken()
    return produced


class Learner:
    """The paced run's learning cycles, one at a time, beside the simulation."""

    def __init__(self, settings: Settings, pacing: Pacing, reader: ParamsReader,
                 say: Say) -> None:
        self.settings, self.pacing, self.reader, self.say = settings, pacing, reader, say
        self._thread: threading.Thread | None = None
        self._published: list[tuple[int, str]] = []

    def start(self, as_of: date, targets: dict[tuple[str, int], int]) -> None:
        """The cycle as of `as_of`, once everything up to `targets` is stored and tracked."""
        self._thread = threading.Thread(target=self._cycle, args=(as_of, dict(targets)),
                                        name=f"learner-{as_of}", daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Wait for the running cycle, then until the reader holds what it published."""
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        published, self._published = self._published, []
        name = self.settings.params_name

        def holds(r: ParamsReader) -> bool:
            held = r.status()["held"].get(name, {})
            return all(held.get(mode) == version for version, mode in published)

        if published and not self.reader.wait_for(holds, timeout=60.0):
            self.say(f"  the simulated trading engine's reader did not show {published} "
                     f"within 60 s: it trades on what it holds ({self.reader.status()['held']})")

    def _cycle(self, as_of: date, targets: dict[tuple[str, int], int]) -> None:
        try:
            wait_until_settled(self.settings, targets, self.pacing.consumers, say=lambda _: None)
            summary = run_cycle(self.settings, "daily", as_of, self.pacing.policy,
                                guardrails=self.pacing.guardrails, report=False)
        except Exception as exc:  # learning never stops the trading: it goes on as it is
            self.say(f"  learner as of {as_of}: the cycle failed ({type(exc).__name__}: "
                     f"{exc}); trading goes on with the params it holds")
            return
        for change in summary.get("changes", []):
            self.say(f"  learner as of {as_of}: version {change['version']} -> "
                     f"{change['mode']}")
        self._published = [(c["version"], c["mode"]) for c in summary.get("changes", [])
                           if c["publish"]]


async def send_records(
    settings: Settings, records: list[tuple[str, bytes, bytes]]
) -> dict[tuple[str, int], int]:
    """Send (full topic, key, value) records as they are; the end offset of each partition."""
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
    settings: Settings, group: str, partitions: list[tuple[str, int]],
    timeout_s: float = 60.0,
) -> dict[tuple[str, int], int]:
    """The group's committed offsets (OffsetFetch; works on Tansu, unlike the admin API).
    Raises TimeoutError when the broker does not answer within `timeout_s`."""
    consumer = _group_client(settings, group)

    async def fetch() -> dict[tuple[str, int], int]:
        await consumer.start()
        return await _committed(consumer, partitions)

    try:
        return await asyncio.wait_for(fetch(), timeout_s)
    finally:
        await stop_client(consumer, timeout_s=5.0)


def _group_client(settings: Settings, group: str) -> AIOKafkaConsumer:
    """A client that asks for `group`'s committed offsets and never joins it."""
    return AIOKafkaConsumer(**client_options(settings), group_id=group, enable_auto_commit=False)


async def _committed(consumer: AIOKafkaConsumer,
                     partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    return {(topic, partition): await consumer.committed(TopicPartition(topic, partition)) or 0
            for topic, partition in partitions}


def wait_until_consumed(
    settings: Settings, group: str, targets: dict[tuple[str, int], int],
    processes: list[subprocess.Popen[bytes]], say: Say, timeout_s: float = 900.0,
) -> None:
    """Block until `group` has committed every target offset; fail if a consumer died."""
    asyncio.run(_wait_consumed(settings, group, targets, processes, say, timeout_s))


async def _wait_consumed(
    settings: Settings, group: str, targets: dict[tuple[str, int], int],
    processes: list[subprocess.Popen[bytes]], say: Say, timeout_s: float,
) -> None:
    """One client asks for the group's committed offsets (OffsetFetch) every 0.1 s."""
    deadline = time.monotonic() + timeout_s
    total = sum(targets.values())
    last_report = time.monotonic()
    consumer = _group_client(settings, group)
    try:
        await asyncio.wait_for(consumer.start(), 60.0)
        while True:
            committed = await asyncio.wait_for(_committed(consumer, targets), 60.0)
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
            await asyncio.sleep(0.1)
    finally:
        await stop_client(consumer, timeout_s=5.0)


def wait_until_settled(settings: Settings, targets: dict[tuple[str, int], int],
                       processes: list[subprocess.Popen[bytes]], say: Say) -> None:
    """Until persist and outcomes have consumed `targets`, and persist every outcome."""
    wait_until_consumed(settings, settings.persist_group, targets, processes, say)
    outcomes_group = settings.topic_prefix + settings.outcomes_group
    wait_until_consumed(settings, outcomes_group, targets, processes, say)
    outcome_ends = asyncio.run(_end_offsets(settings, settings.topic_prefix + OUTCOMES))
    wait_until_consumed(settings, settings.persist_group, outcome_ends, processes, say)


def run(
    settings: Settings, *, days: int, seed: int, symbols: int, bad_rate: float,
    start: date | None, say: Say, workers: int = 1, learning: bool = True,
    cycle_every: int = 5, policy: RolloutPolicy | None = None,
    guardrails: Guardrails | None = None, producer: str = "native",
) -> dict[str, object]:
    """The whole job against provisioned settings; returns the machine-readable summary.
    `learning`: pace the market by the learner's cycles (module docstring); without it,
    the learner process follows on its own and one cycle runs at the end."""
    assert settings.database_url
    say("applying migrations and creating topics")
    prepare(settings)
    before = stored_counts(settings.database_url)
    start = start or next_start(last_session(settings.database_url))
    config = SimConfig(seed=seed, symbols=symbols, start=start, days=days)
    logs = settings.data_dir / "logs"
    settings = with_signing_key(settings)
    assert settings.database_url
    known_versions = {(r["version"], r["mode"]) for r in history(settings.database_url,
                                                                  settings.params_name)}
    names = [f"{kind}-{i}" if workers > 1 else kind for kind in ("persist", "outcomes")
             for i in range(1, workers + 1)] + ([] if learning else ["learner"])
    consumers = [spawn_consumer(settings, name.split("-")[0], logs, name) for name in names]
    say("started consumer processes: "
        + ", ".join(f"{n} (pid {p.pid})" for n, p in zip(names, consumers, strict=True))
        + f"; `amc-learning status` shows them (data dir {settings.data_dir})")
    try:
        say(f"simulating {days} sessions of {symbols} symbols from {start} (seed {seed})"
            + (f", learning every {cycle_every} sessions" if learning else ""))
        pacing = Pacing(consumers, cycle_every, policy, guardrails) if learning else None
        produced = publish_simulation(settings, config, bad_rate, say, pacing, producer)
        say("waiting for persist and outcomes to consume everything")
        wait_until_settled(settings, produced.targets, consumers, say)
    finally:
        stop_processes(*consumers)
    say("learner: daily cycle on the last session")  # the learner process has stopped:
    try:  # never two cycles of one as-of at once
        run_cycle(settings, "daily", policy=policy, guardrails=guardrails)
    except Exception as exc:  # learning never fails the run: the data are stored
        say(f"learner: the final cycle failed ({type(exc).__name__}: {exc}); "
            f"see `amc-learning cycle daily`")
    changed = [r for r in history(settings.database_url, settings.params_name)
               if (r["version"], r["mode"]) not in known_versions]
    versions = [
        {"version": r["version"], "mode": r["mode"], "as_of": str(r["as_of"]),
         "published": r["published"], "canary_pct": r["canary_pct"], "why": explain(r)}
        for r in changed
    ]
    after = stored_counts(settings.database_url)
    tables = [t for t in STORED_QUERIES if t != "dead_letters"]
    longest = tracker_config(settings).longest
    account = None if produced.native is None else produced.native.account
    shapes = {} if account is None else {"producer": {
        "name": producer, "records": account.read,
        "events": account.read - len(account.rejected),
        "rejected": dict(Counter(r for _, r in account.rejected).most_common())}}
    return {
        **shapes,
        "produced": dict(sorted(produced.by_topic.items())),
        "stored": {t: after[t] - before[t] for t in tables},
        "rejected": after["dead_letters"] - before["dead_letters"],
        "totals": {t: after[t] for t in tables},
        "outcomes": outcome_counts(settings.database_url, start, longest),
        "params": {"versions": versions, "decisions_by_params": dict(produced.params_used),
                   **({"pnl": produced.pnl} if learning else {})},
    }


def with_signing_key(settings: Settings) -> Settings:
    """Settings with a params signing key: LEARNING_PARAMS_SIGNING_KEY, else a key made
    once into the data dir (embedded setups, so `make run` needs no configuration; the
    processes it starts verify with the key's public half)."""
    if settings.params_signing_key is not None:
        return settings
    path = settings.data_dir / "params-signing.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(0o600)
        path.write_text(new_private_key())
    return settings.with_overrides(params_signing_key=SecretStr(path.read_text().strip()))


async def _end_offsets(settings: Settings, topic: str) -> dict[tuple[str, int], int]:
    """End offsets of `topic`. Exact on Tansu only because the outcomes worker produces
    one record per batch (see `outcomes_producer_batch_bytes`)."""
    consumer = AIOKafkaConsumer(**client_options(settings))
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): end for tp, end in ends.items() if end}
    finally:
        await consumer.stop()
