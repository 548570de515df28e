"""Fixtures of the fault suite: a broker behind a fault proxy, a PostgreSQL of one's own,
and the tally every scenario prints (sent, stored, rejected, duplicated, lost)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
import pytest

from amc_learning.entrypoints import infra
from amc_learning.schemas.common import Event
from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.store.migrations import migrate
from amc_learning.streams.kafka import client_options
from amc_learning.streams.topics import TopicNames, create_topics
from tests.conftest import postgres_home
from tests.faults.pipeline import Budget, run_calm, stream
from tests.faults.proxy import FaultProxy
from tests.integration.helpers import outcome_rows, stored_event_ids

#: `make faults` sets this: longer outages, more kills, bigger streams.
LONG = os.environ.get("LEARNING_FAULTS_LONG") == "1"


@dataclass
class Tally:
    """What happened to the events of one scenario. `lost` and `duplicated` are the promises."""

    scenario: str
    sent: int = 0
    stored: int = 0
    rejected: int = 0
    duplicated: int = 0
    lost: int = 0
    note: str = ""

    def count(self, events: Sequence[Event], database_url: str, sent: int | None = None) -> None:
        """sent, stored, duplicated and lost: `events` against the event ids stored."""
        stored = stored_event_ids(database_url)
        self.sent = len(events) if sent is None else sent
        self.stored = sum(stored.values())
        self.duplicated = sum(n - 1 for n in stored.values())
        self.lost = len({str(e.event_id) for e in events} - set(stored))

    def line(self) -> str:
        counts = {k: v for k, v in asdict(self).items() if k not in ("scenario", "note")}
        text = " ".join(f"{k}={v}" for k, v in counts.items())
        return f"{self.scenario:<44} {text}" + (f"  ({self.note})" if self.note else "")


_TALLIES: list[Tally] = []


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    t = Tally(request.node.name.removeprefix("test_"))
    yield t
    print("\nFAULT TALLY", json.dumps(asdict(t)))
    _TALLIES.append(t)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if _TALLIES:
        terminalreporter.section("fault scenarios: what happened to the events")
        for t in _TALLIES:
            terminalreporter.write_line(t.line())


#: The budget of the test being run; session fixtures built for it spend from it too.
_CURRENT: list[Budget] = [Budget(time.monotonic(), 300.0)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("timeout")
    seconds = marker.args[0] if marker and marker.args else item.config.getoption("timeout")
    _CURRENT[0] = Budget(time.monotonic(), float(seconds or 300))


@pytest.fixture
def budget() -> Budget:
    return _CURRENT[0]


@dataclass
class ProxiedBroker:
    proxy: FaultProxy
    pid: int

    @property
    def bootstrap(self) -> str:
        return self.proxy.address


@pytest.fixture
def proxied_broker(tmp_path: Path) -> Iterator[ProxiedBroker]:
    """A broker of this test's own that clients reach only through a fault proxy."""
    upstream = infra.free_port()
    proxy = FaultProxy(upstream).start()
    pid, _ = infra.start_broker(tmp_path / "broker.log", port=upstream,
                                advertised_port=proxy.port)
    try:
        yield ProxiedBroker(proxy, pid)
    finally:
        proxy.close()
        infra.stop_process(pid)


@pytest.fixture
def proxied(proxied_broker: ProxiedBroker, settings: Settings) -> Settings:
    """The test's settings, but with the broker behind the proxy (topics made)."""
    s = settings.with_overrides(kafka_bootstrap=proxied_broker.bootstrap)
    asyncio.run(create_topics(client_options(s), TopicNames(s.topic_prefix), 3, 1))
    return s


class OwnPostgres:
    """A PostgreSQL server of one test, to stop and start at will."""

    def __init__(self, root: Path) -> None:
        self.pgdata = root / "pg"
        self.url = infra.start_postgres(self.pgdata, database="faults")
        migrate(Database(self.url))

    def stop(self) -> None:
        infra.stop_postgres(self.pgdata)

    def start(self) -> None:
        url = infra.start_postgres(self.pgdata, database="faults")
        if url != self.url:
            raise AssertionError(f"PostgreSQL came back elsewhere: {url} (was {self.url})")

    def up(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    with postgres_home("faults-pg") as home:
        pg = OwnPostgres(home)
        try:
            yield pg
        finally:
            pg.stop()


#: The stream the crash and disorder scenarios feed: ~50k events of a simulated market.
STREAM = (23, 100, 330) if not LONG else (23, 160, 400)


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted pipeline made of `STREAM`: the yardstick of the fault runs."""

    events: tuple
    outcomes: list
    stored: int


@pytest.fixture(scope="session")
def reference(session_settings) -> Reference:  # type: ignore[no-untyped-def]
    events = stream(*STREAM)
    calm = session_settings()
    run_calm(calm, events, _CURRENT[0])
    stored = stored_event_ids(calm.database_url)
    assert sum(stored.values()) == len(events) == len(stored), "the calm run lost events"
    return Reference(events, outcome_rows(calm), len(stored))
