"""The event contract accepts what producers should send and refuses everything else."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.params import AdaptiveParams
from amc_learning.schemas.registry import (
    EVENT_MODELS,
    MESSAGE_MODELS,
    decode_event,
    export_json_schemas,
)
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled
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


def test_schema_export_writes_v1_of_every_message_and_v2_of_every_event(tmp_path: Path):
    paths = export_json_schemas(tmp_path)
    assert {p.name for p in paths} == {f"{name}.v1.json" for name in MESSAGE_MODELS} | {
        f"{name}.v2.json" for name in EVENT_MODELS}
    thesis = json.loads((tmp_path / "thesis_decided.v1.json").read_text())
    assert thesis["x-topic"] == "learning.thesis.v1"
    assert "confidence_score" in thesis["required"] or "confidence_score" in thesis["properties"]
    assert thesis["properties"]["confidence_score"]["maximum"] == 1.0
    assert set(EVENT_MODELS) <= set(MESSAGE_MODELS)


# -- contract v2 --------------------------------------------------------------------------


def _schemas(tmp_path: Path) -> dict[tuple[str, int], dict]:
    export_json_schemas(tmp_path)
    return {(p.name.split(".")[0], int(p.name.split(".v")[1][0])): json.loads(p.read_text())
            for p in tmp_path.glob("*.json")}


def test_every_v1_event_is_valid_under_both_json_schemas_and_no_v2_event_under_v1(tmp_path):
    schemas = _schemas(tmp_path)
    v1_events = [f() for f in (factories.thesis, factories.candidate, factories.fill,
                               factories.bar)]
    for event in v1_events:
        body = json.loads(event.model_dump_json())
        for version in (1, 2):
            jsonschema.validate(body, schemas[(event.event_type, version)])
    v2 = json.loads(_v2_candidate().model_dump_json())
    jsonschema.validate(v2, schemas[("candidate_scored", 2)])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(v2, schemas[("candidate_scored", 1)])


def test_a_v1_event_is_written_exactly_as_v1_wrote_it():
    for event in (factories.thesis(), factories.candidate(), factories.fill()):
        body = json.loads(event.model_dump_json())
        assert body["schema_version"] == 1
        assert not {"scoring_model", "raw_score", "components", "tiers", "flags", "provenance",
                    "label", "targets", "order_id", "mode"} & set(body), event.event_type


def _v2_candidate(**changes) -> CandidateScored:
    body = json.loads(factories.candidate().model_dump_json())
    for field in ("scores", "threshold"):
        body.pop(field)
    body.update(schema_version=2, composite_score=(125 + 75) / 380,
                raw_score={"value": 125, "low": -75, "high": 305},
                scoring_model={"name": "amc-scanner", "version": "3.3.1"},
                tiers={"float": {"tier": "ultra_low", "points": 50}}, flags=["chase_risk"],
                attributes={"sector": "energy"}, provenance={"composite_score": "raw_score"})
    body.update(changes)
    return CandidateScored.model_validate_json(json.dumps(body))


def test_a_v2_candidate_keeps_its_raw_score_model_and_tiers_and_needs_no_components():
    candidate = _v2_candidate()
    assert candidate.scores is None and candidate.threshold is None
    assert candidate.raw_score.value == 125 and candidate.composite_score == pytest.approx(
        candidate.raw_score.normalised)
    assert decode_event(candidate.model_dump_json().encode()) == candidate
    with pytest.raises(ValidationError, match="is not raw_score on"):
        _v2_candidate(composite_score=0.9)
    with pytest.raises(ValidationError, match="low must be below high"):
        _v2_candidate(raw_score={"value": 1, "low": 5, "high": 5})


def test_version_1_stays_what_it_was():
    with pytest.raises(ValidationError, match="threshold, scores: required in schema_version 1"):
        _v2_candidate(schema_version=1, raw_score=None, scoring_model=None, tiers={},
                      flags=[], attributes={}, provenance={})
    with pytest.raises(ValidationError, match="raw_score, tiers: needs schema_version 2"):
        CandidateScored.model_validate_json(json.dumps({
            **json.loads(factories.candidate().model_dump_json()), "composite_score": 200 / 380,
            "raw_score": {"value": 125, "low": -75, "high": 305},
            "tiers": {"float": {"tier": "low"}}}))
    fill = json.loads(factories.fill().model_dump_json())
    with pytest.raises(ValidationError, match="mode='paper': needs schema_version 2"):
        TradeFilled.model_validate_json(json.dumps({**fill, "mode": "paper"}))
    paper = TradeFilled.model_validate_json(json.dumps({**fill, "mode": "paper",
                                                        "schema_version": 2}))
    assert paper.mode == "paper"


def test_a_v2_decision_keeps_the_producers_label_and_may_lack_a_confidence():
    body = json.loads(factories.thesis().model_dump_json())
    for field in ("confidence_score", "thesis", "market_conditions"):
        body.pop(field)
    body.update(schema_version=2, decision_type="SELL", label="TRIM_50", size_change_pct=-50.0,
                targets=[6.91, 8.2], horizon_text="2-4 weeks", position_size_pct=0.0)
    decision = ThesisDecided.model_validate_json(json.dumps(body))
    assert (decision.label, decision.size_change_pct, decision.confidence_score) == (
        "TRIM_50", -50.0, None)
    with pytest.raises(ValidationError, match="confidence_score, thesis, market_conditions: "
                                              "required in schema_version 1"):
        ThesisDecided.model_validate_json(json.dumps({**body, "schema_version": 1,
                                                      "label": None, "size_change_pct": None,
                                                      "targets": [], "horizon_text": None}))
