"""Signed params on the real broker: another process sees new versions; bad ones change nothing."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from amc_learning.entrypoints import infra
from amc_learning.schemas.params import FALLBACK_PARAMS, ParamsPublished
from amc_learning.schemas.signing import Signature, Signer, Verifier
from amc_learning.streams.kafka import KafkaConfig, client_options
from amc_learning.streams.params import ParamsReader, Record, publish_params
from amc_learning.streams.topics import TopicNames, create_topics
from tests import factories
from tests.integration.helpers import send_params
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration


def version(n: int, **params) -> ParamsPublished:
    now = datetime.now(UTC)
    return ParamsPublished(
        name="default", version=n, issued_at=now, valid_until=now + timedelta(hours=1),
        mode="live", regime="bull_low_vol",
        params=FALLBACK_PARAMS.model_copy(update={"discovery_threshold": 0.7, **params}),
        provenance={"window": ["2026-01-01", "2026-03-31"], "parent": n - 1 or None},
    )


@pytest.fixture
def keyed(settings):
    return factories.keyed(settings)


def test_a_reader_in_another_process_sees_each_new_version(keyed):
    asyncio.run(publish_params(keyed, version(1)))
    reader = factories.reading(keyed)  # holds the public key only
    first = cli(reader, "params", "--wait-version", "1", "--timeout", "30")
    assert first.returncode == 0, first.stderr[-2000:]
    seen = json.loads(first.stdout.strip().splitlines()[-1])
    assert (seen["source"], seen["version"], seen["mode"]) == ("published", 1, "live")
    asyncio.run(publish_params(keyed, version(2, discovery_threshold=0.72)))
    second = json.loads(cli(reader, "params", "--wait-version", "2").stdout.splitlines()[-1])
    assert second["version"] == 2 and second["params"]["discovery_threshold"] == 0.72


def test_bad_versions_on_the_topic_leave_the_reader_on_the_last_valid_one(keyed):
    ours, theirs = Signer(factories.SIGNING_KEY), Signer(factories.OTHER_KEY)
    asyncio.run(publish_params(keyed, version(1)))
    second = Record.signed(version(2), ours)
    tampered = second.value.replace(b'"discovery_threshold":0.7', b'"discovery_threshold":0.45')
    foreign = Record.signed(version(3), theirs)
    posing = Signature(foreign.signature.value, ours.key_id)
    records = [(tampered, second.signature), (foreign.value, foreign.signature),
               (foreign.value, posing), (second.value, None),
               *((r.value, r.signature) for r in (
                   Record.signed(version(4, position_size_limit_pct=25.0), ours),
                   Record.signed(version(1), ours)))]  # stale
    asyncio.run(send_params(keyed, records))
    reader = ParamsReader.from_settings(factories.reading(keyed)).start()
    try:
        assert reader.wait_for(lambda r: sum(r.rejections.values()) == 6, 30), reader.status()
        view = reader.get()
    finally:
        reader.close()
    assert (view.source, view.version, view.params.discovery_threshold) == ("published", 1, 0.7)
    assert reader.rejections == {"bad_signature": 2, "unknown_key": 1, "unsigned": 1,
                                 "out_of_bounds": 1, "stale": 1}


def test_an_unreachable_broker_means_the_fallback_with_the_reason():
    reader = ParamsReader(KafkaConfig(f"127.0.0.1:{infra.free_port()}"), "t", Verifier([]),
                          connect_timeout_s=1.0).start()
    try:
        assert reader.wait_for(lambda r: r.status()["breaker"] != "closed", 30), reader.status()
        view = reader.get()
    finally:
        reader.close()
    assert view.source == "fallback" and "broker unreachable" in view.reason
    assert view.params == FALLBACK_PARAMS


def test_a_broker_outage_keeps_the_last_valid_params(tmp_path, keyed):
    pid, bootstrap = infra.start_broker(tmp_path / "broker.log")
    own = keyed.with_overrides(kafka_bootstrap=bootstrap)
    try:
        asyncio.run(create_topics(client_options(own), TopicNames(own.topic_prefix), 1, 1))
        asyncio.run(publish_params(own, version(1)))
        reader = ParamsReader.from_settings(own, connect_timeout_s=1.0).start()
        assert reader.wait_for(lambda r: r.get().version == 1, 30), reader.status()
        infra.stop_process(pid)
        time.sleep(3)  # the reader's fetches now fail; what it returns must not change
        view = reader.get()
        reader.close()
    finally:
        infra.stop_process(pid)
    assert (view.source, view.version) == ("published", 1)
