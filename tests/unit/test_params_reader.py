"""The reader's validation path and canary arms, without a broker (the same code runs on one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from amc_learning.schemas.models import ComponentModel, TieredModel, shipped
from amc_learning.schemas.params import (
    FALLBACK_PARAMS,
    ComponentParams,
    ParamsPublished,
    TieredParams,
    param_set,
)
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


# -- one param set per scoring model ---------------------------------------------------------

SCANNER = next(m for m in shipped() if m.name == "amc-scanner" and m.version == "3.3.1")
assert isinstance(SCANNER, TieredModel)
#: another version of the same scanner, declared beside it (its gap tier is worth less)
OLDER = SCANNER.model_copy(update={"version": "3.2.0"})


def table_message(version: int, model: TieredModel = SCANNER, name: str | None = None,
                  **points: int) -> tuple[bytes, Signature]:
    table = TieredParams.declared(model)
    tables = {f: dict(t) for f, t in table.tables.items()}
    for key, value in points.items():
        factor, tier = key.split("__")
        tables[factor][tier] = value
    msg = ParamsPublished(
        name=name or param_set(f"{model.name} {model.version}"), version=version,
        issued_at=NOW, valid_until=NOW + timedelta(days=2), mode="live", regime="unknown",
        params=table.model_copy(update={"tables": tables}))
    return signed(msg.model_dump_json().encode())


@pytest.fixture
def tables(clock):
    return ParamsReader(None, "learning.params.v1", Verifier([SIGNER.public_key]), clock=clock,
                        models=(SCANNER, OLDER))


def test_a_model_reads_its_own_table_and_never_another_models_params(tables):
    assert tables.offer(*table_message(1, gap__huge=-15)) is None
    assert tables.offer(*message(1)) is None  # the engine's own set, beside it
    view = tables.table(SCANNER)
    assert view.source == "published" and view.version == 1
    assert view.params.model.version == "3.3.1" and view.params.tables["gap"]["huge"] == -15
    # the older version has no live table: it gets its own declared table, not 3.3.1's
    older = tables.table(OLDER)
    assert older.source == "fallback" and older.params == TieredParams.declared(OLDER)
    assert older.params.model.version == "3.2.0"
    # the engine's own set reads the six weights, never a table
    own = tables.get()
    assert own.source == "published" and own.params.discovery_threshold == 0.7
    assert tables.get("amc-scanner:3.3.1").source == "fallback"
    assert "scoring model's params" in tables.get("amc-scanner:3.3.1").reason


def test_a_table_under_another_models_set_or_of_an_unknown_model_is_refused(tables, clock):
    # 3.3.1's table published under 3.2.0's set: refused, 3.2.0 keeps its declared table
    reason = tables.offer(*table_message(1, name="amc-scanner:3.2.0"))
    assert reason is not None and "not amc-scanner:3.3.1" in reason
    assert tables.table(OLDER).source == "fallback"
    unknown = SCANNER.model_copy(update={"version": "9.9.9"})
    reason = tables.offer(*table_message(1, model=unknown))
    assert reason is not None and "no declaration of amc-scanner 9.9.9" in reason
    assert tables.table(unknown).params == TieredParams.declared(unknown)
    # a tier beyond the scale's span, or a tier the model does not declare
    assert "beyond the scale" in tables.offer(*table_message(2, gap__huge=999))
    assert "declares no tier" in tables.offer(*table_message(3, gap__gigantic=5))
    assert tables.table(SCANNER).source == "fallback"


STACK = next(m for m in shipped() if (m.name, m.version) == ("alphastack", "4.1"))
assert isinstance(STACK, ComponentModel)


def stack_message(version: int, threshold: float = 72.0, **weights: float
                  ) -> tuple[bytes, Signature]:
    params = ComponentParams.declared(STACK)
    changed = {**params.weights, **weights}
    if weights:  # the rest keeps the simplex
        first = next(c for c in changed if c not in weights)
        changed[first] += 1.0 - sum(changed.values())
    msg = ParamsPublished(
        name="alphastack:4.1", version=version, issued_at=NOW,
        valid_until=NOW + timedelta(days=2), mode="live", regime="unknown",
        params=params.model_copy(update={"weights": changed, "threshold": threshold}))
    return signed(msg.model_dump_json().encode())


def test_a_component_model_reads_its_weights_and_never_a_table(clock):
    reader = ParamsReader(None, "learning.params.v1", Verifier([SIGNER.public_key]),
                          clock=clock)  # the shipped declarations
    assert reader.table(STACK).params == ComponentParams.declared(STACK)
    assert "above 0.6" in reader.offer(*stack_message(1, squeeze=0.7, catalyst=0.0))
    assert "outside [0, 100]" in reader.offer(*stack_message(1, threshold=120.0))
    assert reader.offer(*stack_message(1, volume_momentum=0.35, technical=0.02)) is None
    view = reader.table(STACK)
    assert (view.source, view.params.threshold) == ("published", 72.0)
    assert view.params.weights["volume_momentum"] == 0.35
    # the scanner's table and the engine's own set are no part of it, nor it of them
    assert reader.table(SCANNER).params == TieredParams.declared(SCANNER)
    assert reader.get("alphastack:4.1").source == "fallback"
