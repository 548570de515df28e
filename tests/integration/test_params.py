"""Signed params on the real broker: another process sees new versions; bad ones change nothing."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from amc_learning import infra
from amc_learning.schemas.params import FALLBACK_PARAMS, ParamsPublished, sign
from amc_learning.streams.kafka import KafkaConfig, client_options
from amc_learning.streams.params import ParamsReader, publish_params
from amc_learning.streams.topics import TopicNames, create_topics
from tests.integration.helpers import send_raw
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
    return settings.with_overrides(params_key=SecretStr("integration-key"))


def test_a_reader_in_another_process_sees_each_new_version(keyed):
    asyncio.run(publish_params(keyed, version(1)))
    first = cli(keyed, "params", "--wait-version", "1", "--timeout", "30")
    assert first.returncode == 0, first.stderr[-2000:]
    seen = json.loads(first.stdout.strip().splitlines()[-1])
    assert (seen["source"], seen["version"], seen["mode"]) == ("published", 1, "live")
    asyncio.run(publish_params(keyed, version(2, discovery_threshold=0.72)))
    second = json.loads(cli(keyed, "params", "--wait-version", "2").stdout.splitlines()[-1])
    assert second["version"] == 2 and second["params"]["discovery_threshold"] == 0.72


def test_bad_versions_on_the_topic_leave_the_reader_on_the_last_valid_one(keyed):
    key = b"integration-key"
    asyncio.run(publish_params(keyed, version(1)))
    tampered = sign(version(2), key).model_dump_json().replace(
        '"discovery_threshold":0.7', '"discovery_threshold":0.45')
    payloads = [
        tampered.encode(),
        sign(version(3), b"wrong-key").model_dump_json().encode(),
        sign(version(4, position_size_limit_pct=25.0), key).model_dump_json().encode(),
        sign(version(1), key).model_dump_json().encode(),  # stale
    ]
    asyncio.run(send_raw(keyed, "learning.params.v1", payloads, key=b"default"))
    reader = ParamsReader.from_settings(keyed).start()
    try:
        assert reader.wait_for(lambda r: sum(r.rejections.values()) == 4, 30), reader.status()
        view = reader.get()
    finally:
        reader.close()
    assert (view.source, view.version, view.params.discovery_threshold) == ("published", 1, 0.7)
    assert reader.rejections == {"bad_signature": 2, "out_of_bounds": 1, "stale": 1}


def test_an_unreachable_broker_means_the_fallback_with_the_reason():
    reader = ParamsReader(KafkaConfig(f"127.0.0.1:{infra.free_port()}"), "t", b"k",
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
