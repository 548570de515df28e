"""`amc-learning serve` as its own process on loopback, spoken to with the standard
library's HTTP client: events posted are stored once under the token's producer, and
every refusal says why."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from amc_learning.api import tokens
from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.entrypoints.supervise import settings_env
from amc_learning.schemas.models import TieredModel, shipped
from amc_learning.schemas.params import TieredParams
from amc_learning.schemas.signing import Signature, Signer, Verifier
from amc_learning.streams.params import Record, publish_params
from tests import factories
from tests.integration.helpers import rows, send_params
from tests.integration.test_cli import cli
from tests.integration.test_params import version

pytestmark = pytest.mark.integration

SCANNER = next(m for m in shipped() if m.name == "amc-scanner")
assert isinstance(SCANNER, TieredModel)
WRITER, WRITER_ENTRY = tokens.make("amc-trader-cron", ("collect",))
READER, READER_ENTRY = tokens.make("trading-engine", ("read",))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(base: str, method: str, path: str, token: str | None = None,
         body: Any = None, raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return (response.status, {k.lower(): v for k, v in response.headers.items()},
                    json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, json.loads(
            exc.read() or b"null")


def _headers_only(base: str, path: str, token: str, length: int) -> str:
    """A POST that declares `length` bytes and sends none: the answer, as text."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}"
                  f"\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
                  .encode())
        answer = b""
        while chunk := s.recv(65536):  # until the server closes or the body is complete
            answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            declared = [int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                        if line.startswith(b"content-length:")]
            if declared and len(body) >= declared[0]:
                break
        return answer.decode(errors="replace")


def _serve(settings: Any, port: int, **env: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, **settings_env(settings),
                   "LEARNING_API_TOKENS": f"{WRITER_ENTRY},{READER_ENTRY}", **env}
    proc = subprocess.Popen([sys.executable, "-m", "amc_learning.cli", "serve", "--port",
                             str(port)], env=environment, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode()[-2000:]) from None
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("serve did not answer /healthz within 60 s")


