"""Fixtures: the real broker and PostgreSQL once per session; isolated names per test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from amc_learning.entrypoints import infra
from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.store.migrations import migrate
from amc_learning.streams.kafka import client_options
from amc_learning.streams.topics import TopicNames, create_topics


@dataclass(frozen=True)
class Backend:
    kafka_bootstrap: str
    admin_database_url: str  # a database that always exists (to create/drop test databases)
    pgdata: Path | None = None  # the embedded server's data directory (its log is in it)

    def connect(self) -> psycopg.Connection:
        """The admin database; if the session's PostgreSQL is gone, the session ends here
        with one message saying so, instead of an error at the setup of every later test."""
        try:
            return psycopg.connect(self.admin_database_url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            pytest.exit(self._obituary(exc), returncode=3)

    def _obituary(self, exc: Exception) -> str:
        said = f"the test session's PostgreSQL went away: {str(exc).strip()}"
        if self.pgdata is None:
            return said
        pid_file, log = self.pgdata / "postmaster.pid", self.pgdata / "log"
        pid = pid_file.read_text().split()[0] if pid_file.exists() else None
        alive = pid is not None and Path(f"/proc/{pid}").exists()
        lines = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else []
        return (f"{said}\npostmaster {pid or '(no pid file)'}: "
                f"{'still running' if alive else 'not running'}; the end of {log}:\n"
                + "\n".join("    " + line for line in lines))


def _docker_backend() -> Iterator[Backend]:
    if shutil.which("docker") is None or subprocess.run(
        ["docker", "info"], capture_output=True, check=False
    ).returncode != 0:
        pytest.exit("LEARNING_TEST_BACKEND=docker, but no Docker engine is reachable here "
                    "(`docker info` fails). Unset it to use the embedded broker and PostgreSQL.",
                    returncode=4)
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer().with_kraft() as kafka, PostgresContainer("postgres:16") as pg:
        url = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
        yield Backend(kafka.get_bootstrap_server(), url)


@contextlib.contextmanager
def postgres_home(label: str) -> Iterator[Path]:
    """A directory for a PostgreSQL data directory, outside pytest's temporary tree.

    As root, embedded PostgreSQL runs as its own user, which must traverse every parent
    of its data directory. pytest makes its tree root-only (0700) again at the start of
    every session on the machine: a second pytest run, anywhere, took the first one's
    server down at its next checkpoint ("could not stat data directory: Permission
    denied"), and every later test errored at setup. Nothing else touches this one."""
    home = Path(tempfile.mkdtemp(prefix=f"amc-learning-{label}-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _embedded_backend(root: Path) -> Iterator[Backend]:
    pid, bootstrap = infra.start_broker(root / "broker.log")
    with postgres_home("test-pg") as home:
        pgdata = home / "pg"
        url = infra.start_postgres(pgdata, database="postgres")
        try:
            yield Backend(bootstrap, url, pgdata)
        finally:
            infra.stop_process(pid)
            infra.stop_postgres(pgdata)


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    if os.environ.get("LEARNING_TEST_BACKEND", "embedded") == "docker":
        yield from _docker_backend()
    else:
        yield from _embedded_backend(tmp_path_factory.mktemp("infra"))


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


def _create_database(backend: Backend, name: str) -> str:
    with backend.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(backend.admin_database_url, dbname=name)
    migrate(Database(url))
    return url


def _drop_database(backend: Backend, name: str) -> None:
    with backend.connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _settings(backend: Backend, database_url: str, unique: str, data_dir: Path) -> Settings:
    s = Settings(
        kafka_bootstrap=backend.kafka_bootstrap, database_url=database_url,
        topic_prefix=f"t{unique}.", persist_group=f"persist-{unique}", topic_partitions=3,
        batch_max_wait_ms=50, data_dir=data_dir, log_level="INFO",
    )
    asyncio.run(create_topics(client_options(s), TopicNames(s.topic_prefix), 3, 1))
    return s


@pytest.fixture
def database_url(backend: Backend, unique: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"test_{unique}"
    url = _create_database(backend, name)
    yield url
    _drop_database(backend, name)


@pytest.fixture
def settings(backend: Backend, database_url: str, unique: str, tmp_path: Path) -> Settings:
    """Settings of one test: its own database, topic prefix and consumer group; topics made."""
    return _settings(backend, database_url, unique, tmp_path)


@pytest.fixture(scope="session")
def session_settings(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Settings]]:
    """Like `more_settings`, for session-scoped fixtures (a reference run shared by tests)."""
    made = []

    def make() -> Settings:
        unique = uuid.uuid4().hex[:10]
        made.append(f"test_{unique}")
        url = _create_database(backend, made[-1])
        return _settings(backend, url, unique, tmp_path_factory.mktemp(unique))

    yield make
    for name in made:
        _drop_database(backend, name)


@pytest.fixture
def more_settings(backend: Backend, tmp_path: Path) -> Iterator[Callable[[], Settings]]:
    """Makes further isolated settings (database, topics, groups) within one test."""
    made = []

    def make() -> Settings:
        unique = uuid.uuid4().hex[:10]
        made.append(f"test_{unique}")
        url = _create_database(backend, made[-1])
        return _settings(backend, url, unique, tmp_path / unique)

    yield make
    for name in made:
        _drop_database(backend, name)


@pytest.fixture
def empty_database(backend: Backend) -> Iterator[Callable[[str], str]]:
    """Makes empty databases (no schema) under a unique name; drops them afterwards."""
    made = []

    def make(label: str) -> str:
        name = f"test_{label}_{uuid.uuid4().hex[:6]}"
        with backend.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return make_conninfo(backend.admin_database_url, dbname=name)

    yield make
    for name in made:
        _drop_database(backend, name)
