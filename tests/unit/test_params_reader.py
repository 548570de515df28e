"""The reader's validation path and canary arms, without a broker (the same code runs on one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from amc_learning.schemas.params import FALLBACK_PARAMS, ParamsPublished
from amc_learning.schemas.signing import Signature, Signer, Verifier, new_private_key
from amc_learning.streams.metrics import COLLECTOR
from amc_learning.streams.params import ParamsReader, canary_bucket

SIGNER, OTHER = Signer(new_private_key()), Signer(new_private_key())
NOW = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def message(version: int, mode: str = "live", signer: Signer | None = SIGNER,
            **params) -> tuple[bytes, Signature | None]:
    body = FALLBACK_PARAMS.model_copy(update={"discovery_threshold": 0.7, **params})
    msg = ParamsPublished(
        name="default", version=version, issued_at=NOW, valid_until=NOW + timedelta(days=2),
        mode=mode, canary_pct=25.0 if mode == "canary" else 0.0, regime="bull_low_vol",
        params=body, provenance={"test": True},
    )
    value = msg.model_dump_json().encode()
    return value, signer.sign(value) if signer else None


def signed(value: bytes) -> tuple[bytes, Signature]:
    return value, SIGNER.sign(value)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def reader(clock):
    return ParamsReader(None, "learning.params.v1", Verifier([SIGNER.public_key]), clock=clock)


def test_nothing_valid_means_the_conservative_fallback_and_why(reader):
    view = reader.get()
    assert view.source == "fallback" and view.params == FALLBACK_PARAMS
    assert view.params.discovery_threshold == 0.75 and view.params.position_size_limit_pct == 2.0
    assert view.params.confidence_multiplier == 0.8
    assert "no live params" in view.reason


def test_a_signed_version_is_used_and_bad_ones_leave_it_in_place(reader):
    assert reader.offer(*message(1)) is None
    value, signature = message(2)
    tampered = value.replace(b'"discovery_threshold":0.7', b'"discovery_threshold":0.5')
    posing = Signature(OTHER.sign(value).value, SIGNER.key_id)  # another key, our key id
    bad = {
        "bad_signature": [(tampered, signature), (value, posing)],
        "unknown_key": [message(3, signer=OTHER)],
        "unsigned": [message(4, signer=None)],
        "out_of_bounds": [message(5, discovery_threshold=0.99), message(6, sell_threshold=0.7)],
        "stale": [message(1, discovery_threshold=0.71)],  # same number, other content
        "invalid": [signed(b"{not json"), (None, None),
                    signed(message(7)[0].replace(b'"version":7', b'"version":-7'))],
    }
    for kind, payloads in bad.items():
        for payload in payloads:
            reason = reader.offer(*payload)
            assert reason is not None and reason.startswith(kind), (kind, reason)
    assert reader.offer(*message(1)) is None  # the held message again (a republish): no news
    view = reader.get()
    assert (view.source, view.version, view.params.discovery_threshold) == ("published", 1, 0.7)
    assert reader.status()["rejections"] == {"bad_signature": 2, "unknown_key": 1, "unsigned": 1,
                                             "out_of_bounds": 2, "stale": 1, "invalid": 3}


def test_rejections_are_explained_when_nothing_valid_is_held(reader):
    reader.offer(*message(1, signer=OTHER))
    view = reader.get()
    assert view.source == "fallback" and "unknown_key" in view.reason


def test_expired_params_fall_back_with_the_reason(reader, clock):
    reader.offer(*message(1))
    clock.now = NOW + timedelta(days=3)
    view = reader.get()
    assert view.source == "fallback" and "expired" in view.reason
    assert reader.offer(*message(2)).startswith("expired")


def test_without_a_key_nothing_is_trusted(clock):
    reader = ParamsReader(None, "t", Verifier([]), clock=clock)
    assert reader.offer(*message(1)).startswith("unverifiable")
    assert reader.get().source == "fallback"


def test_canary_arms_are_deterministic_and_shadow_is_never_traded(reader):
    reader.offer(*message(1))
    reader.offer(*message(2, mode="shadow", discovery_threshold=0.6))
    assert reader.get(decision_key="dec-1").version == 1  # shadow: recorded, not used
    reader.offer(*message(3, mode="canary", discovery_threshold=0.65))
    keys = [f"dec-{i}" for i in range(4000)]
    arms = [reader.get(decision_key=k).version for k in keys]
    share = arms.count(3) / len(arms)
    assert 0.22 < share < 0.28  # canary_pct 25
    assert arms == [reader.get(decision_key=k).version for k in keys]  # same key, same arm
    assert all((canary_bucket(k) < 25) == (v == 3) for k, v in zip(keys, arms, strict=True))
    assert reader.get().version == 1  # no decision key: live
    reader.offer(*message(4))  # a new live version ends the canary
    assert {reader.get(decision_key=k).version for k in keys[:200]} == {4}


def _samples(name):
    text = generate_latest(REGISTRY).decode()
    return [s for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name]


def test_the_reader_shows_its_version_age_and_fallback_in_the_default_registry(reader, clock):
    def mine(name):
        return {s.labels.get("name"): s.value for s in _samples(name)
                if s.labels["reader"] == number}

    number = next(n for n, r in COLLECTOR.readers.items() if r is reader)
    assert mine("learning_params_fallback") == {"default": 1.0}
    assert mine("learning_params_version") == {"default": 0.0}
    assert reader.offer(*message(3)) is None
    assert mine("learning_params_fallback") == {"default": 0.0}
    assert mine("learning_params_version") == {"default": 3.0}
    [age] = mine("learning_params_age_seconds").values()
    assert age >= 0
