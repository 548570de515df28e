"""`make bench`: the engine measured against the raw limits of the same machine, in one run.

    make bench                  # full: 200k events, 100k publish() calls, 1M-decision cycle
    make bench QUICK=1          # reduced sizes, same keys, under 3 minutes
    .venv/bin/python -m bench --only ingest,publish --runs 5

Starts its own embedded broker and uses the embedded PostgreSQL under the data directory
(`bench/` inside it; the cycle's generated databases are cached there). Every figure is
the median of `--runs` runs (at least 3), with min and max beside it. Writes
`bench/results.json` and prints a table. BENCHMARKS.md explains each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from amc_learning.entrypoints import infra
from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.store.migrations import migrate
from amc_learning.streams.kafka import client_options
from amc_learning.streams.topics import TopicNames, create_topics
from bench import api, cycle, ingest, overload, params, publish, workload

STAGES = ("ingest", "scale", "publish", "params", "api", "cycle")
FULL = {"events": 200_000, "calls": 100_000, "publishes": 200, "cycle": (100_000, 1_000_000)}
QUICK = {"events": 40_000, "calls": 30_000, "publishes": 30, "cycle": (20_000, 100_000)}
TARGETS = {
    "ingest.ratio": (">=", 0.6), "ingest.events_per_s": (">=", 50_000),
    "publish.median_us": ("<=", 20), "publish.p99_us": ("<=", 200), "publish.max_us": ("<=", 1000),
    "publish.broker_down_median_us": ("<=", 20), "publish.broker_down_p99_us": ("<=", 200),
    "publish.broker_down_max_us": ("<=", 1000), "params.get_ns": ("<=", 1000),
    # the seed's API response time, under the offered loads of bench/api.py
    "api.collect_single_p99_ms": ("<=", 200), "api.collect_batch100_p99_ms": ("<=", 200),
    "api.params_p99_ms": ("<=", 200),
    # past capacity, load is shed and what is admitted keeps its latency; nothing acked lost
    "api.overload.3x.admitted_p99_ms": ("<=", 200), "api.overload.lost": ("<=", 0),
    "cycle.1m.seconds": ("<=", 60), "cycle.1m.rss_mb": ("<=", 4096),
    "cycle.1m_two.both.seconds": ("<=", 60), "cycle.1m_two.both.rss_mb": ("<=", 4096),
    # a backtest of the whole 1M history (5,000 sessions, a cycle every 5): in live cycles
    "cycle.1m.backtest_over_cycle": ("<=", 10), "cycle.1m.backtest_rss_mb": ("<=", 4096),
}


class Results:
    """Medians under dotted keys (nested in the JSON), spreads beside them."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.rows: list[tuple[str, float, float, float, int]] = []

    def add(self, key: str, values: list[float]) -> float:
        median = statistics.median(values)
        *path, leaf = key.split(".")
        node = self.data
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = round(median, 3)
        node[f"{leaf}_spread"] = {"min": round(min(values), 3), "max": round(max(values), 3),
                                  "runs": len(values)}
        self.rows.append((key, min(values), median, max(values), len(values)))
        return median

    def table(self) -> str:
        lines = [f"{'figure':<34} {'min':>12} {'median':>12} {'max':>12} {'runs':>4}  target"]
        for key, low, mid, high, runs in self.rows:
            target = TARGETS.get(key)
            verdict = ""
            if target:
                op, bound = target
                ok = mid >= bound if op == ">=" else mid <= bound
                verdict = f"{op} {bound:g} {'ok' if ok else 'MISSED'}"
            lines.append(f"{key:<34} {low:>12,.3f} {mid:>12,.3f} {high:>12,.3f} {runs:>4}  "
                         + verdict)
        return "\n".join(lines)


def say(line: str) -> None:
    print(line, flush=True)


def _repeat(runs: int, what: str, once: Callable[[], Any]) -> list[Any]:
    out = []
    for i in range(runs):
        started = time.perf_counter()
        out.append(once())
        say(f"  {what}: run {i + 1}/{runs} ({time.perf_counter() - started:.1f} s)")
    return out


