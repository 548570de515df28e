"""The one way into PostgreSQL: a `Database` per process, giving units of work.

`Database(url)` owns a small connection pool (SQLAlchemy 2 Core's engine: decision 010);
nothing connects until the first unit of work. `with db.unit_of_work() as uow:` is one
transaction on one pooled connection, with the store's repositories bound to it
(`uow.frames`, `uow.params`, `uow.results`, `uow.prices`, `uow.figures`,
`uow.insights`, `uow.models`); it commits at the end and rolls back on any exception. With
`snapshot=True` every read of the unit sees the database as of its first statement
(REPEATABLE READ). A connection that broke (`Unavailable`) is dropped, not returned to
the pool: the next unit of work makes a new one. This module alone calls
`psycopg.connect`; the repositories speak SQL on the connection they are given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from amc_learning.store import Unavailable
from amc_learning.store.figures import Figures
from amc_learning.store.frames import Frames
from amc_learning.store.insights import Insights
from amc_learning.store.models import ScoringModels
from amc_learning.store.params import ParamsHistory
from amc_learning.store.prices import PriceLedger
from amc_learning.store.results import Results
from amc_learning.store.tracking import Tracking

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection as PooledConnection
    from sqlalchemy.engine import Engine

Connection = psycopg.Connection[Any]
#: How long a unit of work waits for a free pooled connection before `Unavailable`.
POOL_TIMEOUT_S = 30.0


class UnitOfWork:
    """One transaction and the repositories on it (`Database.unit_of_work`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @cached_property
    def frames(self) -> Frames:
        return Frames(self.conn)

    @cached_property
    def params(self) -> ParamsHistory:
        return ParamsHistory(self.conn)

    @cached_property
    def results(self) -> Results:
        return Results(self.conn)

    @cached_property
    def prices(self) -> PriceLedger:
        return PriceLedger(self.conn)

    @cached_property
    def figures(self) -> Figures:
        return Figures(self.conn)

    @cached_property
    def insights(self) -> Insights:
        return Insights(self.conn)

    @cached_property
    def models(self) -> ScoringModels:
        return ScoringModels(self.conn)

    @cached_property
    def tracking(self) -> Tracking:
        return Tracking(self.conn)


class Database:
    """A process's database: a lazily filled pool of at most `pool_size` connections."""

    def __init__(self, url: str, *, pool_size: int = 4, connect_timeout: float = 5,
                 application_name: str = "amc-learning") -> None:
        self.url = url
        self._timeout = max(1, round(connect_timeout))
        self._application = application_name
        #: connections this process opened so far (a test counts them)
        self.opened = 0
        self._pool_size = pool_size
        self._engine: Engine | None = None

    def __repr__(self) -> str:  # never the password
        shown = {k: v for k, v in conninfo_to_dict(self.url).items() if k != "password"}
        return f"Database({make_conninfo('', **shown)!r})"

    def connect(self, *, autocommit: bool = False) -> Connection:
        """A connection of its own, outside the pool (the caller closes it): for a sink
        that keeps one across batches, or a migration."""
        self.opened += 1
        return psycopg.connect(self.url, autocommit=autocommit, connect_timeout=self._timeout,
                               application_name=self._application)

    @contextmanager
    def unit_of_work(self, *, snapshot: bool = False) -> Iterator[UnitOfWork]:
        """One transaction with the repositories on it: committed when the block ends,
        rolled back when it raises. `snapshot`: one consistent view for all its reads.
        A database that cannot be reached raises `Unavailable`, as every store error is
        psycopg's own (the pool's wrapping of it is taken off)."""
        pooled = self._checkout(snapshot)
        from sqlalchemy.exc import DBAPIError  # loaded with the pool

        try:
            with pooled.begin():
                yield UnitOfWork(_driver(pooled))
        except Unavailable:
            pooled.invalidate()  # a broken connection goes, it does not go back to the pool
            raise
        except DBAPIError as exc:  # the commit or rollback itself failed
            pooled.invalidate()
            raise _unwrapped(exc) from None
        finally:
            pooled.close()

    def close(self) -> None:
        """Close every pooled connection (a unit of work after this opens a new one)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _checkout(self, snapshot: bool) -> PooledConnection:
        pool = self._pool()
        from sqlalchemy.exc import DBAPIError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        try:
            pooled = pool.connect()
        except DBAPIError as exc:  # no connection could be made
            raise _unwrapped(exc) from None
        except PoolTimeout:
            raise psycopg.OperationalError(
                f"no free connection in this process's pool of {self._pool_size} within "
                f"{POOL_TIMEOUT_S:g} s") from None
        if snapshot:
            pooled = pooled.execution_options(isolation_level="REPEATABLE READ")
        return pooled

    def _pool(self) -> Engine:
        if self._engine is None:
            # imported here: a process that never reaches the database does not pay for it
            # (0.16 s: decision 010)
            import sqlalchemy

            self._engine = sqlalchemy.create_engine(
                "postgresql+psycopg://", creator=self.connect, pool_size=self._pool_size,
                max_overflow=0, pool_pre_ping=True, pool_timeout=POOL_TIMEOUT_S,
                use_native_hstore=False)
        return self._engine


def _unwrapped(exc: Exception) -> BaseException:
    """psycopg's own error inside SQLAlchemy's wrapper (the store speaks psycopg's)."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def _driver(pooled: PooledConnection) -> Connection:
    conn = pooled.connection.driver_connection
    if not isinstance(conn, psycopg.Connection):
        raise TypeError(f"the pool handed out {type(conn).__name__}, not a psycopg connection")
    return conn


def ensure_database(server_url: str, name: str) -> bool:
    """Create database `name` on the server of `server_url` unless it exists; True if made
    (an embedded setup's first start)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is not None:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True