@pytest.fixture
def server(settings) -> Iterator[str]:
    port = _free_port()
    proc = _serve(settings, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_a_batch_posted_over_http_is_stored_once_under_the_tokens_producer(
        settings, server):
    batch = [json.loads(factories.candidate(symbol=s, run_id="run-http").model_dump_json())
             for s in ("AMC", "GME", "RIG")]
    batch[0]["producer"] = "someone-else"  # the token decides, not the body
    code, _, answer = call(server, "POST", "/learning/collect/discovery-data", WRITER, batch)
    assert code == 200, answer
    assert answer["accepted"] == 3 and answer["producer"] == "amc-trader-cron"
    again = call(server, "POST", "/learning/collect/discovery-data", WRITER, batch)
    assert again[0] == 200  # a retry: the same event ids
    single = json.loads(factories.thesis(decision_id="dec-http").model_dump_json())
    assert call(server, "POST", "/learning/collect/thesis-decision", WRITER, single)[0] == 200
    stats = await run_persist(bootstrap(settings), max_records=7, idle_exit_s=20)
    assert stats.consumed == 7 and stats.dead_lettered == 0
    assert rows(settings.database_url, "SELECT producer, count(*) FROM discovery_candidates"
                                       " GROUP BY 1") == [("amc-trader-cron", 3)]
    assert rows(settings.database_url, "SELECT producer FROM learning_decisions"
                                       " WHERE decision_id = 'dec-http'") == [
        ("amc-trader-cron",)]


def test_every_refusal_says_why(settings, server):
    event = json.loads(factories.candidate().model_dump_json())
    path = "/learning/collect/discovery-data"
    assert call(server, "POST", path, None, event)[0] == 401
    assert call(server, "POST", path, "not-a-token", event)[0] == 401
    code, _, answer = call(server, "POST", path, READER, event)
    assert code == 403 and "lacks the 'collect' scope" in answer["detail"]
    code, _, answer = call(server, "GET", "/learning/intelligence/adaptive-params", WRITER)
    assert code == 403 and "'read'" in answer["detail"]

    bad = [event, {**event, "price": "5.1", "symbol": "not a symbol"}, "text"]
    code, _, answer = call(server, "POST", path, WRITER, bad)
    assert code == 422
    where = {(tuple(e["loc"])) for e in answer["detail"]}
    assert {(1, "candidate_scored", "price"), (1, "candidate_scored", "symbol"), (2,)} <= where
    wrong_route = json.loads(factories.fill().model_dump_json())
    code, _, answer = call(server, "POST", path, WRITER, wrong_route)
    assert code == 422 and "takes 'candidate_scored'" in answer["detail"][0]["msg"]
    code, _, answer = call(server, "POST", path, WRITER, raw=b"{" * 10)
    assert code == 422 and answer["detail"][0]["loc"] == ["body"]
    head = _headers_only(server, path, WRITER, 4_194_304 + 1)  # refused before it is sent
    assert head.startswith("HTTP/1.1 413") and "LEARNING_API_MAX_BODY_BYTES" in head
    code, _, answer = call(server, "POST", path, WRITER, [event] * 1001)
    assert code == 413 and "at most 1000" in answer["detail"]
    assert call(server, "POST", "/learning/collect/nothing", WRITER, event)[0] == 404
    # nothing refused reached the topics
    assert rows(settings.database_url, "SELECT count(*) FROM discovery_candidates") == [(0,)]


def test_params_read_over_http_are_what_a_reader_holds_or_the_fallback_and_why(
        settings, server):
    code, _, answer = call(server, "GET", "/learning/intelligence/adaptive-params", READER)
    assert code == 200
    assert answer["source"] == "fallback" and answer["version"] is None
    assert answer["reason"] and answer["params"]["discovery_threshold"] > 0


def test_a_dead_broker_is_a_503_with_retry_after_within_the_bounded_wait(settings):
    port = _free_port()
    dead = settings.with_overrides(kafka_bootstrap=f"127.0.0.1:{_free_port()}")
    proc = _serve(dead, port, LEARNING_API_ACK_TIMEOUT_S="2")
    try:
        event = json.loads(factories.candidate().model_dump_json())
        started = time.monotonic()
        code, headers, answer = call(f"http://127.0.0.1:{port}", "POST",
                                     "/learning/collect/discovery-data", WRITER, event)
        took = time.monotonic() - started
        assert code == 503 and headers["retry-after"] == "5", answer
        assert "retry" in answer["detail"] and took < 30  # bounded: never a hang
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_without_tokens_is_one_clear_line(settings):
    result = cli(settings.with_overrides(api_tokens=""), "serve", "--port", "0")
    assert result.returncode == 2 and "LEARNING_API_TOKENS is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_params_over_http_are_the_version_a_reader_holds_and_never_a_tampered_one(
        settings, tmp_path):
    ours, theirs = Signer(factories.SIGNING_KEY), Signer(factories.OTHER_KEY)
    keyed = factories.keyed(settings)
    foreign = Record.signed(version(2, discovery_threshold=0.3), theirs)
    newer = Record.signed(version(3, discovery_threshold=0.35), ours)
    tampered = newer.value.replace(b'"discovery_threshold":0.35', b'"discovery_threshold":0.3')
    # before v1 on the same partition: once the server holds v1, it has refused both
    asyncio.run(send_params(keyed, [(foreign.value, foreign.signature),
                                    (tampered, newer.signature)]))
    asyncio.run(publish_params(keyed, version(1, discovery_threshold=0.72)))
    # the scanner's own set, and another version of it registered beside the shipped one
    learned = TieredParams.declared(SCANNER)
    learned.tables["gap"]["huge"] = -15
    asyncio.run(publish_params(keyed, version(1).model_copy(update={
        "name": "amc-scanner:3.3.1", "params": learned})))
    newer = tmp_path / "scanner-3.3.2.json"
    newer.write_text(SCANNER.model_copy(update={"version": "3.3.2"}).model_dump_json())
    assert cli(settings, "models", "register", str(newer)).returncode == 0
    port = _free_port()
    proc = _serve(factories.reading(keyed), port)  # the public key only
    base, path = f"http://127.0.0.1:{port}", "/learning/intelligence/adaptive-params"
    try:
        deadline, answer, table = time.monotonic() + 30, {}, {}
        while time.monotonic() < deadline and (answer.get("version"), table.get("version")) != (
                1, 1):
            _, _, answer = call(base, "GET", path, READER)
            _, _, table = call(base, "GET", path + "?model=amc-scanner%203.3.1", READER)
            time.sleep(0.2)
        _, _, registered = call(base, "GET", path + "?model=amc-scanner%203.3.2", READER)
        unknown = call(base, "GET", path + "?model=amc-scanner%209.9", READER)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # a model's own table, signed; another version of it: its own declared table
    assert (table["source"], table["name"], table["params"]["kind"]) == (
        "published", "amc-scanner:3.3.1", "tiered")
    assert table["params"]["tables"]["gap"]["huge"] == -15
    assert json.loads(table["record"])["params"] == table["params"]
    assert registered["source"] == "fallback" and registered["params"] == json.loads(
        TieredParams.declared(SCANNER.model_copy(update={"version": "3.3.2"}))
        .model_dump_json())
    assert unknown[0] == 404 and "model:" in unknown[2]["detail"]
    assert "models register" in unknown[2]["detail"]
    assert (answer["source"], answer["version"], answer["mode"]) == ("published", 1, "live")
    assert answer["params"]["discovery_threshold"] == 0.72  # not the forged 0.3
    # the caller can check it for itself: the record's exact text, signed by our key
    assert (answer["algorithm"], answer["key_id"]) == ("ed25519", ours.key_id)
    record = answer["record"].encode()
    assert Verifier([ours.public_key]).check(
        record, Signature(answer["signature"], answer["key_id"])) is None
    assert json.loads(record)["params"] == answer["params"]


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader" / "payloads"