def run_ingest(base: Settings, sizes: dict[str, Any], runs: int, results: Results,
               stages: set[str], profile: Path | None = None) -> None:
    n = sizes["events"]
    say(f"ingest: generating {n:,} events")
    records = workload.records(n)
    say(f"  {sum(len(r.value) for r in records) / n:.0f} bytes per event on average; publishing")
    started = time.perf_counter()
    ends = ingest.publish(base, records)
    say(f"  published in {time.perf_counter() - started:.1f} s (setup, not a figure)")
    if "ingest" in stages:
        rows = ingest.rows_of(records, base.topic_prefix)
        consume = _repeat(runs, "raw consume", lambda: n / ingest.raw_consume(base, ends))
        copy = _repeat(runs, "raw COPY", lambda: n / ingest.raw_copy(base.database_url or "",
                                                                       rows))
        plans = ingest.plans_of(records, base.topic_prefix, base.batch_max_records)
        sink = _repeat(runs, "sink alone", lambda: n / ingest.sink_only(base.database_url or "",
                                                                          plans))
        runs_e2e = _repeat(runs, "persist end to end", lambda: ingest.end_to_end(base, n))
        e2e = [n / r.seconds for r in runs_e2e]
        results.add("ingest.sink_only_per_s", sink)
        results.add("ingest.sink_ratio", [e / k for e, k in zip(e2e, sink, strict=True)])
        results.add("ingest.events_per_s", e2e)
        results.add("ingest.steady_per_s", [r.steady_per_s for r in runs_e2e])
        results.add("ingest.raw_consume_per_s", consume)
        results.add("ingest.raw_copy_per_s", copy)
        results.add("ingest.ratio", [e / min(c, p) for e, c, p in zip(e2e, consume, copy,
                                                                          strict=True)])
        if profile is not None:
            say("  profiling one more end-to-end run with py-spy")
            say(f"  flame graph: {ingest.profile_end_to_end(base, n, profile)}")
    if "scale" in stages:
        for workers in (1, 2, 3):
            seconds = _repeat(runs, f"{workers} persist worker(s)",
                              functools.partial(ingest.scale, base, ends, workers))
            results.add(f"scale.workers_{workers}", [n / s for s in seconds])


def run_publish(base: Settings, sizes: dict[str, Any], runs: int, results: Results) -> None:
    for up, prefix in ((True, "publish."), (False, "publish.broker_down_")):
        say(f"publish: {sizes['calls']:,} calls, broker {'up' if up else 'unreachable'}")
        got = _repeat(runs, "publish()", functools.partial(publish.hot_path, base,
                                                            sizes["calls"], up))
        for name in ("median_us", "p99_us", "max_us", "over_1ms"):
            results.add(prefix + name, [g[name] for g in got])


def run_params(base: Settings, sizes: dict[str, Any], runs: int, results: Results) -> None:
    say(f"params: {sizes['publishes']} publishes to a reader in another process")
    got = _repeat(runs, "propagation", lambda: params.propagation(base, sizes["publishes"]))
    results.add("params.propagation_p50_ms", [g["propagation_p50_ms"] for g in got])
    results.add("params.propagation_p99_ms", [g["propagation_p99_ms"] for g in got])
    results.add("params.get_ns", _repeat(runs, "get()", lambda: params.get_cost_ns(base)))


def run_api(base: Settings, quick: bool, runs: int, results: Results) -> None:
    say("api: serve and a bare endpoint of the same stack, at fixed loads and at capacity")
    got = _repeat(runs, "api", functools.partial(api.measure, base, quick))
    for key in got[0]:
        if not key.startswith("bare"):
            results.add(f"api.{key}", [g[key] for g in got])
    for name, bare in (("collect_single_capacity", "bare_single_capacity"),
                       ("collect_batch100_events", "bare_batch100_events"),
                       ("params_capacity", "bare_get_capacity")):
        results.add(f"api.{name}_ratio", [g[f"{name}_per_s"] / g[f"{bare}_per_s"] for g in got])
    for name, bare in (("collect_single_p50_ms", "bare_single_p50_ms"),
                       ("params_p50_ms", "bare_get_p50_ms")):
        results.add(f"api.{name}_over_bare", [g[name] / g[bare] for g in got])
        results.add(f"api.{bare}", [g[bare] for g in got])
    say("api: offered 1x, 2x and 3x its capacity, open loop: what it sheds and admits")
    shed = _repeat(runs, "overload", functools.partial(overload.measure, base, quick))
    for key in shed[0]:
        results.add(f"api.overload.{key}", [g[key] for g in shed])


