"""Someone who is not the learner writes to the params topic."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from amc_learning.schemas.params import FALLBACK_PARAMS, ParamsPublished
from amc_learning.schemas.signing import Signature, Signer
from amc_learning.streams.params import ParamsReader, message_key, publish_params
from tests import factories
from tests.faults.conftest import Tally

pytestmark = pytest.mark.integration

#: a record as sent: its value and the signature in its headers (None: no headers)
Sent = tuple[bytes | None, Signature | None]


def version(n: int, issued: datetime | None = None, ttl: timedelta = timedelta(hours=1),
            **params) -> ParamsPublished:  # type: ignore[no-untyped-def]
    issued = issued or datetime.now(UTC)
    return ParamsPublished(
        name="default", version=n, issued_at=issued, valid_until=issued + ttl, mode="live",
        regime="unknown", params=FALLBACK_PARAMS.model_copy(update=params),
        provenance={"by": "test"},
    )


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("learning_params_rejected_total", {"reason": reason}) or 0.0


def test_the_reader_refuses_everything_a_stranger_writes(settings, tally: Tally):
    keyed = factories.keyed(settings)
    v1 = asyncio.run(publish_params(keyed, version(1, discovery_threshold=0.70)))
    asyncio.run(publish_params(keyed, version(2, discovery_threshold=0.72)))
    ours, theirs = Signer(factories.SIGNING_KEY), Signer(factories.OTHER_KEY)
    valid = version(9).model_dump_json().encode()
    v4 = version(4).model_dump_json().encode()

    def signed(value: bytes) -> Sent:  # with the real key: a learner bug, not a stranger
        return value, ours.sign(value)

    def body(message: ParamsPublished) -> bytes:
        return message.model_dump_json().encode()

    hostile: dict[str, list[Sent]] = {
        "unsigned": [(body(version(3)), None),
                     (body(version(999)), None),  # would outrank everything
                     (b"\xff\xfe not even utf-8", None)],
        "unknown_key": [(v4, theirs.sign(v4))],
        "bad_signature": [
            (valid.replace(b'"discovery_threshold":0.75', b'"discovery_threshold":0.45'),
             ours.sign(valid)),  # a signed message, edited
            (v4, Signature(theirs.sign(v4).value, ours.key_id)),  # another key, our id
            (valid, Signature("not base64!", ours.key_id)),
        ],
        "stale": [(v1.value, v1.signature)],  # the learner's own v1, replayed after v2
        "out_of_bounds": [  # absurd, yet signed with the real key (a learner bug)
            signed(body(version(5, position_size_limit_pct=50.0))),
            signed(body(version(6, sell_threshold=0.45, buy_threshold=0.4))),
        ],
        "expired": [signed(body(version(7, issued=datetime.now(UTC) - timedelta(hours=2))))],
        "invalid": [
            signed(b"\xff\xfe not even utf-8"),
            signed(b'{"message_type": "params_published", "version": "two"}'),
            signed(valid.replace(b'"version":9', b'"version":0')),
            signed(valid.replace(b'"discovery_threshold":0.75', b'"discovery_threshold":NaN')),
            signed(valid.replace(b'"volume_momentum":0.25', b'"volume_momentum":2.25')),
            signed(b"[" * 5000 + b"]" * 5000),
            signed(b'{"name": "' + b"x" * 2_000_000 + b'"}'),
            (None, None),  # a tombstone
        ],
    }
    before = {reason: rejected(reason) for reason in hostile}
    for payloads in hostile.values():
        asyncio.run(_send(keyed, payloads))
    reader = ParamsReader.from_settings(factories.reading(keyed)).start()
    total = sum(len(p) for p in hostile.values())
    try:
        assert reader.wait_for(lambda r: sum(r.rejections.values()) >= total, 60), \
            reader.status()
        held = reader.get()
        # the learner goes on: its next version is taken, whatever a stranger claimed
        asyncio.run(publish_params(keyed, version(3, discovery_threshold=0.74)))
        assert reader.wait_for(lambda r: r.get().version == 3, 30), reader.status()
        after = reader.get()
    finally:
        reader.close()
    counted = {reason: rejected(reason) - before[reason] for reason in hostile}
    tally.sent, tally.stored, tally.rejected = total + 3, 3, sum(reader.rejections.values())
    tally.note = f"rejections by reason {reader.rejections}"
    assert (held.source, held.version, held.params.discovery_threshold) == ("published", 2, 0.72)
    assert (after.version, after.params.discovery_threshold) == (3, 0.74)
    assert reader.rejections == {reason: len(p) for reason, p in hostile.items()}
    assert counted == {reason: float(len(p)) for reason, p in hostile.items()}


async def _send(settings, payloads: list[Sent]) -> None:  # type: ignore[no-untyped-def]
    from aiokafka import AIOKafkaProducer

    from amc_learning.streams.kafka import producer_options

    producer = AIOKafkaProducer(**{**producer_options(settings), "max_request_size": 4_000_000})
    await producer.start()
    try:
        for value, signature in payloads:
            await producer.send_and_wait(settings.topic_prefix + "learning.params.v1", value,
                                         key=message_key("default", "live"),
                                         headers=signature.headers() if signature else None)
    finally:
        await producer.stop()
