"""The event contract accepts what producers should send and refuses everything else."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from amc_learning.schemas.params import AdaptiveParams
from amc_learning.schemas.registry import (
    EVENT_MODELS,
    MESSAGE_MODELS,
    decode_event,
    export_json_schemas,
)
from tests import factories


@pytest.mark.parametrize("make", [factories.thesis, factories.candidate, factories.fill,
                                  factories.bar])
def test_every_event_survives_a_json_round_trip(make):
    event = make()
    assert decode_event(event.model_dump_json().encode()) == event


def test_symbols_may_be_index_or_class_shares():
    assert factories.bar(symbol="^VIX").symbol == "^VIX"
    assert factories.thesis(symbol="BRK.B").symbol == "BRK.B"


@pytest.mark.parametrize("field,value", [
    ("symbol", "amc"), ("symbol", "TOO-LONG-TICKER"), ("symbol", ""),
    ("confidence_score", 1.01), ("confidence_score", -0.1), ("confidence_score", math.nan),
    ("entry_price", math.inf), ("entry_price", 0.0), ("decision_type", "STRONG_BUY"),
    ("decision_source", "oracle"), ("position_size_pct", 101.0), ("unexpected", 1),
])
def test_thesis_rejects_invalid_fields(field, value):
    with pytest.raises(ValidationError):
        factories.thesis(**{field: value})


def test_strings_are_not_coerced_into_numbers():
    raw = json.loads(factories.thesis().model_dump_json())
    raw["confidence_score"] = "0.7"
    with pytest.raises(ValidationError, match="float"):
        decode_event(json.dumps(raw).encode())


def test_times_must_be_aware_and_plausible():
    with pytest.raises(ValidationError, match="timezone"):
        factories.thesis(occurred_at=datetime(2024, 3, 1, 14, 35))
    with pytest.raises(ValidationError, match="future"):
        factories.thesis(occurred_at=datetime.now(UTC) + timedelta(days=3))
    with pytest.raises(ValidationError, match="before 1990"):
        factories.thesis(occurred_at=datetime(1970, 1, 1, tzinfo=UTC))


def test_times_are_normalised_to_utc():
    local = datetime(2024, 3, 1, 9, 35, tzinfo=UTC).astimezone().replace()
    assert factories.thesis(occurred_at=local).occurred_at.tzinfo == UTC


def test_hold_and_ignore_cannot_size_a_position():
    with pytest.raises(ValidationError, match="cannot size"):
        factories.thesis(decision_type="HOLD", position_size_pct=1.0)
    assert factories.thesis(decision_type="IGNORE", position_size_pct=0.0).decision_type == "IGNORE"


def test_exits_need_a_reason_and_entries_must_not_have_one():
    with pytest.raises(ValidationError, match="exit_reason"):
        factories.fill(fill_type="EXIT")
    with pytest.raises(ValidationError, match="exit_reason"):
        factories.fill(exit_reason="stop_loss")
    assert factories.fill(fill_type="EXIT", exit_reason="time").exit_reason == "time"


def test_bars_must_be_internally_consistent():
    with pytest.raises(ValidationError, match="low <= open"):
        factories.bar(high=5.1, close=5.4)


def test_feature_snapshots_are_flat_finite_named_numbers():
    with pytest.raises(ValidationError):
        factories.thesis(discovery_features={"Bad Name": 1.0})
    with pytest.raises(ValidationError):
        factories.thesis(discovery_features={"rsi": math.inf})
    with pytest.raises(ValidationError):
        factories.thesis(discovery_features={"nested": {"x": 1.0}})


def test_adaptive_params_weights_sum_to_one_and_calibration_is_monotone():
    weights = {k: 1 / 6 for k in factories.SCORES}
    base = {"discovery_threshold": 0.75, "scoring_weights": weights, "buy_threshold": 0.6,
            "sell_threshold": 0.4, "confidence_multiplier": 0.8, "position_size_limit_pct": 2.0}
    assert AdaptiveParams.model_validate(base).discovery_threshold == 0.75
    with pytest.raises(ValidationError, match="sum to 1"):
        AdaptiveParams.model_validate({**base, "scoring_weights": {**weights, "squeeze": 0.5}})
    knots = [{"raw": 0.2, "calibrated": 0.3}, {"raw": 0.6, "calibrated": 0.25}]
    with pytest.raises(ValidationError, match="monotone"):
        AdaptiveParams.model_validate({**base, "calibration": knots})


def test_schema_export_writes_one_json_schema_per_message(tmp_path: Path):
    paths = export_json_schemas(tmp_path)
    assert {p.name for p in paths} == {f"{name}.v1.json" for name in MESSAGE_MODELS}
    thesis = json.loads((tmp_path / "thesis_decided.v1.json").read_text())
    assert thesis["x-topic"] == "learning.thesis.v1"
    assert "confidence_score" in thesis["required"] or "confidence_score" in thesis["properties"]
    assert thesis["properties"]["confidence_score"]["maximum"] == 1.0
    assert set(EVENT_MODELS) <= set(MESSAGE_MODELS)
