"""A published params record, read by librdkafka (confluent-kafka) and verified by the
`openssl` command line: clients nobody here wrote, with only the public key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from amc_learning.schemas import topics
from amc_learning.streams.params import publish_params
from tests import factories
from tests.integration.test_cli import cli
from tests.integration.test_params import version

pytestmark = pytest.mark.integration
confluent_kafka = pytest.importorskip("confluent_kafka", reason="pip install confluent-kafka")


def read_with_librdkafka(bootstrap: str, topic: str, timeout: float = 30) -> object:
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"openssl-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign([confluent_kafka.TopicPartition(topic, p,
                                                        confluent_kafka.OFFSET_BEGINNING)
                         for p in partitions])
        for _ in range(int(timeout)):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                return message
        raise AssertionError(f"librdkafka read nothing from {topic} in {timeout} s")
    finally:
        consumer.close()


def openssl_verify(pem: Path, value: bytes, signature: bytes,
                   folder: Path) -> subprocess.CompletedProcess[str]:
    (folder / "value.bin").write_bytes(value)
    (folder / "value.sig").write_bytes(signature)
    return subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pem),
                           "-rawin", "-in", str(folder / "value.bin"),
                           "-sigfile", str(folder / "value.sig")],
                          capture_output=True, text=True, check=False)


def test_librdkafka_and_openssl_verify_a_published_params_record(settings, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (Debian package openssl)")
    published = asyncio.run(publish_params(factories.keyed(settings), version(1)))
    message = read_with_librdkafka(settings.kafka_bootstrap,  # type: ignore[arg-type]
                                   settings.topic_prefix + topics.PARAMS)
    value, headers = message.value(), dict(message.headers() or [])
    assert value == published.value  # the exact bytes the learner signed
    assert headers["learning-key-id"].decode() == published.signature.key_id

    # the reader's side: the public key as the CLI prints it, nothing that can sign
    shown = cli(factories.reading(settings), "params-keys", "show")
    assert shown.returncode == 0, shown.stderr
    pem = tmp_path / "params-public.pem"
    pem.write_text(shown.stdout[shown.stdout.index("-----BEGIN"):])
    signature = base64.b64decode(headers["learning-signature"])
    ok = openssl_verify(pem, value, signature, tmp_path)
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout, ok

    # the key id is the SHA-256 of the raw key, as openssl reads it from the PEM
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pem), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    assert hashlib.sha256(der[-32:]).hexdigest()[:16] == headers["learning-key-id"].decode()

    edited = value.replace(b'"discovery_threshold":0.7', b'"discovery_threshold":0.45')
    assert edited != value
    bad = openssl_verify(pem, edited, signature, tmp_path)
    assert bad.returncode != 0 and "Signature Verification Failure" in bad.stdout, bad
