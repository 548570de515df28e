"""`store.Database` on the real PostgreSQL: a unit of work commits or leaves nothing, a
snapshot stays one, a connection the server dropped is made again, a server that does not
answer is `Unavailable` (psycopg's error, never the pool's wrapper)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from amc_learning.entrypoints.infra import free_port
from amc_learning.store import Unavailable
from amc_learning.store.database import Database
from tests.integration.helpers import rows

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 22, tzinfo=UTC)


def runs(url: str) -> int:
    return rows(url, "SELECT count(*) FROM price_sync_runs")[0][0]


def test_a_unit_of_work_commits_at_its_end_and_leaves_nothing_when_it_raises(database_url):
    db = Database(database_url)
    with db.unit_of_work() as uow:
        uow.prices.record_run("alpaca", NOW, NOW, {"published": 1})
        assert runs(database_url) == 0  # not yet: another connection sees the last commit
    assert runs(database_url) == 1
    with pytest.raises(RuntimeError, match="half way"), db.unit_of_work() as uow:
        uow.prices.record_run("alpaca", NOW, NOW, {"published": 2})
        raise RuntimeError("half way")
    assert runs(database_url) == 1
    with db.unit_of_work() as uow:
        assert uow.prices.last_run()["published"] == 1
    assert db.opened == 1  # three units of work, one connection
    db.close()


def test_a_snapshot_reads_one_state_of_the_database(database_url):
    db = Database(database_url)
    with db.unit_of_work() as uow:  # a pooled connection, pinged when it is taken again
        assert uow.conn.execute("SHOW transaction_isolation").fetchone() == ("read committed",)
    with db.unit_of_work(snapshot=True) as uow:
        assert uow.conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        assert uow.prices.last_run() is None
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("INSERT INTO price_sync_runs (provider, started_at, finished_at,"
                          " summary) VALUES ('polygon', now(), now(), '{}')")
        assert uow.prices.last_run() is None  # written after the snapshot began
    with db.unit_of_work() as uow:  # the connection went back as it came
        assert uow.prices.last_run()["provider"] == "polygon"
        assert uow.conn.execute("SHOW transaction_isolation").fetchone() == ("read committed",)
    assert db.opened == 1
    db.close()


def test_a_connection_the_server_dropped_is_made_again(database_url):
    db = Database(database_url)
    with db.unit_of_work() as uow:
        first = uow.conn.info.backend_pid
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    with db.unit_of_work() as uow:  # the pool's ping finds it dead and makes another
        assert uow.conn.info.backend_pid != first
    assert db.opened == 2
    with pytest.raises(Unavailable), db.unit_of_work() as uow:  # dropped in the middle
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (uow.conn.info.backend_pid,))
        uow.prices.last_run()
    with db.unit_of_work() as uow:
        assert uow.prices.last_run() is None
    db.close()


def test_a_server_that_does_not_answer_is_unavailable_not_the_pools_error():
    db = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/none", connect_timeout=1)
    with pytest.raises(Unavailable) as caught, db.unit_of_work():
        pass
    assert isinstance(caught.value, psycopg.OperationalError)
    assert "s3cret" not in repr(Database("postgresql://u:s3cret@h/db"))
