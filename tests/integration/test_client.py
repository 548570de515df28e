"""The dependency-free client against a real `amc-learning serve` (and, for what a server
must never send, a local server of ours): events stored once under the token's producer,
a dead or hung server costs the caller nothing, and params are checked here, not only
there."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from amc_learning_client import FALLBACK, LearningClient

from amc_learning.api import tokens
from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.schemas.models import TieredModel, shipped
from amc_learning.schemas.params import TieredParams
from amc_learning.schemas.signing import Signer
from amc_learning.store.migrations import migrate
from amc_learning.streams.params import publish_params
from tests import factories
from tests.integration.helpers import rows
from tests.integration.test_api import _free_port, _serve
from tests.integration.test_params import version

pytestmark = pytest.mark.integration

SCANNER = next(m for m in shipped() if m.name == "amc-scanner")
assert isinstance(SCANNER, TieredModel)
TOKEN, ENTRY = tokens.make("amc-trader-cron", ("collect", "read"))
#: what the client promises (`timeout` at most 0.2 s); the margin is the scheduler's, on a
#: loaded two-core machine, not the client's
TIMEOUT_S, MARGIN_S = 0.2, 0.3


def serving(settings: Any) -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    return f"http://127.0.0.1:{port}", _serve(settings, port, LEARNING_API_TOKENS=ENTRY)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def answer_of(base: str, query: str = "") -> dict[str, Any]:
    request = urllib.request.Request(base + "/learning/intelligence/adaptive-params" + query,
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def wait_for_version(base: str, version_: int, timeout: float = 30) -> dict[str, Any]:
    deadline, answer = time.monotonic() + timeout, {}
    while time.monotonic() < deadline and answer.get("version") != version_:
        answer = answer_of(base)
        time.sleep(0.2)
    assert answer.get("version") == version_, answer
    return answer


@pytest.fixture
def client_of() -> Iterator[Any]:
    made: list[LearningClient] = []

    def make(base: str, **kwargs: Any) -> LearningClient:
        made.append(LearningClient(base, TOKEN, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close(timeout=1)


async def test_events_sent_through_the_client_are_stored_once_under_its_tokens_producer(
        settings, client_of):
    base, proc = serving(settings)
    try:
        client = client_of(base, batch_size=50)
        candidates = [json.loads(factories.candidate(symbol=f"S{i:03d}").model_dump_json())
                      for i in range(120)]
        candidates[70]["price"] = "not a price"  # refused alone; its batch still goes
        for c in candidates[:5]:
            c.pop("event_id")  # the client gives them one (a retry stays idempotent)
            c["producer"] = "someone-else"  # the token decides, not the body
        assert client.collect_discovery(candidates[:60])
        assert all(client.collect_discovery(c) for c in candidates[60:])
        assert client.collect_thesis(json.loads(factories.thesis(decision_id="dec-client")
                                                .model_dump_json()))
        assert client.flush(60), client.status()
    finally:
        stop(proc)
    status = client.status()
    assert (status["sent"], status["rejected"], status["dropped"]) == (120, 1, 0), status
    assert "price" in status["last_rejection"]
    stats = await run_persist(bootstrap(settings), max_records=120, idle_exit_s=20)
    assert stats.consumed == 120 and stats.dead_lettered == 0
    assert rows(settings.database_url,
                "SELECT producer, count(*), count(DISTINCT event_id) FROM discovery_candidates"
                " GROUP BY 1") == [("amc-trader-cron", 119, 119)]
    assert rows(settings.database_url, "SELECT producer FROM learning_decisions"
                                       " WHERE decision_id = 'dec-client'") == [
        ("amc-trader-cron",)]


def test_a_dead_or_hung_server_costs_the_caller_nothing(client_of):
    hung = socket.socket()  # accepts connections into its backlog and never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    try:
        for base in (f"http://127.0.0.1:{_free_port()}",
                     f"http://127.0.0.1:{hung.getsockname()[1]}"):
            client = client_of(base, timeout=TIMEOUT_S, send_timeout_s=2.0)
            took = []
            for i in range(30):
                started = time.monotonic()
                view = client.get_params()
                queued = client.collect_discovery({"symbol": f"S{i}", "price": 1.0})
                took.append(time.monotonic() - started)
                assert view.source == "fallback" and view.params == FALLBACK and queued
            assert max(took) < TIMEOUT_S + MARGIN_S, (base, took)
            assert view.reason  # why: no answer yet, or what the server did
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and client.status()["retries"] == 0:
                time.sleep(0.1)
            status = client.status()
            assert status["retries"] >= 1 and status["sent"] == 0, status
            kept = status["queue"] + status["in_flight"]
            assert kept == 30 and status["dropped"] == 0, status  # kept, not lost
            started = time.monotonic()
            client.close(timeout=1)
            assert time.monotonic() - started < 1 + 2.0 + MARGIN_S  # one send's timeout
            # the sender ends once the send in hand ends (it once spun here, holding the
            # GIL, and slowed every later test in the process seven times)
            client._sender.join(2.0 + MARGIN_S)
            assert not client._sender.is_alive()
    finally:
        hung.close()


class _Stub(BaseHTTPRequestHandler):
    """Answers every GET with `body`: a server that must not be believed."""

    body: bytes = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


def stub(body: dict[str, Any]) -> tuple[str, ThreadingHTTPServer]:
    handler = type("Stub", (_Stub,), {"body": json.dumps(body).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def test_the_client_checks_the_signature_itself_and_refuses_a_tampered_or_foreign_record(
        settings, client_of):
    ours, theirs = Signer(factories.SIGNING_KEY), Signer(factories.OTHER_KEY)
    asyncio.run(publish_params(factories.keyed(settings), version(1, discovery_threshold=0.72)))
    base, proc = serving(factories.reading(settings))  # holds our public key
    try:
        answer = wait_for_version(base, 1)
        good = client_of(base, public_keys=[ours.public_key]).refresh()
    finally:
        stop(proc)
    assert (good.source, good.version, good.verified) == ("published", 1, True), good
    assert good.params["discovery_threshold"] == 0.72

    # a server that edits the record it hands on
    tampered = {**answer, "record": answer["record"].replace('"discovery_threshold":0.72',
                                                             '"discovery_threshold":0.45')}
    tampered["params"]["discovery_threshold"] = 0.45
    stub_url, server = stub(tampered)
    try:
        client = client_of(stub_url, public_keys=[ours.public_key])
        refused = client.refresh()
    finally:
        server.shutdown()
    assert refused.source == "fallback" and refused.params == FALLBACK, refused
    assert client.status()["last_rejection"].startswith("bad_signature")

    # a server that trusts another key than ours: what it serves is not ours to take
    asyncio.run(publish_params(factories.keyed(settings, factories.OTHER_KEY),
                               version(2, discovery_threshold=0.5)))
    base, proc = serving(factories.reading(settings, factories.OTHER_KEY))
    try:
        wait_for_version(base, 2)
        client = client_of(base, public_keys=[ours.public_key])
        foreign = client.refresh()
    finally:
        stop(proc)
    assert foreign.source == "fallback" and foreign.params == FALLBACK, foreign
    assert client.status()["last_rejection"].startswith("unknown_key"), client.status()
    assert theirs.key_id in client.status()["last_rejection"]


def test_a_scanner_reads_its_own_models_table_or_its_own_fallback_never_another_models(
        settings, client_of):
    ours = Signer(factories.SIGNING_KEY)
    keyed = factories.keyed(settings)
    learned = TieredParams.declared(SCANNER)
    learned.tables["chase_risk"]["high_moved"] = 0
    asyncio.run(publish_params(keyed, version(1, discovery_threshold=0.72)))
    asyncio.run(publish_params(keyed, version(1).model_copy(update={
        "name": "amc-scanner:3.3.1", "params": learned})))
    own_table = json.loads(TieredParams.declared(SCANNER).model_dump_json())
    older = {**own_table, "model": {"name": "amc-scanner", "version": "3.2.0"}}
    base, proc = serving(factories.reading(settings))
    try:
        native = wait_for_version(base, 1)
        scanner = client_of(base, public_keys=[ours.public_key],
                            scoring_model="amc-scanner 3.3.1", fallback=own_table)
        deadline, table = time.monotonic() + 30, scanner.refresh()
        while time.monotonic() < deadline and table.source != "published":
            time.sleep(0.2)
            table = scanner.refresh()
        # a version the engine does not know: the producer's own table, and why
        unknown = client_of(base, public_keys=[ours.public_key],
                            scoring_model="amc-scanner 3.2.0", fallback=older).refresh()
        engine = client_of(base, public_keys=[ours.public_key]).refresh()
    finally:
        stop(proc)
    assert (table.source, table.version, table.verified) == ("published", 1, True), table
    assert table.params["tables"]["chase_risk"]["high_moved"] == 0
    assert table.params["model"] == {"name": "amc-scanner", "version": "3.3.1"}
    assert unknown.source == "fallback" and unknown.params == older
    assert "404" in unknown.reason and "models register" in unknown.reason
    assert engine.source == "published" and engine.params["discovery_threshold"] == 0.72
    # a server that answers a scanner with the engine's own set: refused, its fallback
    stub_url, server = stub(native)
    try:
        misled = client_of(stub_url, public_keys=[ours.public_key],
                           scoring_model="amc-scanner 3.3.1", fallback=own_table)
        refused = misled.refresh()
    finally:
        server.shutdown()
    assert refused.source == "fallback" and refused.params == own_table, refused
    assert misled.status()["last_rejection"].startswith("wrong_model")
    with pytest.raises(ValueError, match="fallback"):
        LearningClient(base, TOKEN, scoring_model="amc-scanner 3.3.1")


CLIENT_WITHOUT_CRYPTOGRAPHY = """
import json, sys
sys.modules["cryptography"] = None  # as on a machine without it: the import fails
from amc_learning_client import LearningClient
client = LearningClient(sys.argv[1], sys.argv[2], public_keys=[sys.argv[3]])
view = client.refresh()
print(json.dumps({"view": view._asdict(), "status": client.status()}))
client.close(timeout=1)
"""


def test_without_cryptography_the_client_says_it_trusts_the_servers_check(settings):
    asyncio.run(publish_params(factories.keyed(settings), version(1, discovery_threshold=0.72)))
    base, proc = serving(factories.reading(settings))
    try:
        wait_for_version(base, 1)
        result = subprocess.run(
            [sys.executable, "-c", CLIENT_WITHOUT_CRYPTOGRAPHY, base, TOKEN,
             Signer(factories.SIGNING_KEY).public_key],
            capture_output=True, text=True, env={**os.environ}, timeout=60, check=False)
    finally:
        stop(proc)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)
    assert seen["view"]["source"] == "published" and seen["view"]["verified"] is False
    assert seen["view"]["params"]["discovery_threshold"] == 0.72
    assert "cryptography` is not installed" in seen["status"]["verification"]


VENDORED = (Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader" / "data"
            / "scanner_weights.json")


def test_the_scanners_file_is_replaced_only_by_a_verified_table_of_the_same_shape(
        settings, client_of, tmp_path):
    """write_scanner_weights: a good write; the engine down, a tampered record, an unknown
    model and a file of another shape each leave the old file byte for byte."""
    keyed = factories.keyed(settings)
    ours = Signer(factories.SIGNING_KEY)
    learned = TieredParams.declared(SCANNER)
    learned.tables["chase_risk"]["extreme_moved"] = -45
    learned.tables["entry_timing"]["pre_market"] = 18
    deps = bootstrap(keyed, kafka=False)
    migrate(deps.db)
    message = version(1).model_copy(update={"name": "amc-scanner:3.3.1", "params": learned})
    fit = {"tiers": [{"factor": "chase_risk", "tier": "extreme_moved", "n": 812,
                      "effect": -0.011, "low": -0.017, "high": -0.005, "q": 0.004}]}
    with deps.db.unit_of_work() as uow:  # the learner records a version, then sends it
        uow.params.record_cycle("daily", date(2026, 11, 2), "amc-scanner:3.3.1", [
            dict(version=1, mode="shadow", params=learned, parent=None, canary_pct=0.0,
                 provenance={"fit": fit}, evidence={}, publish=False),
            dict(version=1, mode="live", params=learned, parent=None, canary_pct=0.0,
                 provenance={}, evidence={}, publish=True,
                 message=message.model_dump_json())], {}, "amc-scanner 3.3.1")
    deps.close()
    asyncio.run(publish_params(keyed, message))
    path = tmp_path / "scanner_weights.json"
    original = VENDORED.read_bytes()
    path.write_bytes(original)

    base, proc = serving(factories.reading(keyed))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and answer_of(
                base, "?model=amc-scanner%203.3.1").get("version") != 1:
            time.sleep(0.2)
        client = client_of(base, public_keys=[ours.public_key])
        unknown = client.write_scanner_weights(path, model="amc-scanner 9.9")
        shaped = tmp_path / "other.json"  # a file whose table holds strings
        other = json.loads(original)
        other["chase_risk"] = {k: str(v) for k, v in other["chase_risk"].items()}
        shaped.write_text(json.dumps(other))
        before_shape = shaped.read_bytes()
        misshapen = client.write_scanner_weights(shaped)
        answer = answer_of(base, "?model=amc-scanner%203.3.1&format=amc-scanner-weights")
        good = client.write_scanner_weights(path)
        again = client.write_scanner_weights(path)
    finally:
        stop(proc)
    assert not unknown.written and "404" in unknown.reason and "left as it was" in unknown.reason
    assert not misshapen.written and "structure: chase_risk" in misshapen.reason
    assert shaped.read_bytes() == before_shape
    assert good.written and good.version == "3.3.1+learned.1", good
    written = json.loads(path.read_text())
    old = json.loads(original)
    assert written["chase_risk"]["extreme_moved"] == -45
    assert written["entry_timing"]["pre_market"] == 18
    assert written["gap"] == old["gap"] and set(written) == set(old)
    assert written["update_history"][:-1] == old["update_history"]
    assert "(n 812" in written["update_history"][-1]["changes"][0]
    assert not again.written and "already holds" in again.reason
    assert answer["file"]["version"] == "3.3.1+learned.1"  # the API serves the export too

    # the engine down: nothing changes
    written_bytes = path.read_bytes()
    down = client_of(f"http://127.0.0.1:{_free_port()}", public_keys=[ours.public_key])
    gone = down.write_scanner_weights(path, timeout=2)
    assert not gone.written and "did not answer" in gone.reason
    assert path.read_bytes() == written_bytes
    # a record edited on the way: refused, nothing changes
    forged = {**answer, "record": answer["record"].replace("-45", "-99")}
    stub_url, server = stub(forged)
    try:
        tampered = client_of(stub_url, public_keys=[ours.public_key]).write_scanner_weights(
            tmp_path / "scanner_weights.json")
    finally:
        server.shutdown()
    assert not tampered.written and tampered.reason.startswith("bad_signature")
    assert path.read_bytes() == written_bytes
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
