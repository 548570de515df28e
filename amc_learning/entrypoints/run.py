"""The main job: infrastructure, migrations, topics, consumer processes, simulation, summary.

With learning on (the default), the simulated market is paced by the learner. Every
`cycle_every` sessions the market stops after a session's close, as it does overnight: a
daily cycle as of that session waits until persist and outcomes have stored and tracked
everything up to it, learns, and the run waits for the simulated trading engine's
`ParamsReader` to hold what it published before the next session opens. Params issued as
of session D trade from session D + 1, as they would live, and every run of a seed makes
the same decisions (`backtest` replays the same loop from what is stored, and must find
the same path and P&L: tests/integration/test_paced_run.py).

Its consumer processes are started and waited on by `entrypoints.supervise`, the cycles
run by `entrypoints.pacing.Learner`.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from amc_learning.consumers.outcomes import tracker_config
from amc_learning.entrypoints.bootstrap import with_signing_key
from amc_learning.entrypoints.feeds import SCANNER, AmcTraderFeed
from amc_learning.entrypoints.pacing import Learner, Pacing
from amc_learning.entrypoints.supervise import (
    RunError,
    Say,
    spawn_consumer,
    stop_processes,
    wait_until_settled,
    wait_until_started,
)
from amc_learning.intelligence.cycle import explain
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.intelligence.stats import block_bootstrap_interval
from amc_learning.schemas.params import param_set
from amc_learning.schemas.registry import TOPIC_OF_EVENT
from amc_learning.service.cycle import AnyGuardrails, run_cycle
from amc_learning.service.deliver import export
from amc_learning.service.deps import Deps
from amc_learning.simulator.corrupt import corrupt
from amc_learning.simulator.world import INDEX_SYMBOL, SimConfig, World, next_start, simulate
from amc_learning.store.figures import STORED_QUERIES
from amc_learning.store.migrations import migrate
from amc_learning.streams.kafka import client_options
from amc_learning.streams.offsets import Partition, send_records
from amc_learning.streams.params import ParamsReader
from amc_learning.streams.publisher import LearningPublisher
from amc_learning.streams.topics import TopicNames, create_topics

__all__ = ["Produced", "RunError", "prepare", "publish_simulation", "run"]


@dataclass
class Produced:
    by_topic: Counter[str] = field(default_factory=Counter)
    #: (full topic, partition) -> end offset the consumers must reach.
    targets: dict[Partition, int] = field(default_factory=dict)
    #: decisions per params arm the simulated trading engine read ("fallback", "v3 live")
    params_used: Counter[str] = field(default_factory=Counter)
    #: what each arm earned, beside the counterfactual fallback (`simulator.ledger`)
    pnl: dict[str, object] = field(default_factory=dict)
    #: with a producer's shapes: its records, what the adapters made of them
    native: AmcTraderFeed | None = None

    def merge_targets(self, ends: dict[Partition, int]) -> None:
        for key, end in ends.items():
            self.targets[key] = max(self.targets.get(key, 0), end)


def prepare(deps: Deps) -> dict[str, str]:
    """Apply migrations and create topics; return topic -> created/exists."""
    settings = deps.settings
    migrate(deps.db)
    return asyncio.run(create_topics(
        client_options(settings), TopicNames(settings.topic_prefix),
        settings.topic_partitions, settings.topic_replication,
    ))


def publish_simulation(
    deps: Deps, config: SimConfig, bad_rate: float, say: Say,
    pacing: Pacing | None = None, producer: str = "native",
) -> Produced:
    """Publish every simulated event through LearningPublisher, plus deliberately broken
    copies of a `bad_rate` share of them through a raw producer (they must be rejected).
    With `pacing`, learn every `pacing.every` sessions before the next one. `producer`:
    "amc-trader" sends them through AMC-Trader's shapes and the adapters
    (`AmcTraderFeed`)."""
    settings = deps.settings
    produced = Produced(native=AmcTraderFeed() if producer == "amc-trader" else None)
    rng = random.Random(config.seed)
    broken: list[tuple[str, bytes, bytes]] = []
    names = TopicNames(settings.topic_prefix)
    publisher = LearningPublisher.from_settings(settings).start()
    scanner = SCANNER if producer == "amc-trader" else None
    reader = ParamsReader.from_settings(settings).start()
    world = World(config, params=reader, params_name=settings.params_name, scanner=scanner)

    def send_broken() -> None:
        produced.merge_targets(asyncio.run(send_records(settings, broken)))
        for topic, _, _ in broken:
            produced.by_topic[names.base(topic)] += 1
        broken.clear()

    learner = Learner(deps, pacing, reader, say) if pacing is not None else None
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
                learner.cycle(world.hist.sessions[world.t - 1], produced.targets)
    finally:
        publisher.close()
        reader.close()
    produced.params_used = world.params_used
    produced.pnl = with_interval(world.ledger.summary())
    if publisher.stats.dropped or publisher.stats.invalid:
        raise RunError(f"publisher lost events: {publisher.stats}")
    produced.by_topic.update(publisher.stats.sent_by_topic)
    produced.merge_targets(publisher.stats.acked_end_offsets)
    send_broken()
    return produced


def with_interval(pnl: dict[str, Any]) -> dict[str, Any]:
    """The ledger's summary with, for the sessions a learned version was live in, the sum
    of learned − fallback P&L per session and its 95 % moving-block bootstrap interval
    (blocks of the horizon: the trades' outcomes overlap)."""
    learned = dict(pnl["learned"])
    gaps = np.array(learned.pop("per_session", []))
    if len(gaps) >= 2 * pnl["horizon_sessions"]:  # two blocks at least
        low, high = block_bootstrap_interval(gaps, pnl["horizon_sessions"])
        learned["difference"] = {"total": round(float(gaps.sum()), 4), "low": round(low, 4),
                                 "high": round(high, 4)}
    return {**pnl, "learned": learned}


def run(
    deps: Deps, *, days: int, seed: int, symbols: int, bad_rate: float,
    start: date | None, say: Say, workers: int = 1, learning: bool = True,
    cycle_every: int = 5, policy: RolloutPolicy | None = None,
    guardrails: AnyGuardrails | tuple[AnyGuardrails, ...] | None = None, producer: str = "native",
) -> dict[str, Any]:
    """The whole job against provisioned dependencies; returns the machine-readable
    summary. `learning`: pace the market by the learner's cycles (module docstring);
    without it, the learner process follows on its own and one cycle runs at the end."""
    say("applying migrations and creating topics")
    prepare(deps)
    deps = deps.with_settings(with_signing_key(deps.settings))
    settings, db = deps.settings, deps.db
    scanner = SCANNER if producer == "amc-trader" else None
    learned = (param_set(f"{scanner.name} {scanner.version}") if scanner is not None
               else settings.params_name)  # the set trading's discovery reads
    with db.unit_of_work() as uow:
        before = uow.figures.stored_counts()
        start = start or next_start(uow.frames.last_session(INDEX_SYMBOL))
        known_versions = {(r["version"], r["mode"]) for r in uow.params.history(learned)}
    config = SimConfig(seed=seed, symbols=symbols, start=start, days=days)
    logs = settings.data_dir / "logs"
    names = [f"{kind}-{i}" if workers > 1 else kind for kind in ("persist", "outcomes")
             for i in range(1, workers + 1)] + ([] if learning else ["learner"])
    consumers = [spawn_consumer(settings, name.split("-")[0], logs, name) for name in names]
    say("started consumer processes: "
        + ", ".join(f"{n} (pid {p.pid})" for n, p in zip(names, consumers, strict=True))
        + f"; `amc-learning status` shows them (data dir {settings.data_dir})")
    try:
        wait_until_started(settings, consumers)  # its lost open state rebuilt, if any
        say(f"simulating {days} sessions of {symbols} symbols from {start} (seed {seed})"
            + (f", learning every {cycle_every} sessions" if learning else ""))
        pacing = Pacing(consumers, cycle_every, policy, guardrails) if learning else None
        produced = publish_simulation(deps, config, bad_rate, say, pacing, producer)
        say("waiting for persist and outcomes to consume everything")
        wait_until_settled(settings, produced.targets, consumers, say)
    finally:
        stop_processes(*consumers)
    say("learner: daily cycle on the last session")  # the learner process has stopped:
    try:  # never two cycles of one as-of at once
        run_cycle(deps, "daily", policy=policy, guardrails=guardrails)
    except Exception as exc:  # learning never fails the run: the data are stored
        say(f"learner: the final cycle failed ({type(exc).__name__}: {exc}); "
            f"see `amc-learning cycle daily`")
    exported = None
    if scanner is not None:  # the table as the scanner's own file, in the run's data folder
        with db.unit_of_work(snapshot=True) as uow:
            done = export(uow, f"{scanner.name} {scanner.version}")
        path = settings.data_dir / "amc-trader" / "scanner_weights.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(done.body, indent=2, ensure_ascii=False) + "\n")
        exported = {"path": str(path), "version": done.version, "notes": done.notes}
    with db.unit_of_work() as uow:
        changed = [r for r in uow.params.history(learned)
                   if (r["version"], r["mode"]) not in known_versions]
        after = uow.figures.stored_counts()
        outcomes = uow.figures.outcome_counts(tracker_config(settings).longest)
    versions = [
        {"version": r["version"], "mode": r["mode"], "as_of": str(r["as_of"]),
         "published": r["published"], "canary_pct": r["canary_pct"], "why": explain(r)}
        for r in changed
    ]
    tables = [t for t in STORED_QUERIES if t != "dead_letters"]
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
        "outcomes": outcomes,
        "params": {"versions": versions, "decisions_by_params": dict(produced.params_used),
                   **({"pnl": produced.pnl} if learning else {}),
                   **({"set": learned, "export": exported} if exported else {})},
    }