def run_cycle(base: Settings, admin_url: str, sizes: dict[str, Any], runs: int,
              results: Results) -> None:
    for n, label in zip(sizes["cycle"], ("100k", "1m"), strict=True):
        say(f"cycle: the daily learning cycle on {n:,} decisions")
        url = cycle.database(admin_url, n, say=say)
        got = _repeat(runs, "cycle", functools.partial(cycle.timed_cycle, base, url))
        results.add(f"cycle.{label}.seconds", [g["seconds"] for g in got])
        results.add(f"cycle.{label}.rss_mb", [g["rss_mb"] for g in got])
        # the same history backtested: the learner's loop walked over every session
        walked = _repeat(runs, "backtest", functools.partial(cycle.timed_backtest, base, url))
        results.add(f"cycle.{label}.backtest_seconds", [w["seconds"] for w in walked])
        results.add(f"cycle.{label}.backtest_rss_mb", [w["rss_mb"] for w in walked])
        results.add(f"cycle.{label}.backtest_over_cycle",
                    [w["seconds"] / g["seconds"] for w, g in zip(walked, got, strict=True)])
    # two scoring models in one database, half the decisions each: the cycle of both, and
    # of each alone (LEARNING_SCORING_MODEL), so the cost per model shows
    n, label = sizes["cycle"][-1], "1m" if sizes["cycle"][-1] == 1_000_000 else "100k"
    say(f"cycle: two scoring models, {n // 2:,} decisions each")
    url = cycle.database(admin_url, n, say=say, two=True)
    for model, key in ((None, "both"), ("native", "native"), ("amc-scanner 3.3.1", "tiered")):
        got = _repeat(runs, f"cycle ({key})",
                      functools.partial(cycle.timed_cycle, base, url, model))
        results.add(f"cycle.{label}_two.{key}.seconds", [g["seconds"] for g in got])
        results.add(f"cycle.{label}_two.{key}.rss_mb", [g["rss_mb"] for g in got])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (same keys)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (>= 3)")
    parser.add_argument("--only", default=",".join(STAGES),
                        help=f"comma-separated stages among {', '.join(STAGES)}")
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--profile", action="store_true",
                        help="also profile one ingest run with py-spy (bench/profile-ingest.svg)")
    args = parser.parse_args(argv)
    stages = set(args.only.split(","))
    unknown = stages - set(STAGES)
    if unknown or args.runs < 3:
        parser.error(f"unknown stages {sorted(unknown)}" if unknown
                     else "--runs must be at least 3 (a spread needs three runs)")
    sizes = QUICK if args.quick else FULL
    args.out.parent.mkdir(parents=True, exist_ok=True)
    root = Settings().data_dir / "bench"
    started = time.perf_counter()
    pid, bootstrap = infra.start_broker(root / "broker.log")
    admin_url = infra.start_postgres(root / "pg", database="postgres")
    results = Results()
    done: list[str] = []
    try:
        database = "amc_bench_ingest"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
        url = make_conninfo(admin_url, dbname=database)
        migrate(Database(url))
        base = Settings(kafka_bootstrap=bootstrap, database_url=url, data_dir=root,
                        topic_prefix=f"bench-{uuid.uuid4().hex[:6]}.", log_level="WARNING")
        asyncio.run(create_topics(client_options(base), TopicNames(base.topic_prefix),
                                  base.topic_partitions, 1))

        def finished(stage: str) -> None:  # each stage's figures are kept as it ends
            done.append(stage)
            _write(args.out, results, args.quick, sizes, stages, done, started)

        if stages & {"ingest", "scale"}:
            run_ingest(base, sizes, args.runs, results, stages,
                       args.out.with_name("profile-ingest.svg") if args.profile else None)
            finished("ingest")
        if "publish" in stages:
            run_publish(base, sizes, args.runs, results)
            finished("publish")
        if "params" in stages:
            run_params(base, sizes, args.runs, results)
            finished("params")
        if "api" in stages:
            run_api(base, args.quick, args.runs, results)
            finished("api")
        if "cycle" in stages:
            run_cycle(base, admin_url, sizes, args.runs, results)
            finished("cycle")
    finally:
        infra.stop_process(pid)
        infra.stop_postgres(root / "pg")
    _write(args.out, results, args.quick, sizes, stages, done, started)
    say("\n" + results.table())
    say(f"\nwrote {args.out} in {results.data['run']['seconds']:.0f} s")
    return 0


def _write(out: Path, results: Results, quick: bool, sizes: dict[str, Any], stages: set[str],
           done: list[str], started: float) -> None:
    """The figures so far, with what was run; a stage that fails later loses nothing."""
    results.data["run"] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "quick": quick,
        "sizes": dict(sizes), "stages": sorted(stages), "finished": list(done),
        "machine": {"cpus": _cpus(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(json.dumps(results.data, indent=2) + "\n")
    os.replace(partial, out)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
