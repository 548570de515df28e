"""The HTTP API while the broker stops answering: a 503 within the bounded wait, and a
retry of the same batch afterwards stores every event once, nothing lost, nothing half."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.schemas.registry import decode_event
from tests import factories
from tests.faults.conftest import ProxiedBroker, Tally
from tests.integration.test_api import WRITER, _free_port, _serve, call

pytestmark = pytest.mark.integration
ACK_TIMEOUT_S = 2


def test_a_broker_outage_is_a_503_and_the_retry_stores_each_event_once(
        proxied, proxied_broker: ProxiedBroker, tally: Tally):
    path = "/learning/collect/discovery-data"
    before = [json.loads(factories.candidate(symbol=f"B{i:03d}").model_dump_json())
              for i in range(50)]
    during = [json.loads(factories.candidate(symbol=f"D{i:03d}").model_dump_json())
              for i in range(50)]
    port = _free_port()
    proc = _serve(proxied, port, LEARNING_API_ACK_TIMEOUT_S=str(ACK_TIMEOUT_S))
    base = f"http://127.0.0.1:{port}"
    try:
        assert call(base, "POST", path, WRITER, before)[0] == 200
        proxied_broker.proxy.blackhole()  # connections stay open; nothing comes back
        started = time.monotonic()
        code, headers, answer = call(base, "POST", path, WRITER, during)
        took = time.monotonic() - started
        assert code == 503 and int(headers["retry-after"]) > 0, answer
        assert took < ACK_TIMEOUT_S + 3, took  # the ack timeout (+ scheduling), never a hang
        proxied_broker.proxy.heal()
        attempts, deadline = 1, time.monotonic() + 90
        while code != 200 and time.monotonic() < deadline:  # the producer's retry
            time.sleep(1)
            code, _, answer = call(base, "POST", path, WRITER, during)
            attempts += 1
        assert code == 200, answer
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    stats = asyncio.run(run_persist(bootstrap(proxied), max_records=10_000, idle_exit_s=10))
    events = [decode_event(json.dumps(e).encode()) for e in before + during]
    tally.count(events, proxied.database_url, sent=len(events))
    tally.note = (f"503 after {took:.1f} s, stored after {attempts} attempts; "
                  f"{stats.consumed} records read")
    assert stats.dead_lettered == 0
    assert (tally.lost, tally.duplicated, tally.stored) == (0, 0, 100), tally
