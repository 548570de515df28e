"""`serve` past its capacity: the load it sheds, and what the requests it admits get.

`serve` admits at most `LEARNING_API_MAX_IN_FLIGHT` requests at once and answers the rest
503 with Retry-After at once (`api.app.Admission`). Measured here:

* **capacity**: collect requests of one candidate a second, closed loop (`api.capacity`),
  with nothing shed;
* **offered load at 1x, 2x and 3x capacity, open loop**: request i is due at i / rate and
  sent then whatever came back before (one event loop, a keep-alive connection per
  request in flight), its latency counted from when it was due (no coordinated
  omission), the Retry-After ignored (a worst case: a real client backs off). Per load: the rate the
  generator achieved, the admitted (200) requests' p50 and p99, the share shed (503),
  requests with no answer (a connection that failed or closed), any other answer, and the
  serve process's peak RSS;
* **acked = stored**: persist runs beside it; once it has consumed the topic, every
  event id a 200 acknowledged is looked for in PostgreSQL (`lost` must be 0).

Every request is a candidate of its own (a new event id and run), so a run never finds an
earlier run's rows and none is a duplicate of another.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import uvloop

from amc_learning.entrypoints.infra import free_port
from amc_learning.entrypoints.supervise import (
    spawn_consumer,
    stop_processes,
    wait_until_consumed,
)
from amc_learning.schemas import topics
from amc_learning.settings import Settings
from amc_learning.streams.offsets import end_offsets
from amc_learning.streams.topics import TopicNames
from bench.api import COLLECT, TOKEN, candidate_bodies, capacity, serve_process

MULTIPLES = (1, 2, 3)
_LENGTH = re.compile(rb"content-length: *(\d+)")


def _fresh(bodies: list[bytes]) -> list[tuple[str, bytes]]:
    """Each body a candidate of its own: a new event id and discovery run (a candidate is
    stored once per run and symbol); (the id, the body)."""
    out = []
    for body in bodies:
        event = json.loads(body)
        event["event_id"] = str(uuid.uuid4())
        event["run_id"] = f"overload-{event['event_id']}"
        out.append((event["event_id"], json.dumps(event).encode()))
    return out


class _Peak(threading.Thread):
    """The peak resident memory of a process, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)
            self.done.wait(0.2)


async def _open_loop(port: int, rate: float, bodies: list[tuple[str, bytes]]
                     ) -> dict[str, Any]:
    """Every body posted at its due time; statuses, admitted latencies, acked ids.

    A client of its own, on raw asyncio streams with the requests written out beforehand:
    about a tenth of the CPU per request of a general HTTP client (aiohttp here needed a
    third of a core at 2,000 requests a second, on the two cores the server shares), and
    it reads each answer as it arrives, so its own lag stays out of the figures."""
    head = (f"POST {COLLECT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}"
            "\r\nContent-Type: application/json\r\nContent-Length: ")
    requests = [(event_id, f"{head}{len(body)}\r\n\r\n".encode() + body)
                for event_id, body in bodies]
    admitted: list[float] = []
    acked: list[str] = []
    statuses: dict[int, int] = {}
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    loop = asyncio.get_running_loop()

    async def exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                       request: bytes) -> int:
        reader, writer = conn
        writer.write(request)
        answer = await reader.readuntil(b"\r\n\r\n")
        length = _LENGTH.search(answer.lower())
        await reader.readexactly(int(length.group(1)) if length else 0)
        idle.append(conn)
        return int(answer[9:12])

    async def one(event_id: str, request: bytes, due: float) -> None:
        try:
            if idle:
                try:  # a kept-alive connection the server closed meanwhile: once more, anew
                    status = await exchange(idle.pop(), request)
                except (ConnectionError, asyncio.IncompleteReadError):
                    status = await exchange(await asyncio.open_connection("127.0.0.1", port),
                                            request)
            else:
                status = await exchange(await asyncio.open_connection("127.0.0.1", port),
                                        request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status = 0  # no answer: the connection failed or closed
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200:
            admitted.append((loop.time() - due) * 1000)
            acked.append(event_id)

    started = loop.time()
    tasks = []
    for i, (event_id, request) in enumerate(requests):
        due = started + i / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(event_id, request, due)))
    sent_in = loop.time() - started
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    ordered = sorted(admitted)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    total = len(bodies)
    return {"offered_per_s": total / max(sent_in, 1e-9),
            "admitted_per_s": len(admitted) / max(sent_in, 1e-9),
            "admitted_p50_ms": quantile(0.5), "admitted_p99_ms": quantile(0.99),
            "shed_share": statuses.get(503, 0) / total,
            "no_answer": statuses.get(0, 0),
            "other_answers": total - sum(statuses.get(k, 0) for k in (0, 200, 503)),
            "acked": acked}


def measure(settings: Settings, quick: bool) -> dict[str, float]:
    """One run of the overload figures (the module's doc)."""
    seconds = 4 if quick else 15
    port = free_port()
    out: dict[str, float] = {}
    acked: list[str] = []
    persist = spawn_consumer(settings, "persist", settings.data_dir / "logs", "bench-persist")
    try:
        n = 1_000 if quick else 3_000
        with serve_process(settings, port, LEARNING_API_MAX_IN_FLIGHT="100000"):
            cap = capacity(port, "POST", COLLECT, candidate_bodies(n, 1), n)  # no shedding
        out["capacity_per_s"] = cap
        with serve_process(settings, port) as server:
            for multiple in MULTIPLES:
                rate = multiple * cap
                count = int(rate * seconds)
                bodies = _fresh(candidate_bodies(count, 1))
                peak = _Peak(server.pid)
                peak.start()
                try:
                    got = uvloop.run(_open_loop(port, rate, bodies))
                finally:
                    peak.done.set()
                    peak.join()
                acked += got.pop("acked")
                out.update({f"{multiple}x.{k}": v for k, v in got.items()})
                out[f"{multiple}x.rss_mb"] = peak.peak_mb
        topic = TopicNames(settings.topic_prefix)(topics.DISCOVERY)
        ends = asyncio.run(end_offsets(settings, topic))
        wait_until_consumed(settings, settings.persist_group, ends, [persist],
                            lambda _: None, timeout_s=600)
    finally:
        stop_processes(persist)
    with psycopg.connect(settings.database_url or "") as conn:
        row = conn.execute("SELECT count(*) FROM discovery_candidates"
                           " WHERE event_id = ANY(%s::uuid[])", (acked,)).fetchone()
    stored = int(row[0]) if row else 0
    out["acked"] = len(acked)
    out["lost"] = len(acked) - stored
    out["max_in_flight"] = settings.api_max_in_flight
    return out
