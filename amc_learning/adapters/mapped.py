"""What every adapter returns, and the one way it maps a list of records.

A `Mapped` holds the events a producer's records became, one rejection (where, reason)
for every record that could not be mapped, and a count of what was inferred or defaulted
(each event also says so in its `provenance`): every record read is an event or a
rejection. Ids are a function of the source record (`event_id`), so a second import of
the same records stores nothing new.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from amc_learning.adapters.native import Unmappable, number
from amc_learning.schemas.common import Event

_NAMESPACE = uuid.UUID("3c0a2d54-8b1e-4f7a-9d6e-2a5f1c7e9b40")
R = TypeVar("R")


@dataclass
class Mapped:
    """What some records became: events, rejections (where, reason), inferred (field -> n)."""

    read: int = 0
    events: list[Event] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    inferred: Counter[str] = field(default_factory=Counter)

    def reject(self, where: str, reason: str) -> None:
        self.rejected.append((where, reason))

    def extend(self, other: Mapped) -> Mapped:
        self.read += other.read
        self.events.extend(other.events)
        self.rejected.extend(other.rejected)
        self.inferred.update(other.inferred)
        return self


def event_id(*parts: object) -> uuid.UUID:
    """The id of the event a source record becomes: the same record, the same id."""
    return uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts))


def reason(exc: Exception) -> str:
    """A rejection's reason: the first field a validation error names, and what it got."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        given = first.get("input")
        shown = f" (got {given!r})"[:60] if isinstance(given, str | int | float) else ""
        return f"{where}: {first['msg']}{shown}"
    if isinstance(exc, KeyError):
        return f"no field {exc}"
    return str(exc)


def each(records: Sequence[R] | Iterable[R], where: str,
         one: Callable[[int, R, Counter[str]], Event | Sequence[Event]]) -> Mapped:
    """Map every record with `one(index, record, inferred)`; a record it cannot map (an
    `Unmappable`, a validation error, a missing field) is one rejection at
    `"{where} {index + 1}"` with its reason, never a crash."""
    out = Mapped()
    for i, record in enumerate(records):
        out.read += 1
        try:
            made = one(i, record, out.inferred)
        except (Unmappable, ValidationError, KeyError) as exc:
            out.reject(f"{where} {i + 1}", reason(exc))
            continue
        out.events.extend([made] if isinstance(made, Event) else made)
    return out


def required(value: Any, name: str) -> Any:
    if value is None:
        raise Unmappable(f"{name}: missing")
    return value


def ranks(records: Sequence[object], key: str) -> dict[int, int]:
    """Each record's rank (1 = best) by its number at `key`; one without a number last."""
    def score(i: int) -> float:
        record = records[i]
        try:
            value = number(record.get(key)) if isinstance(record, Mapping) else None
        except Unmappable:
            value = None
        return float("-inf") if value is None else value
    order = sorted(range(len(records)), key=lambda i: -score(i))
    return {i: r for r, i in enumerate(order, start=1)}


def mapping(value: object) -> Mapping[str, Any]:
    """`value` if it is an object, else an empty one (a field that should hold one)."""
    return value if isinstance(value, Mapping) else {}


def numbers(record: Mapping[str, Any], names: Iterable[str]) -> dict[str, float]:
    """The fields of `record` named in `names` that hold a number (`native.number`), as
    features: a field missing or empty is left out, never a fabricated 0."""
    return {name: value for name in names if (value := number(record.get(name))) is not None}