async def test_a_producers_own_shapes_go_through_the_adapters(settings, server):
    candidates = json.loads((FIXTURES / "d8_alphastack41_api_candidates.json").read_text())[
        "records"]
    path = "/learning/collect/discovery-data?format=alphastack-4.1"
    code, _, answer = call(server, "POST", path, WRITER, candidates)
    assert code == 200 and answer["accepted"] == 3, answer
    broken = [candidates[0], {**candidates[1], "price": None}]
    code, _, answer = call(server, "POST", path, WRITER, broken)
    assert code == 422 and answer["detail"] == [{"loc": [1], "msg": "price: missing"}]
    fill = {"stream": "trade_updates", "data": {
        "event": "fill", "execution_id": "exec-1", "timestamp": "2026-02-10T20:00:23Z",
        "price": "5.345", "qty": "55", "position_qty": "55",
        "order": {"id": "61e69015-8549-4bfd-b9c3-01e75843f47d", "symbol": "RIG",
                  "client_order_id": "dec-rig:entry", "side": "buy", "qty": "55",
                  "filled_qty": "55", "filled_avg_price": "5.345", "status": "filled"}}}
    code, _, answer = call(server, "POST", "/learning/collect/trade-outcome"
                                           "?format=alpaca-trade-update", WRITER, fill)
    assert code == 200 and answer["accepted"] == 1, answer
    code, _, answer = call(server, "POST", "/learning/collect/trade-outcome"
                                           "?format=alphastack-4.1", WRITER, candidates)
    assert code == 400 and "alpaca-trade-update" in answer["detail"]
    stats = await run_persist(bootstrap(settings), max_records=4, idle_exit_s=20)
    assert stats.consumed == 4 and stats.dead_lettered == 0
    assert rows(settings.database_url, "SELECT scoring_model, count(*) FROM"
                                       " discovery_candidates GROUP BY 1") == [("alphastack", 3)]
    assert rows(settings.database_url, "SELECT producer, decision_id, quantity FROM"
                                       " learning_trades") == [("amc-trader-cron", "dec-rig",
                                                                55.0)]


def test_a_flood_from_one_token_is_a_429_and_others_are_not_held_back(settings):
    port = _free_port()
    proc = _serve(settings, port, LEARNING_API_RATE_PER_S="0.5", LEARNING_API_BURST="2")
    base = f"http://127.0.0.1:{port}"
    try:
        path = "/learning/intelligence/adaptive-params"
        assert [call(base, "GET", path, READER)[0] for _ in range(2)] == [200, 200]
        code, headers, answer = call(base, "GET", path, READER)
        assert code == 429 and int(headers["retry-after"]) >= 1
        assert "LEARNING_API_RATE_PER_S" in answer["detail"]
        event = json.loads(factories.candidate().model_dump_json())
        assert call(base, "POST", "/learning/collect/discovery-data", WRITER, event)[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_intelligence_routes_answer_what_the_newest_pass_stored(settings):
    ran = cli(settings, "run", "--days", "25", "--symbols", "20", "--bad-rate", "0",
              "--no-learning")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert cli(settings, "analyze").returncode == 0
    port = _free_port()
    proc = _serve(settings, port)
    base = f"http://127.0.0.1:{port}"
    try:
        code, _, found = call(base, "GET", "/learning/intelligence/pattern-insights?limit=5",
                              READER)
        assert code == 200 and 0 < len(found) <= 5
        assert {"signature", "win_rate", "win_rate_ci_low", "q_value"} <= set(found[0])
        [(as_of,)] = rows(settings.database_url,
                          "SELECT max(as_of)::text FROM pattern_performance")
        assert {p["as_of"] for p in found} == {as_of}
        # a pass reads one scoring model's decisions: the route takes a model
        assert {p["scoring_model"] for p in found} == {"native"}
        code, _, same = call(base, "GET", "/learning/intelligence/pattern-insights?limit=5"
                             "&model=native", READER)
        assert code == 200 and same == found
        code, _, other = call(base, "GET", "/learning/intelligence/pattern-insights"
                              "?model=amc-scanner%203.3.1", READER)
        assert code == 200 and other == []  # no pass of that model: nothing, not native's
        # 25 sessions are too few for the regime detector's windows: labels as it writes them
        with psycopg.connect(settings.database_url) as conn:
            conn.cursor().executemany(
                "INSERT INTO regime_history (session, trend, volatility, regime, labelled_as_of)"
                " VALUES (%s, 'bull', 'low_vol', 'bull_low_vol', %s)",
                [(date(2024, 5, d), date(2024, 5, d)) for d in range(1, 6)])
        code, _, regimes = call(base, "GET", "/learning/intelligence/regime?sessions=3", READER)
        assert code == 200 and [r["session"] for r in regimes] == [
            "2024-05-05", "2024-05-04", "2024-05-03"]
        assert regimes[0]["regime"] == "bull_low_vol"
        code, _, maps = call(base, "GET", "/learning/intelligence/calibration", READER)
        assert code == 200 and maps and all(m["knots"] for m in maps)
        assert call(base, "GET", "/learning/intelligence/regime", WRITER)[0] == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)
