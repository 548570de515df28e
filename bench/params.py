"""Params propagation: from the learner's publish to a reader in another process, and the
cost of `ParamsReader.get()` on the trading side.

The follower (`python -m bench.params FOLLOW`) is a separate process, as the trading engine
is: it runs a `ParamsReader`, polls `get()` and prints `version wall-clock-time` the moment
a new version shows. The parent publishes a signed version with the learner's own
`publish_params`, waits for the line and takes the difference (one machine, one clock).
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
import time
import timeit
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from amc_learning.entrypoints.supervise import settings_env
from amc_learning.schemas.params import FALLBACK_PARAMS, ParamsPublished
from amc_learning.schemas.signing import Signer, new_private_key
from amc_learning.settings import Settings
from amc_learning.streams.params import ParamsReader, Record, publish_params

_KEY = new_private_key()


def _message(version: int, name: str = "bench") -> ParamsPublished:
    now = datetime.now(UTC)
    return ParamsPublished(name=name, version=version, issued_at=now,
                           valid_until=now + timedelta(days=1), mode="live",
                           regime="unknown", params=FALLBACK_PARAMS)


def propagation(settings: Settings, publishes: int) -> dict[str, Any]:
    """p50/p99 of publish -> seen-by-another-process, in milliseconds."""
    name = f"bench-{uuid.uuid4().hex[:8]}"  # a set of its own: the topic keeps earlier runs'
    settings = settings.with_overrides(params_signing_key=SecretStr(_KEY), params_name=name)
    follower = subprocess.Popen(
        [sys.executable, "-m", "bench.params", "FOLLOW"], stdout=subprocess.PIPE,
        env={**settings_env(settings)}, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in follower.stdout or ():
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    latencies = []
    try:
        if lines.get(timeout=60).strip() != "ready":
            raise RuntimeError("the params follower did not start")
        for version in range(1, publishes + 1):
            started = time.time()
            asyncio.run(publish_params(settings, _message(version, name)))
            seen_version, seen_at = lines.get(timeout=30).split()
            if int(seen_version) != version:
                raise RuntimeError(f"the follower saw version {seen_version}, not {version}")
            latencies.append((float(seen_at) - started) * 1000)
    finally:
        follower.terminate()
        follower.wait(10)
    ordered = sorted(latencies)
    return {"propagation_p50_ms": ordered[len(ordered) // 2],
            "propagation_p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "propagation_max_ms": ordered[-1], "publishes": publishes}


def get_cost_ns(settings: Settings, calls: int = 1_000_000) -> float:
    """Nanoseconds per `ParamsReader.get()` holding a live version (canary-free path)."""
    settings = settings.with_overrides(params_signing_key=SecretStr(_KEY))
    reader = ParamsReader.from_settings(settings)  # not started: get() reads what it holds
    record = Record.signed(_message(1), Signer(_KEY))
    reader.offer(record.value, record.signature)
    if reader.get("bench").source != "published":
        raise RuntimeError("the reader did not take the benchmark's version")
    get = reader.get
    seconds = min(timeit.repeat(lambda: get("bench"), number=calls, repeat=3))
    return seconds / calls * 1e9


def _follow() -> None:
    settings = Settings()
    reader = ParamsReader.from_settings(settings).start()
    print("ready", flush=True)
    seen = 0
    while True:
        view = reader.get(settings.params_name)
        if view.version is not None and view.version != seen:
            print(view.version, repr(time.time()), flush=True)
            seen = view.version
        time.sleep(0.0002)


if __name__ == "__main__":
    if sys.argv[1:] == ["FOLLOW"]:
        _follow()
    else:
        print(json.dumps({"usage": "python -m bench.params FOLLOW (run by `make bench`)"}))
