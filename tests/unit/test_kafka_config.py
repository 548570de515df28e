"""KafkaConfig: the typed configuration the SDK classes take."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from amc_learning.settings import Settings
from amc_learning.streams.kafka import KafkaConfig, consumer_options, producer_options


def test_from_settings_carries_security_and_sizes_into_every_client():
    s = Settings(kafka_bootstrap="k1:9092,k2:9092", kafka_security_protocol="SASL_PLAINTEXT",
                 kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="engine",
                 kafka_sasl_password=SecretStr("s3cret"), max_event_bytes=1_000_000)
    kafka = KafkaConfig.from_settings(s)
    producer, consumer = kafka.producer(), kafka.consumer("g")
    for options in (producer, consumer):
        assert options["bootstrap_servers"] == "k1:9092,k2:9092"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_password"] == "s3cret"
    assert producer["max_request_size"] == consumer["max_partition_fetch_bytes"] == 2_000_000
    assert producer == producer_options(s) and consumer == consumer_options(s, "g")
    assert "s3cret" not in repr(kafka)


def test_plaintext_has_no_security_options_and_no_bootstrap_is_refused():
    assert set(KafkaConfig("h:1").client()) == {"bootstrap_servers", "security_protocol"}
    with pytest.raises(ValueError, match="LEARNING_KAFKA_BOOTSTRAP"):
        KafkaConfig("")
