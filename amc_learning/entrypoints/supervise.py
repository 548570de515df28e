"""The main job's consumer processes: start them with the job's settings, wait until they
have consumed what was produced, stop them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from amc_learning.consumers import ops
from amc_learning.schemas.topics import OUTCOMES
from amc_learning.settings import Settings
from amc_learning.streams.kafka import stop_client
from amc_learning.streams.offsets import Partition, committed, end_offsets, group_client
from amc_learning.streams.topics import TopicNames

Say = Callable[[str], None]


class RunError(RuntimeError):
    """The run could not complete; the message says why and what to do."""


def settings_env(settings: Settings) -> dict[str, str]:
    """The LEARNING_* environment that reproduces `settings` in a child process."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"LEARNING_{name.upper()}"] = str(value)
    return env


def spawn_consumer(settings: Settings, name: str, log_dir: Path,
                   log_name: str | None = None) -> subprocess.Popen[bytes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_dir / f"{log_name or name}.log", "ab")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        [sys.executable, "-m", "amc_learning.cli", "consume", name],
        env={**os.environ, **settings_env(settings), ops.STOP_WITH_ENV: str(os.getpid())},
        stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def stop_processes(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM each (they drain and exit), SIGKILL what is still running 30 s later."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def still_running(settings: Settings, processes: list[subprocess.Popen[bytes]]) -> None:
    """RunError when one of `processes` has exited."""
    for proc in processes:
        if proc.poll() is not None:
            raise RunError(f"a consumer exited with code {proc.returncode}; "
                           f"see the logs in {settings.data_dir / 'logs'}")


def wait_until_started(settings: Settings, processes: list[subprocess.Popen[bytes]],
                       name: str = "outcomes", timeout_s: float = 300.0) -> None:
    """Until each of `processes` that registered as `name` is up (its /healthz not down):
    the outcome tracker is up once its start is over, the rebuild of a state its broker
    lost included (`service.rebuild`), so what it published again is on the topics."""
    from amc_learning.entrypoints.status import health

    pids = {p.pid for p in processes}
    deadline = time.monotonic() + timeout_s
    while True:
        mine = [e for e in ops.registered(settings.data_dir)
                if e["alive"] and e["pid"] in pids and e["name"] == name]
        if mine and all(health(str(e["url"]))[0] != "down" for e in mine):
            return
        still_running(settings, processes)
        if time.monotonic() > deadline:
            raise RunError(f"the {name} worker did not start within {timeout_s:.0f} s; see "
                           f"the logs in {settings.data_dir / 'logs'}")
        time.sleep(0.2)


def wait_until_consumed(
    settings: Settings, group: str, targets: dict[Partition, int],
    processes: list[subprocess.Popen[bytes]], say: Say, timeout_s: float = 900.0,
) -> None:
    """Block until `group` has committed every target offset; fail if a consumer died."""
    asyncio.run(_wait_consumed(settings, group, targets, processes, say, timeout_s))


async def _wait_consumed(
    settings: Settings, group: str, targets: dict[Partition, int],
    processes: list[subprocess.Popen[bytes]], say: Say, timeout_s: float,
) -> None:
    """One client asks for the group's committed offsets (OffsetFetch) every 0.1 s."""
    deadline = time.monotonic() + timeout_s
    total = sum(targets.values())
    last_report = time.monotonic()
    consumer = group_client(settings, group)
    try:
        await asyncio.wait_for(consumer.start(), 60.0)
        while True:
            done = await asyncio.wait_for(committed(consumer, targets), 60.0)
            behind = sum(max(0, end - done[key]) for key, end in targets.items())
            if behind == 0:
                return
            still_running(settings, processes)
            if time.monotonic() > deadline:
                raise RunError(f"consumers still {behind} events behind after {timeout_s:.0f} s")
            if time.monotonic() - last_report > 5:
                say(f"  waiting for consumers: {total - behind}/{total} offsets committed")
                last_report = time.monotonic()
            await asyncio.sleep(0.1)
    finally:
        await stop_client(consumer, timeout_s=5.0)


def wait_until_settled(settings: Settings, targets: dict[Partition, int],
                       processes: list[subprocess.Popen[bytes]], say: Say) -> None:
    """Until persist and outcomes have consumed `targets`, and persist every outcome."""
    wait_until_consumed(settings, settings.persist_group, targets, processes, say)
    outcomes_group = settings.topic_prefix + settings.outcomes_group
    wait_until_consumed(settings, outcomes_group, targets, processes, say)
    outcome_ends = asyncio.run(end_offsets(settings, TopicNames(settings.topic_prefix)(OUTCOMES)))
    wait_until_consumed(settings, settings.persist_group, outcome_ends, processes, say)
