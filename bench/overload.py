"""`serve` past its capacity: the load it sheds, and what the requests it admits get.

`serve` admits at most `LEARNING_API_MAX_IN_FLIGHT` requests at once and answers the rest
503 with Retry-After at once (`api.app.Admission`). Measured here:

* **capacity**: collect requests of one candidate a second, closed loop (`api.capacity`);
* **offered load at 1x, 2x and 3x capacity, open loop**: request i is due at i / rate and
  sent then whatever came back before (aiohttp, one event loop, a connection per request
  in flight), its latency counted from when it was due (no coordinated omission), the
  Retry-After ignored (a worst case: a real client backs off). Per load: the rate the
  generator achieved, the admitted (200) requests' p50 and p99, the share shed (503),
  any other answer, and the serve process's peak RSS;
* **acked = stored**: persist runs beside it; once it has consumed the topic, every
  event id a 200 acknowledged is looked for in PostgreSQL (`lost` must be 0).

Every request is a candidate of its own (a new event id and run), so a run never finds an
earlier run's rows and none is a duplicate of another.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

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
    """Every body posted at its due time; statuses, admitted latencies, acked ids."""
    url = f"http://127.0.0.1:{port}{COLLECT}"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    admitted: list[float] = []
    acked: list[str] = []
    statuses: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as session:

        async def one(event_id: str, body: bytes, due: float) -> None:
            try:
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0  # no answer
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                admitted.append((loop.time() - due) * 1000)
                acked.append(event_id)

        started = loop.time()
        tasks = []
        for i, (event_id, body) in enumerate(bodies):
            due = started + i / rate
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(event_id, body, due)))
        sent_in = loop.time() - started
        await asyncio.gather(*tasks)
    ordered = sorted(admitted)

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    total = len(bodies)
    return {"offered_per_s": total / max(sent_in, 1e-9),
            "admitted_per_s": len(admitted) / max(sent_in, 1e-9),
            "admitted_p50_ms": quantile(0.5), "admitted_p99_ms": quantile(0.99),
            "shed_share": statuses.get(503, 0) / total,
            "other_answers": total - statuses.get(200, 0) - statuses.get(503, 0),
            "acked": acked}


def measure(settings: Settings, quick: bool) -> dict[str, float]:
    """One run of the overload figures (the module's doc)."""
    seconds = 4 if quick else 15
    port = free_port()
    out: dict[str, float] = {}
    acked: list[str] = []
    persist = spawn_consumer(settings, "persist", settings.data_dir / "logs", "bench-persist")
    try:
        with serve_process(settings, port) as server:
            n = 1_000 if quick else 3_000
            cap = capacity(port, "POST", COLLECT, candidate_bodies(n, 1), n)
            out["capacity_per_s"] = cap
            for multiple in MULTIPLES:
                rate = multiple * cap
                count = int(rate * seconds)
                bodies = _fresh(candidate_bodies(count, 1))
                peak = _Peak(server.pid)
                peak.start()
                try:
                    got = asyncio.run(_open_loop(port, rate, bodies))
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
