"""`amc-learning status`: one screen for a human, from the processes' own metrics and the
database, never from guesses.

Processes are found where they register (`LEARNING_DATA_DIR/processes`, see
`amc_learning.consumers.ops`) and at `LEARNING_METRICS_TARGETS` (host:port, comma-separated, for
processes elsewhere). Each is scraped twice, a second apart, for its rates.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from amc_learning.consumers import ops
from amc_learning.settings import Settings
from amc_learning.store import StoreError
from amc_learning.store.database import Database
from amc_learning.streams.kafka import client_options

Samples = dict[str, list[tuple[dict[str, str], float]]]


@dataclass
class Process:
    name: str
    url: str
    pid: int | None = None
    status: str = "down"
    why: str = ""
    samples: Samples = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)


def scrape(url: str, timeout: float = 2.0) -> Samples:
    """Every sample of `url`/metrics by metric name: [(labels, value), ...]."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=timeout) as answer:
        text = answer.read().decode()
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return dict(samples)


def total(samples: Samples, name: str, **match: str) -> float:
    return sum(v for labels, v in samples.get(name, [])
               if all(labels.get(k) == want for k, want in match.items()))


def health(url: str) -> tuple[str, str, int | None]:
    """(status, why, pid) from a process's /healthz; "down" when it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2.0) as answer:
            body = json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # 503: down, and why
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError) as exc:
        return "down", f"unreachable: {exc}", None
    return body.get("status", "down"), body.get("why", ""), body.get("pid")


RATED = ("learning_events_consumed_total", "learning_events_stored_total",
         "learning_events_rejected_total", "learning_outcomes_published_total")


def processes(settings: Settings, interval_s: float = 1.0) -> list[Process]:
    found = [Process(str(e["name"]), str(e["url"]), int(str(e["pid"])))
             for e in ops.registered(settings.data_dir) if e["alive"]]
    found += [Process("remote", t if "://" in t else f"http://{t}")
              for t in settings.metrics_targets.split(",") if t.strip()]
    first: dict[str, Samples] = {}
    for p in found:
        p.status, p.why, pid = health(p.url)
        p.pid = pid or p.pid
        try:
            first[p.url] = scrape(p.url)
        except OSError:
            first[p.url] = {}
    if found:
        time.sleep(interval_s)
    for p in found:
        try:
            p.samples = scrape(p.url)
        except OSError:
            continue
        for name in RATED:
            p.rates[name] = (total(p.samples, name) - total(first[p.url], name)) / interval_s
    return found


def _broker(settings: Settings) -> str:
    async def probe() -> str:
        consumer = AIOKafkaConsumer(**client_options(settings), request_timeout_ms=3000,
                                    connections_max_idle_ms=5000)
        started = time.monotonic()
        try:
            await asyncio.wait_for(consumer.start(), timeout=5)
            topics = await consumer.topics()
            return f"up ({(time.monotonic() - started) * 1000:.0f} ms, {len(topics)} topics)"
        finally:
            await consumer.stop()

    try:
        return asyncio.run(probe())
    except Exception as exc:
        return f"DOWN: {type(exc).__name__}: {exc}"


def _ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


def render(settings: Settings, found: list[Process], broker: str,
           database: dict[str, Any] | str) -> str:
    lines = [f"amc-learning status · {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", "",
             "processes"]
    if not found:
        lines.append("  none registered (start them with `amc-learning run` or `consume`; "
                     "remote ones: LEARNING_METRICS_TARGETS)")
    for p in sorted(found, key=lambda p: (p.name, p.pid or 0)):
        s = p.samples
        lag = total(s, "learning_consumer_lag")
        figures = []
        consumed = total(s, "learning_events_consumed_total")
        if consumed or p.name in ("persist", "outcomes"):
            figures.append(f"consumed {consumed:,.0f} "
                           f"({p.rates.get('learning_events_consumed_total', 0):,.0f}/s)")
            figures.append(f"lag {lag:,.0f}")
        rejected = total(s, "learning_events_rejected_total")
        if rejected:
            figures.append(f"rejected {rejected:,.0f}")
        published = total(s, "learning_outcomes_published_total")
        if published:
            figures.append(f"outcomes {published:,.0f}")
        last = total(s, "learning_cycle_last_success_timestamp_seconds")
        if p.name == "learner":
            figures.append("last cycle " + (_ago(datetime.fromtimestamp(last, UTC),
                                                 datetime.now(UTC)) if last else "none yet"))
        mark = {"ready": "up", "degraded": "DEGRADED"}.get(p.status, "DOWN")
        lines.append(f"  {p.name:<9} pid {p.pid or '?':<7} {mark:<9} {', '.join(figures)}")
        if p.status != "ready" and p.why:
            lines.append(f"  {'':<9} why: {p.why}")
        lines.append(f"  {'':<9} {p.url}")
    lines += ["", "dependencies", f"  Kafka       {broker}"]
    if isinstance(database, str):
        lines.append(f"  PostgreSQL  {database}")
        return "\n".join(lines)
    d = database
    lines.append(f"  PostgreSQL  up ({d['latency_ms']:.0f} ms)")
    now = d["now"]
    live = (f"v{d['live']} live, published {_ago(d['live_at'], now)}" if d["live"]
            else "no live version: the trading engine runs on the fallback")
    lines += ["", f"params ({settings.params_name})", f"  {live}"]
    if d["in_flight"]:
        lines.append(f"  in flight: {d['in_flight']}")
    lines += ["", "learning cycles",
              f"  last daily cycle: as of {d['cycle_as_of'] or '–'}, ran "
              f"{_ago(d['cycle_at'], now)}; {d['cycles_day']} cycles in the last day"]
    lines += ["", "data collection (stored / stored + dead-lettered)"]
    for span, (stored, dead) in d["collected"].items():
        rate = f"{stored / (stored + dead):.2%}" if stored + dead else "–"
        lines.append(f"  last {span:<5} {rate:>8}  ({stored:,} stored, {dead:,} dead letters)")
    return "\n".join(lines)


def database_figures(settings: Settings, db: Database | None) -> dict[str, Any] | str:
    if db is None:
        return "DOWN: no database configured and no embedded one running"
    try:
        with db.unit_of_work() as uow:
            return uow.figures.status(settings.params_name)
    except StoreError as exc:
        return f"DOWN: {str(exc).strip().splitlines()[0]}"


def status(settings: Settings, db: Database | None) -> str:
    """The screen; `db`: the database found (None: none)."""
    found = processes(settings)
    broker = _broker(settings) if settings.kafka_bootstrap else "DOWN: none configured"
    return render(settings, found, broker, database_figures(settings, db))
