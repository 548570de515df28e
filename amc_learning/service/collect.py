"""Collect: what the HTTP API does with a request body once it is let in — read a
producer's own shapes through the adapters, validate every event as the topics would,
under the producer the token names, and send them only when every one is valid.

`collect` is the use case; `send` is the broker's (the API's `Broker.send`: every event
acknowledged, or it raises). Transport concerns — tokens, limits, status codes — stay in
`api/`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from amc_learning.adapters import alpaca, amc_backend, amc_trader
from amc_learning.adapters.mapped import Mapped, each
from amc_learning.schemas.registry import EVENT_ADAPTER, TOPIC_OF_EVENT

#: What each collect route takes.
ROUTES = {"discovery-data": "candidate_scored", "thesis-decision": "thesis_decided",
          "trade-outcome": "trade_filled"}

#: Native shapes a collect route also takes (`?format=`): the route, and the adapter.
FORMATS: dict[str, tuple[str, Callable[[list[Any]], Mapped]]] = {
    "alphastack-4.1": ("discovery-data", lambda records: amc_backend.alphastack(
        records, written_at=datetime.now(UTC))),
    "amc-scan-row": ("discovery-data", amc_trader.scan_history),
    "amc-learning-decision": ("thesis-decision", amc_backend.learning_rows),
    "alpaca-trade-update": ("trade-outcome", lambda records: each(
        records, "Alpaca trade update", lambda i, r, _: alpaca.trade_update(r))),
    "alpaca-order": ("trade-outcome", lambda records: each(
        records, "Alpaca order", lambda i, r, _: alpaca.order(r))),
}

#: (base topic, key, value) records to the broker, all acknowledged or it raises.
Send = Callable[[list[tuple[str, bytes, bytes]]], Awaitable[None]]


class NotAcknowledged(Exception):
    """The broker did not acknowledge every event: nothing is known to be stored; the
    caller retries (events are idempotent by event_id)."""


@dataclass
class Collected:
    """The events sent (`events`), or, when any was invalid, every field error and
    nothing sent (`errors`: `loc` starts with the event's index in a batch)."""

    events: list[Any] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def validated(kind: str, data: Any, producer: str, format: str | None = None) -> Collected:
    """The events of a body (one event or a list) for route `kind`, or its errors."""
    items = data if isinstance(data, list) else [data]
    events: list[Any] = []
    errors: list[dict[str, Any]] = []
    if format is not None:  # AMC-Trader's or Alpaca's own shapes, through the adapters
        if not_records := [i for i, item in enumerate(items) if not isinstance(item, dict)]:
            return Collected(errors=[{"loc": [i] if isinstance(data, list) else [],
                                      "msg": "a record is a JSON object", "type": "dict_type"}
                                     for i in not_records])
        mapped = FORMATS[format][1](items)
        errors = [{"loc": [int(where.rsplit(" ", 1)[1]) - 1] if isinstance(data, list)
                   else [], "msg": why} for where, why in mapped.rejected]
        items = [] if errors else [json.loads(e.model_dump_json()) for e in mapped.events]
        data = items  # what the adapters made: validated as any event is, below
    for i, item in enumerate(items):
        where: list[Any] = [i] if isinstance(data, list) else []
        if not isinstance(item, dict):
            errors.append({"loc": where, "msg": "an event is a JSON object"})
            continue
        # strict JSON validation, as on the topics; the token names the producer, and the
        # route the event type where the event does not
        named = item if format is not None else {"event_type": ROUTES[kind], **item}
        try:
            event = EVENT_ADAPTER.validate_json(json.dumps({**named, "producer": producer}))
        except ValidationError as exc:
            errors.extend({"loc": where + list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                          for e in exc.errors(include_url=False, include_input=False))
            continue
        if format is None and event.event_type != ROUTES[kind]:
            errors.append({"loc": [*where, "event_type"],
                           "msg": f"{event.event_type!r} is not collected here: "
                                  f"/learning/collect/{kind} takes {ROUTES[kind]!r}"})
            continue
        events.append(event)
    return Collected(errors=errors) if errors else Collected(events=events)


async def collect(send: Send, kind: str, data: Any, producer: str,
                  format: str | None = None) -> Collected:
    """Validate (`validated`), then send every event, or none when any is invalid. Raises
    NotAcknowledged when the broker did not take them all."""
    collected = validated(kind, data, producer, format)
    if collected.errors:
        return collected
    try:
        await send([(TOPIC_OF_EVENT[e.event_type], e.key.encode(),
                     e.model_dump_json().encode()) for e in collected.events])
    except Exception as exc:
        raise NotAcknowledged(type(exc).__name__) from exc
    return collected
