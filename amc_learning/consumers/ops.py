"""Every process's window for operators: `/metrics` (Prometheus) and `/healthz`.

`serve(settings, name, health)` starts a small HTTP server in a daemon thread (it never
touches the process's own event loop) on `LEARNING_METRICS_HOST:LEARNING_METRICS_PORT`
(port 0: any free port, the default, so N processes on one machine never collide) and
registers the process in `LEARNING_DATA_DIR/processes/<name>-<pid>.json`, where
`amc-learning status` finds it. `health()` returns (status, why), status one of
`ready`, `degraded`, `down`; `/healthz` answers 200 for the first two, 503 for down.

A process started by another (`run`, `import`: `STOP_WITH_ENV` holds the starter's pid)
stops itself, as on SIGTERM, when its starter is gone: a `run` killed outright leaves no
worker behind on the broker.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from amc_learning.settings import Settings

log = logging.getLogger(__name__)

Status = Literal["ready", "degraded", "down"]
Health = Callable[[], tuple[Status, str]]

UP = Gauge("learning_dependency_up", "1 when the process reached the dependency on its last "
           "attempt, else 0", ["dependency"])
#: The pid of the process that started this one, which it does not outlive.
STOP_WITH_ENV = "LEARNING_STOP_WITH"

STARTED = Gauge("learning_process_start_time_seconds", "when this process started (Unix time)",
                ["process"])


def serve(settings: Settings, name: str, health: Health) -> ThreadingHTTPServer:
    """Start the server and the registration; both end with the process."""

    class Endpoint(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            elif path == "/healthz":
                try:
                    status, why = health()
                except Exception as exc:  # a broken probe is a down process, said plainly
                    status, why = "down", f"health check failed: {exc}"
                body = json.dumps({"process": name, "pid": os.getpid(), "status": status,
                                   "why": why}).encode()
                self._answer(503 if status == "down" else 200, "application/json", body)
            else:
                self._answer(404, "text/plain", b"try /metrics or /healthz\n")

        def _answer(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds are not news

    server = ThreadingHTTPServer((settings.metrics_host, settings.metrics_port), Endpoint)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"{name}-metrics", daemon=True).start()
    STARTED.labels(name).set_to_current_time()
    host, port = str(server.server_address[0]), server.server_address[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{shown}:{port}"
    _register(settings, name, url)
    log.info("%s: metrics on %s/metrics, health on %s/healthz", name, url, url)
    if os.environ.get(STOP_WITH_ENV, "").isdigit():
        starter = int(os.environ[STOP_WITH_ENV])
        threading.Thread(target=_stop_without, args=(name, starter), name=f"{name}-starter",
                         daemon=True).start()
    return server


def _stop_without(name: str, starter: int, every_s: float = 1.0) -> None:
    """SIGTERM this process (a drain and a clean exit) once `starter` is no longer its
    parent: the starter exited or was killed, and the process was handed to init."""
    while os.getppid() == starter:
        time.sleep(every_s)
    log.warning("%s: the process that started it (pid %d) is gone; stopping", name, starter)
    os.kill(os.getpid(), signal.SIGTERM)


def _register(settings: Settings, name: str, url: str) -> None:
    """Where `status` finds the process, and the broker and database it uses (a database
    URL carrying a password is left out)."""
    folder = settings.data_dir / "processes"
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / f"{name}-{os.getpid()}.json"
    database = settings.database_url
    if database and urlsplit(database).password:
        database = None
    entry.write_text(json.dumps({"name": name, "pid": os.getpid(), "url": url,
                                 "started_at": datetime.now(UTC).isoformat(),
                                 "kafka_bootstrap": settings.kafka_bootstrap,
                                 "database_url": database}))

    def unregister() -> None:
        with suppress(OSError):
            entry.unlink()

    atexit.register(unregister)


def registered(data_dir: Path) -> list[dict[str, object]]:
    """The processes registered under `data_dir`, each with `alive` (its pid exists)."""
    found = []
    for path in sorted((data_dir / "processes").glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(int(entry["pid"]), 0)
            entry["alive"] = True
        except ProcessLookupError:
            entry["alive"] = False
        except PermissionError:
            entry["alive"] = True
        found.append(entry)
    return found
