"""The HTTP API under load: `amc-learning serve` beside a bare endpoint of the same stack.

The bare server is FastAPI on uvicorn in its own process, like `serve`, with one route
that reads the body and answers `{"ok": true}`: no auth, no validation, no broker. Both
are driven from this process by the same load generator, so the ratio is what the
engine's own work (token, validation, the broker's acknowledgement) costs.

* Fixed offered loads (open loop): requests are due on a fixed schedule and each latency
  runs from the moment the request was due, so a slow server is charged for the queue it
  causes (no coordinated omission). Single events, batches of 100, and `adaptive-params`.
* Capacity (closed loop): `CONNECTIONS` keep-alive connections, each sending its next
  request as soon as the last is answered, for a few seconds.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from amc_learning.api import tokens
from amc_learning.entrypoints.infra import free_port
from amc_learning.entrypoints.supervise import settings_env
from amc_learning.schemas import topics
from amc_learning.settings import Settings
from bench.workload import records

CONNECTIONS = 8
COLLECT = "/learning/collect/discovery-data"
PARAMS = "/learning/intelligence/adaptive-params"
TOKEN, ENTRY = tokens.make("bench", ("collect", "read"))


def bare_app() -> FastAPI:
    """The same stack doing nothing: `uvicorn --factory bench.api:bare_app`."""
    app = FastAPI()

    @app.post("/bare")
    async def post(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": True})

    @app.get("/bare")
    async def get() -> JSONResponse:
        return JSONResponse({"ok": True})

    return app


def _wait_ready(port: int, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"the server on {port} exited with {proc.returncode}") \
                    from None
            time.sleep(0.2)
    raise RuntimeError(f"the server on {port} did not answer within 60 s")


@contextmanager
def serve_process(settings: Settings, port: int,
                  **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """`amc-learning serve` on `port` in its own process, with the bench's token and no
    rate limit per token (`env`: further settings); stopped on exit."""
    environment = {**os.environ, **settings_env(settings), "LEARNING_API_TOKENS": ENTRY,
                   "LEARNING_API_RATE_PER_S": "1000000", "LEARNING_API_BURST": "1000000",
                   "LEARNING_METRICS_PORT": str(free_port()), **env}
    proc = subprocess.Popen([sys.executable, "-m", "amc_learning.cli", "serve", "--port",
                             str(port)], env=environment, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_ready(port, proc, "/healthz")
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def servers(settings: Settings) -> Iterator[tuple[int, int]]:
    """`serve` and the bare server, each in its own process: their ports."""
    api, bare = free_port(), free_port()
    env = {**os.environ, **settings_env(settings)}
    with serve_process(settings, api, LEARNING_API_MAX_IN_FLIGHT="100000"):  # nothing shed
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "bench.api:bare_app", "--port",
             str(bare), "--log-level", "warning", "--no-access-log"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_ready(bare, proc, "/bare")
            yield api, bare
        finally:
            proc.terminate()
            proc.wait(30)


def candidate_bodies(n: int, batch: int) -> list[bytes]:
    """`n` requests of `batch` distinct candidate events each (new event ids)."""
    wanted = n * batch
    events: list[Any] = []
    while len(events) < wanted:
        events += [json.loads(r.value) for r in records(max(2_000, 2 * wanted))
                   if r.topic == topics.DISCOVERY]
    events = events[:wanted]
    if batch == 1:
        return [json.dumps(e).encode() for e in events]
    return [json.dumps(events[i:i + batch]).encode() for i in range(0, wanted, batch)]


class _Load:
    """Requests spread over `CONNECTIONS` keep-alive connections; latencies in ms."""

    def __init__(self, port: int, method: str, path: str, bodies: list[bytes] | None,
                 count: int) -> None:
        self.port, self.method, self.path = port, method, path
        self.bodies, self.count = bodies, count
        self.next = 0
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: dict[int, int] = {}

    def take(self) -> int | None:
        with self.lock:
            if self.next >= self.count:
                return None
            self.next += 1
            return self.next - 1

    def one(self, conn: http.client.HTTPConnection, i: int) -> int:
        body = self.bodies[i] if self.bodies is not None else None
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        conn.request(self.method, self.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status

    def run(self, due: Callable[[int], float] | None) -> float:
        """Send every request (each when it is due, or at once when `due` is None);
        returns the wall time in seconds."""
        started = time.perf_counter()

        def worker() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            while (i := self.take()) is not None:
                at = started + due(i) if due is not None else time.perf_counter()
                if (wait := at - time.perf_counter()) > 0:
                    time.sleep(wait)
                status = self.one(conn, i)
                took = (time.perf_counter() - at) * 1000
                with self.lock:
                    self.latencies.append(took)
                    if status != 200:
                        self.errors[status] = self.errors.get(status, 0) + 1
            conn.close()

        threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.errors:
            raise RuntimeError(f"{self.method} {self.path}: answers other than 200: "
                               f"{self.errors}")
        return time.perf_counter() - started


def _quantiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50_ms": ordered[len(ordered) // 2],
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]}


def offered(port: int, method: str, path: str, bodies: list[bytes] | None, rate: float,
            count: int) -> dict[str, float]:
    """`count` requests due `1/rate` s apart: p50 and p99 latency from when each was due."""
    load = _Load(port, method, path, bodies, count)
    load.run(lambda i: i / rate)
    return _quantiles(load.latencies)


def capacity(port: int, method: str, path: str, bodies: list[bytes] | None,
             count: int) -> float:
    """Requests a second with `CONNECTIONS` connections sending back to back."""
    load = _Load(port, method, path, bodies, count)
    return count / load.run(None)


def measure(settings: Settings, quick: bool) -> dict[str, float]:
    """One run of every API figure (see BENCHMARKS.md)."""
    single_rate, batch_rate, seconds = 200.0, 10.0, (3 if quick else 10)
    n_single, n_batch = int(single_rate * seconds), int(batch_rate * seconds)
    n_capacity = 1_000 if quick else 4_000
    out: dict[str, float] = {}
    with servers(settings) as (api, bare):
        for name, port, path in (("collect", api, COLLECT), ("bare", bare, "/bare")):
            single = offered(port, "POST", path, candidate_bodies(n_single, 1), single_rate,
                             n_single)
            batch = offered(port, "POST", path, candidate_bodies(n_batch, 100), batch_rate,
                            n_batch)
            out.update({f"{name}_single_{k}": v for k, v in single.items()})
            out.update({f"{name}_batch100_{k}": v for k, v in batch.items()})
            out[f"{name}_single_capacity_per_s"] = capacity(
                port, "POST", path, candidate_bodies(n_capacity, 1), n_capacity)
            out[f"{name}_batch100_events_per_s"] = 100 * capacity(
                port, "POST", path, candidate_bodies(n_capacity // 20, 100), n_capacity // 20)
        for name, port, path in (("params", api, PARAMS), ("bare_get", bare, "/bare")):
            got = offered(port, "GET", path, None, single_rate, n_single)
            out.update({f"{name}_{k}": v for k, v in got.items()})
            out[f"{name}_capacity_per_s"] = capacity(port, "GET", path, None, n_capacity)
    return out
