"""The benchmark's events: realistic discovery, thesis and trade payloads, as many as asked.

Templates come from the simulated market (so field contents, sizes and mix are those of
the services), then each copy gets fresh idempotency keys so that every event is a new
row. The mix is fixed: 55 % candidates, 30 % thesis decisions, 15 % fills, about 750 bytes
per event on average.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cache

from amc_learning.schemas.registry import TOPIC_OF_EVENT
from amc_learning.simulator.world import SimConfig, simulate

#: One round of the mix: 11 candidates, 6 thesis decisions, 3 fills.
_MIX = ("candidate_scored",) * 11 + ("thesis_decided",) * 6 + ("trade_filled",) * 3
_NAMESPACE = uuid.UUID("6d1b8f7e-3c55-4c41-9d1e-2a7f5a0c9b11")
#: The identifiers made unique per copy, by event type.
_KEYS = {"candidate_scored": ("run_id",), "thesis_decided": ("decision_id",),
         "trade_filled": ("fill_id", "decision_id")}


@dataclass(frozen=True)
class Record:
    topic: str  # base topic name (no prefix)
    key: bytes
    value: bytes


@cache
def _templates() -> dict[str, list[dict[str, object]]]:
    by_kind: dict[str, list[dict[str, object]]] = {kind: [] for kind in set(_MIX)}
    for day in simulate(SimConfig(seed=11, symbols=60, days=40)):
        for e in day:
            if e.event_type in by_kind:
                by_kind[e.event_type].append(e.model_dump(mode="json"))
    return by_kind


def records(n: int) -> list[Record]:
    """`n` distinct, valid events, serialised as the publisher would send them."""
    templates = _templates()
    out = []
    seen = dict.fromkeys(templates, 0)
    for i in range(n):
        kind = _MIX[i % len(_MIX)]
        event = dict(templates[kind][seen[kind] % len(templates[kind])])
        copy = seen[kind] // len(templates[kind])
        seen[kind] += 1
        event["event_id"] = str(uuid.uuid5(_NAMESPACE, str(i)))
        for key in _KEYS[str(event["event_type"])]:
            if event.get(key):
                event[key] = f"{event[key]}-b{copy}"
        out.append(Record(TOPIC_OF_EVENT[str(event["event_type"])],
                          str(event["symbol"]).encode(),
                          json.dumps(event, separators=(",", ":")).encode()))
    return out
