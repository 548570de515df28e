"""Where a file keeps its records, found from what it contains (never from its name).

A producer writes records at whatever depth suits it; `containers` finds them:

* a CSV: every data row, keyed by the header (`csv_container`; a row of another length
  is a `Misfit`, counted);
* a JSON list: every element;
* a JSON object wrapping lists of records (`{"scan_date": …, "candidates": […]}`): every
  element of each list that is empty or holds objects, each object inheriting the
  wrapper's plain fields (date, time, version) that it does not carry itself;
* a JSON object keyed by symbol (`{"CFLT": {…}, "IPCX": {…}}`): every value, with its key
  as `symbol`;
* any other JSON object: itself, one record.

Every element found is a record read, so an import can account for each one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: a key that looks like a ticker: what a dict keyed by symbol has for keys
_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-^]{0,9}$")
#: plain fields a wrapper's records inherit (scalars: a date, a time, a version)
_PLAIN = (str, int, float, bool)


@dataclass(frozen=True)
class Misfit:
    """A CSV row with another number of fields than its header has (a second writer
    appending to the same file): counted, never guessed at."""

    fields: int
    header: int


@dataclass(frozen=True)
class Container:
    """The records of one place in a file, and how they were found."""

    #: "csv" | "list" | "wrapper" | "keyed" | "object"
    kind: str
    #: where, for a reader: `the header's 31 columns`, `key "candidates"`, `the top level`
    where: str
    records: list[Any] = field(default_factory=list)
    #: the wrapper's plain fields its records inherit
    inherited: dict[str, Any] = field(default_factory=dict)
    #: a keyed dict's values that are not objects (a cache of numbers by symbol)
    not_records: str | None = None


def csv_container(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Container:
    """A CSV's data rows, each keyed by the header (every value a string), or a `Misfit`
    where its number of fields is not the header's."""
    return Container("csv", f"a header of {len(header)} columns",
                     [dict(zip(header, r, strict=True)) if len(r) == len(header)
                      else Misfit(len(r), len(header)) for r in rows])


def containers(value: Any) -> list[Container]:
    """The record containers of a parsed JSON document (see the module's doc)."""
    if isinstance(value, list):
        return [Container("list", "the top-level list", value)]
    if not isinstance(value, Mapping):
        return [Container("object", "a single value", [value])]
    lists = {k: v for k, v in value.items()  # empty, or holding objects (and strays)
             if isinstance(v, list) and (not v or any(isinstance(e, Mapping) for e in v))}
    if lists:
        inherited = {k: v for k, v in value.items() if isinstance(v, _PLAIN) or v is None}
        return [Container("wrapper", f'key "{k}"',
                          [{**inherited, **e} if isinstance(e, Mapping) else e for e in v],
                          inherited) for k, v in lists.items()]
    keyed = {k: v for k, v in value.items() if _TICKER.match(str(k))}
    if keyed and len(keyed) >= len(value) - 1:  # allow one metadata key beside them
        objects = all(isinstance(v, Mapping) for v in keyed.values())
        return [Container(
            "keyed", f"{len(keyed)} keys that are symbols",
            [{"symbol": k, **v} for k, v in keyed.items()] if objects else list(keyed.values()),
            not_records=None if objects else "values by symbol that are not records "
                                             "(numbers: a cache)")]
    return [Container("object", "the top-level object", [value])]
