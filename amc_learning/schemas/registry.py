"""Every event model by type and topic: decoding raw bytes and exporting JSON Schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter

from amc_learning.schemas import topics
from amc_learning.schemas.catalysts import CatalystObserved
from amc_learning.schemas.common import VersionRules
from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.dlq import DeadLetter
from amc_learning.schemas.outcomes import OutcomeUpdated
from amc_learning.schemas.params import InsightPublished, ParamsPublished
from amc_learning.schemas.prices import PriceBarClosed
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled

AnyEvent = Annotated[
    CandidateScored
    | ThesisDecided
    | TradeFilled
    | PriceBarClosed
    | CatalystObserved
    | OutcomeUpdated,
    Field(discriminator="event_type"),
]
EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

EVENT_MODELS: dict[str, type[BaseModel]] = {
    "candidate_scored": CandidateScored,
    "thesis_decided": ThesisDecided,
    "trade_filled": TradeFilled,
    "price_bar_closed": PriceBarClosed,
    "catalyst_observed": CatalystObserved,
    "outcome_updated": OutcomeUpdated,
}
TOPIC_OF_EVENT = {
    event_type: topic
    for topic, event_types in topics.EVENT_TYPES_BY_TOPIC.items()
    for event_type in event_types
}
MESSAGE_MODELS: dict[str, type[BaseModel]] = {
    **EVENT_MODELS,
    "params_published": ParamsPublished,
    "insight_published": InsightPublished,
    "dead_letter": DeadLetter,
}


def decode_event(raw: bytes) -> AnyEvent:
    """Parse and validate one event from JSON bytes (raises pydantic.ValidationError)."""
    return EVENT_ADAPTER.validate_json(raw)


def export_json_schemas(out_dir: Path) -> list[Path]:
    """Write the JSON Schemas: `<type>.v1.json` for every message, and `<type>.v2.json` for
    every event (contract v2, a superset: it accepts every v1 event). Return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in sorted(MESSAGE_MODELS.items()):
        schema = model.model_json_schema(mode="validation")
        versions = {1: v1_schema(schema, getattr(model, "VERSIONS", None))}
        if name in EVENT_MODELS:
            versions[2] = schema
        for version, body in versions.items():
            body = {**body, "$id": f"https://amc-trader.invalid/schemas/{name}.v{version}.json"}
            if topic := TOPIC_OF_EVENT.get(name):
                body["x-topic"] = topic
            path = out_dir / f"{name}.v{version}.json"
            path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
            written.append(path)
    return written


def v1_schema(schema: dict[str, Any], rules: VersionRules | None) -> dict[str, Any]:
    """The v1 JSON Schema of an event from its v2 superset: version 1 only, none of the
    v2 fields, the fields v1 requires required and not null, without the values v2 added."""
    schema = copy.deepcopy(schema)
    props = schema.get("properties", {})
    if "schema_version" in props:
        props["schema_version"] = {"const": 1, "default": 1, "title": "Schema Version",
                                   "type": "integer"}
    if rules is None:
        return schema
    for field in rules.v2_only:
        props.pop(field, None)
    required = list(schema.get("required", []))
    for field in rules.v1_required:
        prop = props[field]
        kept = [s for s in prop.pop("anyOf", []) if s.get("type") != "null"]
        if kept:
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
        prop.pop("default", None)
        if field not in required:
            required.append(field)
    schema["required"] = required
    for field, values in rules.v2_values:
        _without_values(props[field], set(values))
    return schema


def _without_values(prop: dict[str, Any], values: set[object]) -> None:
    if "enum" in prop:
        prop["enum"] = [v for v in prop["enum"] if v not in values]
    for option in prop.get("anyOf", []):
        _without_values(option, values)
