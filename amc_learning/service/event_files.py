"""`import events`: contract events a producer dumped, as JSON lines or a JSON array,
each validated as the HTTP API validates a body."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from amc_learning.adapters.mapped import Mapped
from amc_learning.adapters.native import Unmappable
from amc_learning.schemas.registry import EVENT_ADAPTER
from amc_learning.service.import_quality import model_quality
from amc_learning.service.imports import Imported


def read_events(paths: list[Path], producer: str | None = None) -> Imported:
    """`import events`: contract events (v1 or v2) as a JSON array or JSON lines, each
    validated as the API validates a body (strict JSON, every field error said), under
    `producer` when given (else each event's own). Every line or element is an event or
    a rejection naming its field."""
    out = Imported()
    for path in paths:
        mapped = Mapped()
        for where, item in _elements(path):
            mapped.read += 1
            if isinstance(item, _NotJson):
                mapped.reject(where, f"not JSON ({item.why})"[:200])
                continue
            if not isinstance(item, dict):
                mapped.reject(where, "an event is a JSON object")
                continue
            body = {**item, "producer": producer} if producer else item
            try:
                mapped.events.append(EVENT_ADAPTER.validate_json(json.dumps(body)))
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                mapped.reject(where, f"{'.'.join(map(str, first['loc'])) or 'event'}: "
                                     f"{first['msg']}")
        out.add(path.name, mapped, shapes=dict(Counter(e.event_type for e in mapped.events)))
    out.quality.extend(model_quality(out.events))
    return out


def _elements(path: Path) -> list[tuple[str, Any]]:
    """(where, value) of each element of a JSON array, or each line of JSON lines."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip()[:1] == "[":
        try:
            return [(f"element {i}", item) for i, item in enumerate(json.loads(text), 1)]
        except ValueError as exc:
            raise Unmappable(f"{path.name}: not a JSON array ({exc})") from None
    found: list[tuple[str, Any]] = []
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                found.append((f"line {i}", json.loads(line)))
            except ValueError as exc:
                found.append((f"line {i}", _NotJson(str(exc))))
    return found


@dataclass(frozen=True)
class _NotJson:
    why: str
