"""Every event model by type and topic: decoding raw bytes and exporting JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, TypeAdapter

from amc_learning.schemas import topics
from amc_learning.schemas.catalysts import CatalystObserved
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
    """Write one JSON Schema file per message type; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in sorted(MESSAGE_MODELS.items()):
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"https://amc-trader.invalid/schemas/{name}.v1.json"
        topic = TOPIC_OF_EVENT.get(name)
        if topic:
            schema["x-topic"] = topic
        path = out_dir / f"{name}.v1.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
