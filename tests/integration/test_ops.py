"""Operations on the real broker and database: a running persist consumer's /metrics and
/healthz during a burst, and three persist workers in one group surviving a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from amc_learning.entrypoints.run import Produced, publish_simulation
from amc_learning.entrypoints.status import scrape, total
from amc_learning.entrypoints.supervise import settings_env, stop_processes, wait_until_consumed
from amc_learning.settings import Settings
from amc_learning.simulator.world import SimConfig
from tests.integration.helpers import rows, stored_event_ids, wait_for

pytestmark = pytest.mark.integration

CONSUMED = "learning_events_consumed_total"


def start(settings: Settings, name: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`amc-learning consume NAME` as its own process; returns it and its metrics URL."""
    env = {**os.environ, **settings_env(settings)}
    proc = subprocess.Popen([sys.executable, "-m", "amc_learning.cli", "consume", name],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    entry = settings.data_dir / "processes" / f"{name}-{proc.pid}.json"
    wait_for(lambda: entry.exists() or proc.poll() is not None, f"{name} to register", 60)
    assert proc.poll() is None, log.read_text()[-2000:]
    return proc, json.loads(entry.read_text())["url"]


def healthz(url: str) -> dict:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return json.loads(answer.read()) | {"code": answer.status}
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read()) | {"code": exc.code}


def burst(settings: Settings, days: int, symbols: int, bad_rate: float) -> tuple[
        threading.Thread, list[Produced]]:
    """Publish simulated sessions from a thread (the test scrapes meanwhile)."""
    from amc_learning.entrypoints.bootstrap import bootstrap, with_signing_key

    out: list[Produced] = []
    config = SimConfig(seed=11, symbols=symbols, start=date(2016, 1, 4), days=days)

    def publish() -> None:
        out.append(publish_simulation(bootstrap(with_signing_key(settings)), config,
                                      bad_rate, lambda _: None))

    thread = threading.Thread(target=publish)
    thread.start()
    return thread, out


def test_metrics_of_a_running_persist_consumer_count_what_was_produced_and_stored(
        settings, tmp_path):
    proc, url = start(settings, "persist", tmp_path / "persist.log")
    try:
        wait_for(lambda: healthz(url)["status"] == "ready", "persist to be ready", 60)
        thread, out = burst(settings, days=12, symbols=40, bad_rate=0.02)
        during = []
        while thread.is_alive():
            during.append(total(scrape(url), CONSUMED))
            time.sleep(0.2)
        thread.join()
        assert out, "publishing failed: see the thread's traceback above"
        produced = out[0]
        wait_until_consumed(settings, settings.persist_group, produced.targets, [proc],
                            lambda _: None, 120)
        final = scrape(url)
        health = healthz(url)
        screen = subprocess.run([sys.executable, "-m", "amc_learning.cli", "status"],
                                env={**os.environ, **settings_env(settings)},
                                capture_output=True, text=True, timeout=60, check=False)
    finally:
        stop_processes(proc)
    consumed = f"consumed {sum(produced.by_topic.values()):,} "
    row = next(line for line in screen.stdout.splitlines() if line.strip().startswith("persist"))
    assert f"pid {proc.pid}" in row and " up " in row and consumed in row, screen.stdout
    assert "lag 0" in row and "Kafka       up" in screen.stdout
    assert "PostgreSQL  up" in screen.stdout and screen.returncode == 0, screen.stdout
    assert health["code"] == 200 and health["status"] == "ready", health
    assert during == sorted(during) and len(during) >= 2  # counters only grow, live
    prefix = settings.topic_prefix
    for topic, n in produced.by_topic.items():
        assert total(final, CONSUMED, consumer="persist", topic=prefix + topic) == n, topic
    assert total(final, CONSUMED) == sum(produced.by_topic.values())

    by_reason = dict(rows(settings.database_url,
                          "SELECT reason, count(*) FROM dead_letters GROUP BY reason"))
    assert by_reason and sum(by_reason.values()) > 0
    for reason, n in by_reason.items():
        assert total(final, "learning_events_rejected_total", reason=reason) == n, reason
    stored = sum(stored_event_ids(settings.database_url).values())
    assert total(final, "learning_events_stored_total") == stored
    assert stored + sum(by_reason.values()) == sum(produced.by_topic.values())
    assert total(final, "learning_batch_records_sum") == sum(produced.by_topic.values())
    assert total(final, "learning_event_latency_seconds_count") > 0
    assert total(final, "learning_store_seconds_count") == total(
        final, "learning_batch_records_count")
    assert total(final, "learning_consumer_lag") == 0  # drained
    assert total(final, "learning_dependency_up", dependency="postgresql") == 1


def test_three_persist_workers_share_the_partitions_and_a_killed_one_loses_nothing(
        settings, tmp_path):
    workers = [start(settings, "persist", tmp_path / f"persist-{i}.log") for i in range(3)]
    procs = [p for p, _ in workers]
    try:
        for _, url in workers:
            wait_for(lambda url=url: healthz(url)["status"] == "ready", "workers ready", 90)
        thread, out = burst(settings, days=30, symbols=60, bad_rate=0.0)
        (victim, victim_url), survivors = workers[0], workers[1:]
        wait_for(lambda: total(scrape(victim_url), CONSUMED) > 0 or not thread.is_alive(),
                 "the victim to consume", 120)
        before_kill = total(scrape(victim_url), CONSUMED)
        mid_stream = thread.is_alive()
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        thread.join()
        assert out, "publishing failed: see the thread's traceback above"
        produced = out[0]
        wait_until_consumed(settings, settings.persist_group, produced.targets,
                            [p for p, _ in survivors], lambda _: None, 180)
        shares = [total(scrape(url), CONSUMED) for _, url in survivors]
    finally:
        stop_processes(*procs)
    assert before_kill > 0, "the victim never got a partition"
    assert mid_stream, "the stream ended before the kill: make it longer"
    assert all(share > 0 for share in shares), shares  # every worker had partitions
    assert victim.returncode == -signal.SIGKILL
    ids = stored_event_ids(settings.database_url)
    assert len(ids) == sum(produced.by_topic.values())  # every event stored ...
    assert set(ids.values()) == {1}  # ... exactly once
    assert rows(settings.database_url, "SELECT count(*) FROM dead_letters") == [(0,)]


def test_the_outcomes_worker_and_the_learner_serve_metrics_and_health(settings, tmp_path):
    from amc_learning.entrypoints.bootstrap import with_signing_key

    keyed = with_signing_key(settings)
    procs = [start(keyed, name, tmp_path / f"{name}.log") for name in ("outcomes", "learner")]
    try:
        (_, outcomes_url), (_, learner_url) = procs
        wait_for(lambda: healthz(outcomes_url)["status"] == "ready", "outcomes ready", 90)
        learner = healthz(learner_url)
        outcomes, cycles = scrape(outcomes_url), scrape(learner_url)
    finally:
        stop_processes(*(p for p, _ in procs))
    assert learner["code"] == 200 and learner["status"] == "ready", learner
    assert "learning_outcomes_restarts" in outcomes
    assert total(outcomes, "learning_outcomes_published_total") == 0  # nothing published yet
    assert "learning_params_live_version" in cycles and "learning_dependency_up" in cycles
    assert total(cycles, "learning_process_start_time_seconds", process="learner") > 0


STARTER = """
import sys, time
from amc_learning.entrypoints.supervise import spawn_consumer
from amc_learning.settings import Settings
from pathlib import Path
proc = spawn_consumer(Settings(), "persist", Path(sys.argv[1]))
print(proc.pid, flush=True)
time.sleep(600)
"""


def test_a_consumer_whose_starter_is_killed_outright_stops_by_itself(settings, tmp_path):
    """`run` killed with SIGKILL leaves no worker behind on the broker: persist, started by
    a process that is then killed, notices within seconds, drains and exits."""
    env = {**os.environ, **settings_env(settings)}
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(tmp_path / "logs")],
                               env=env, stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    worker = int(starter.stdout.readline())
    entry = settings.data_dir / "processes" / f"persist-{worker}.json"
    wait_for(entry.exists, "persist to register", 60)
    assert gone(worker) is False
    starter.kill()
    starter.wait()
    wait_for(lambda: gone(worker), "persist to stop once its starter was killed", 60)
    log = (tmp_path / "logs" / "persist.log").read_text()
    assert "the process that started it" in log and "is gone; stopping" in log, log[-2000:]


def gone(pid: int) -> bool:
    """No such process, or a zombie that nobody has reaped yet (it exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"
