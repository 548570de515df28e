"""Import a producer's history: read its files, map them with `adapters`, watch the data's
quality, and publish the events through the normal topics (so persist, outcomes and the
learner treat them like live traffic).

`read_amc_trader(paths)` reads AMC-Trader checkouts (their `data/` folder), such folders,
folders of captured records and single files, each by what it holds, never by its name
(`recognise`): a CSV by its header, JSON at any depth a producer uses
(`adapters.containers`: a list, a scan object wrapping its candidates, a dict keyed by
symbol). Each record is known by its fields (`SHAPES`): every scanner generation AMC-Trader
has had, the backend's candidates and theses, its `learning_decisions` rows, trade logs,
positions, Alpaca's orders. Every record read is mapped (one event or more) or rejected
with its reason; a file no shape knows is listed with its count. The scanner's
parameters (`scanner_weights.json`, `weight_history.json`, found by content) give the
versions a scan was scored by. `explain(file)` says what a file was taken for, and why.
`publish` sends the events with `LearningPublisher`.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from amc_learning.adapters import alpaca, amc_backend, amc_generations, amc_positions, amc_trader
from amc_learning.adapters.containers import Container, Misfit, containers, csv_container
from amc_learning.adapters.mapped import Mapped, each
from amc_learning.adapters.native import Unmappable, number_or_none, time_zone, utc
from amc_learning.schemas.common import Event
from amc_learning.schemas.registry import TOPIC_OF_EVENT
from amc_learning.service.import_quality import conflicts, model_quality, scan_quality
from amc_learning.settings import Settings
from amc_learning.streams.publisher import LearningPublisher

#: The scan history's columns as its newest logger writes them (older loggers wrote fewer).
SCAN_COLUMNS = (
    "scan_date", "scan_time", "symbol", "price_at_scan", "scanner_score", "float_score",
    "momentum_score", "volume_score", "catalyst_score", "multiday_score", "vigl_bonus",
    "vigl_match", "rvol", "float_shares", "change_pct", "volume", "catalyst_text", "entered",
    "entry_date", "entry_price", "entry_thesis", "exit_date", "exit_price", "hold_days",
    "return_pct", "return_dollars", "spy_return", "alpha", "sector_return", "outcome",
    "notes")
TRACKING_COLUMNS = ("Date", "Symbol", "Qty", "Entry Price", "Current Price", "Cost Basis",
                    "Market Value", "Unrealized P&L", "Unrealized P&L %", "Entry Date",
                    "Days Held", "Thesis", "Stop Loss", "Target", "Notes")
DAILY_LOG_COLUMNS = ("Date", "Symbol", "Qty", "Entry", "Current", "P&L", "P&L %",
                     "Action Taken")


@dataclass(frozen=True)
class Shape:
    """A kind of record, known by the fields it has (all of `needs`); a CSV of it may have
    `columns` (those beyond `needs` optional)."""

    name: str
    needs: tuple[str, ...]
    columns: tuple[str, ...] = ()


#: A record's shape: the first whose fields it has names its adapter (`records`).
SHAPES: tuple[Shape, ...] = (
    Shape("trade log", ("heading", "file")),
    Shape("AlphaStack 4.1 candidate", ("subscores", "score", "symbol")),
    Shape("V4 swing candidate", ("total_score", "components", "symbol")),
    Shape("direct discovery candidate", ("volume_ratio", "action_tag", "symbol")),
    Shape("position thesis", ("suggestion", "symbol")),
    Shape("learning_decisions row", ("recommendation_source", "decision_type", "symbol")),
    Shape("v1 pick", ("score", "squeeze_score", "momentum_score", "symbol")),
    Shape("scanner pick", ("score", "float", "momentum", "symbol")),
    Shape("squeeze scan result", ("score", "signals", "daily_change", "symbol")),
    Shape("market scan candidate", ("score", "reason", "price", "symbol")),
    Shape("scan row", ("scan_date", "scan_time", "symbol", "scanner_score"), SCAN_COLUMNS),
    Shape("tracked position", ("Date", "Symbol", "Current Price"), TRACKING_COLUMNS),
    Shape("closed position", ("entry_price", "exit_price", "symbol")),
    Shape("scanner test trade", ("entry_time", "entry_price", "symbol")),
    Shape("scale-out", ("date_scaled", "symbol")),
    Shape("sale", ("sell_date", "sell_price", "symbol")),
    Shape("lesson", ("lesson_type", "decision", "symbol")),
    Shape("Alpaca trade update", ("event", "order")),
    Shape("Alpaca order", ("filled_avg_price", "side", "symbol")),
    Shape("Alpaca position", ("avg_entry_price", "qty", "symbol")),
    Shape("daily position mark", ("Date", "Symbol", "Qty", "Current"), DAILY_LOG_COLUMNS),
    Shape("position mark", ("symbol", "qty", "avg_entry", "current")),
    Shape("position state", ("symbol", "peak_gain", "partial_taken")),
    Shape("allocation", ("allocations", "action", "date")),
    Shape("scanner parameter change", ("date", "version", "changes")),
    Shape("screen row", ("symbol", "price", "volume", "change")),
)
#: Why the shapes that are no decision, fill or candidate are not events.
REFUSED = {
    "Alpaca position": "a position (its average price and size now), not a fill",
    "daily position mark": "a position mark, not a decision or fill",
    "position mark": "a position mark, not a decision or fill",
    "position state": "a position's state (its gains so far), not a decision or fill",
    "allocation": "an allocation names an amount, not a price: price missing",
    "scanner parameter change": "a change of the scanner's parameters (read for its "
                                "versions), not an event",
    "screen row": "a screen's row (price, volume, change): no score to learn from",
}
#: The fields a record may hold its position's entry price in (for pricing scale-outs).
ENTRY_FIELDS = ("entry_price", "avg_entry", "avg_entry_price", "original_entry",
                "Entry Price", "Entry")


@dataclass
class Imported:
    """What an import read: per file, what it became; the events; quality findings."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    inferred: Counter[str] = field(default_factory=Counter)
    quality: list[dict[str, Any]] = field(default_factory=list)
    source: dict[Any, str] = field(default_factory=dict)  # event id -> the file it came from

    @property
    def read(self) -> int:
        return sum(f.get("read", 0) for f in self.files.values())

    def add(self, name: str, mapped: Mapped, **more: Any) -> None:
        """A file's events; one already read from another file (the same source record:
        the same id) is counted there, not sent twice. Every record read is mapped (it
        became one event or more) or rejected."""
        fresh = [e for e in mapped.events if e.event_id not in self.source]
        self.events.extend(fresh)
        self.source.update((e.event_id, name) for e in fresh)
        reasons = Counter(reason for _, reason in mapped.rejected)
        self.rejected.update(reasons)
        self.inferred.update(mapped.inferred)
        self.files[name] = {"read": mapped.read, "mapped": mapped.read - len(mapped.rejected),
                            "events": len(mapped.events), "rejected": dict(reasons), **more}
        if len(fresh) < len(mapped.events):
            self.files[name]["already_read"] = len(mapped.events) - len(fresh)

    def summary(self) -> dict[str, Any]:
        by_topic = Counter(TOPIC_OF_EVENT[e.event_type] for e in self.events)
        return {"files_seen": len(self.files), "read": self.read,
                "events": dict(sorted(by_topic.items())),
                "rejected": dict(self.rejected.most_common()),
                "inferred": dict(sorted(self.inferred.items())), "files": self.files,
                "quality": self.quality}


@dataclass
class Found:
    """What a file was taken for: its record containers, or why it has none."""

    file: Path
    name: str
    kind: str  # "csv" | "json" | "text" (not a table) | "unreadable"
    containers: list[Container] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    unreadable: str | None = None
    document: Any = None

    def records(self) -> list[Any]:
        return [r for c in self.containers for r in c.records]


def recognise(file: Path, name: str | None = None) -> Found:
    """Read `file` by what it holds: JSON when it starts with `[` or `{`, else CSV by its
    header; a file that is not text, or not valid JSON, is unreadable (said why)."""
    name = name or file.name
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return Found(file, name, "unreadable", unreadable="not text (binary)")
    if text.lstrip()[:1] in ("[", "{"):
        try:
            document = json.loads(text)
        except ValueError as exc:
            return Found(file, name, "unreadable", unreadable=f"not valid JSON: {exc}"[:200])
        return Found(file, name, "json", containers(document), document=document)
    try:
        table = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        return Found(file, name, "unreadable", unreadable=f"not valid CSV: {exc}"[:200])
    header, body = (table[0], table[1:]) if table else ([], [])
    if len(header) < 2 or sum(len(r) == len(header) for r in body) < 0.5 * len(body):
        lines = len(text.splitlines())
        return Found(file, name, "text", unreadable=f"text, not a table of records ({lines:,} "
                                                    f"line{'' if lines == 1 else 's'})")
    return Found(file, name, "csv", [csv_container(header, body)], header=header)


def files_under(paths: Path | list[Path]) -> list[Path]:
    """The files of checkouts (their `data/` folder), folders and single files."""
    files: list[Path] = []
    for path in [paths] if isinstance(paths, Path) else paths:
        folder = path / "data" if (path / "data").is_dir() else path
        if folder.is_file():
            files.append(folder)
        elif folder.is_dir():
            files.extend(sorted(p for p in folder.iterdir() if p.is_file()))
        else:
            raise FileNotFoundError(
                f"{path}: no such file or folder (an AMC-Trader checkout, its data/, or files"
                " of its records)")
    return files


def read_amc_trader(paths: Path | list[Path], tz: str = "America/Los_Angeles") -> Imported:
    """Map every file under `paths` by what it holds (see the module's doc)."""
    time_zone(tz)  # a wrong zone is the caller's error, not one rejection per record
    files = files_under(paths)
    names = Counter(f.name for f in files)
    found = [recognise(f, f.name if names[f.name] == 1 else str(f)) for f in files]
    weights: dict[str, Any] = next((f.document for f in found if _is_weights(f.document)), {})
    history = next((f.document for f in found if isinstance(f.document, dict)
                    and isinstance(f.document.get("weight_changes"), list)), None)
    versions = amc_trader.scanner_versions(weights, history)
    entries = entry_prices((f.name, r) for f in found for r in f.records())
    out = Imported()
    scanned: dict[tuple[str, str], float] = {}  # (symbol, day) -> the last price scanned
    # the scan history first: its prices are what the lessons are priced from
    for f in sorted(found, key=lambda f: not any(shape_of(r) == "scan row"
                                                 for r in f.records())):
        if f.unreadable is not None:
            out.files[f.name] = {"read": 0, "events": 0,
                                 ("not_mapped" if f.kind == "text" else "unreadable"):
                                 f.unreadable}
            continue
        written = datetime.fromtimestamp(f.file.stat().st_mtime, UTC)
        mapped, shapes = Mapped(), Counter[str]()
        for container in f.containers:
            if container.not_records is not None:
                mapped.extend(each(container.records, "value",
                                   partial(_refuse, container.not_records)))
                shapes["not records"] += len(container.records)
                continue
            part, counts = records(container.records, tz=tz, written_at=written,
                                   weights=weights, versions=versions, scanned=scanned,
                                   entries=entries)
            mapped.extend(part)
            shapes.update(counts)
        rows = [r for r in f.records() if shape_of(r) == "scan row"]
        scanned.update(((r.get("symbol", ""), r.get("scan_date", "")), price) for r in rows
                       if (price := number_or_none(r.get("price_at_scan"))) is not None)
        more: dict[str, Any] = {"shapes": dict(shapes)}
        if f.kind == "csv" and (columns := _columns(f.header)):
            more["columns"] = columns
        if not set(shapes) - {"unknown", "not records"}:
            more["not_mapped"] = (f"no known header (columns: {', '.join(f.header[:8])})"
                                  if f.kind == "csv" else "no record of a known shape")
        if weights and (f.document is weights or f.document is history):
            more["used"] = "scoring model versions " + ", ".join(
                f"{v.model.version} (from {v.since or 'the start'}, points up to "
                f"{v.scale[1]:g})" for v in versions)
        out.add(f.name, mapped, **more)
        if rows:
            out.quality.extend(scan_quality(f.name, rows))
    out.quality.extend(model_quality(out.events))
    out.quality.extend(conflicts(out.events, out.source))
    return out


def _is_weights(document: Any) -> bool:
    """A points scanner's parameters: a version and tables of points by tier."""
    return isinstance(document, dict) and "version" in document and sum(
        1 for v in document.values() if isinstance(v, dict) and v
        and all(isinstance(x, int | float) for x in v.values())) >= 3


def _columns(header: list[str]) -> dict[str, list[str]]:
    """A CSV's columns against the known columns of the shape its header matches: the
    optional ones it lacks and the ones no shape reads (both tolerated, both said)."""
    shape = next((s for s in SHAPES if s.columns and set(s.needs) <= set(header)), None)
    if shape is None:
        return {}
    out = {"missing_optional": [c for c in shape.columns if c not in header],
           "extra": [c for c in header if c not in shape.columns]}
    return {"shape": [shape.name], **{k: v for k, v in out.items() if v}} if any(
        out.values()) else {}


def entry_prices(found: Iterable[tuple[str, Any]]) -> dict[str, tuple[float, str]]:
    """symbol -> the first entry price a record (of the file named) states for its
    position, and where it was found."""
    out: dict[str, tuple[float, str]] = {}
    for file, record in found:
        if not isinstance(record, Mapping):
            continue
        symbol = record.get("symbol", record.get("Symbol"))
        for name in ENTRY_FIELDS:
            if symbol and (price := number_or_none(record.get(name))):
                out.setdefault(str(symbol), (price, f"{price:g}, {name} in {file}"))
                break
    return out


def explain(file: Path) -> list[str]:
    """What the import takes `file` for, and why: where its records are, what each
    record's shape is taken to be and the fields that matched, what no shape knows."""
    f = recognise(file)
    if f.unreadable is not None:
        return [f"{f.name}: {'not mapped' if f.kind == 'text' else 'unreadable'} "
                f"({f.unreadable})"]
    lines = [f"{f.name}: {'a CSV' if f.kind == 'csv' else 'JSON'}"]
    if f.kind == "csv":
        lines.append(f"  header: {', '.join(f.header)}")
        for key, value in _columns(f.header).items():
            lines.append(f"  {key.replace('_', ' ')}: {', '.join(value)}")
    for c in f.containers:
        n = len(c.records)
        lines.append(f"  {n:,} record{'' if n == 1 else 's'} in {c.where} ({c.kind})")
        if c.inherited:
            lines.append("    each inherits " + ", ".join(
                f"{k}={v!r}"[:60] for k, v in c.inherited.items()))
        if c.not_records:
            lines.append(f"    {c.not_records}")
            continue
        shapes = Counter(shape_of(r) for r in c.records)
        for shape, n in shapes.most_common():
            if shape is None:
                keys = Counter(f"fields: {', '.join(sorted(map(str, r))[:8])}"
                               if isinstance(r, Mapping) else
                               f"{r.fields} fields under a header of {r.header}"
                               if isinstance(r, Misfit) else type(r).__name__
                               for r in c.records if shape_of(r) is None)
                for k, m in keys.most_common(3):
                    lines.append(f"    {m:,} of no known shape ({k})")
                continue
            known = next(s for s in SHAPES if s.name == shape)
            why = REFUSED.get(shape, "mapped")
            lines.append(f"    {n:,} {shape}: fields {', '.join(known.needs)} matched; {why}")
    return lines


def records(found: list[Any], *, tz: str, written_at: datetime, weights: dict[str, Any],
            versions: list[amc_trader.Version], scanned: dict[tuple[str, str], float],
            entries: Mapping[str, tuple[float, str]] | None = None
            ) -> tuple[Mapped, Counter[str]]:
    """Map records of any known shape: each goes to the adapter of its shape (`SHAPES`);
    a record of no known shape is one rejection naming its keys. Also: records per shape."""
    groups: dict[str, list[Any]] = defaultdict(list)
    unknown: list[Any] = []
    for record in found:
        shape = shape_of(record)
        (groups[shape] if shape else unknown).append(record)
    adapters: dict[str, Callable[[list[Any]], Mapped]] = {
        "trade log": amc_positions.trade_log,
        "AlphaStack 4.1 candidate": lambda rs: amc_backend.alphastack(rs, written_at=written_at),
        "V4 swing candidate": lambda rs: amc_generations.swing_v4(rs, tz=tz),
        "direct discovery candidate": lambda rs: amc_backend.direct_discovery(rs),
        "position thesis": lambda rs: amc_backend.position_thesis(rs, written_at=written_at),
        "learning_decisions row": lambda rs: amc_backend.learning_rows(rs),
        "v1 pick": lambda rs: amc_generations.pick_v1(rs, written_at=written_at),
        "scanner pick": lambda rs: amc_trader.diamonds(rs, written_at=_scan_at(rs, tz)
                                                       or written_at, weights=weights),
        "squeeze scan result": lambda rs: amc_generations.squeeze_scan(rs,
                                                                       written_at=written_at),
        "market scan candidate": lambda rs: amc_generations.market_scan(
            rs, written_at=written_at),
        "scan row": lambda rs: amc_trader.scan_history(rs, tz=tz, versions=versions),
        "tracked position": lambda rs: amc_positions.portfolio(rs, tz=tz),
        "closed position": lambda rs: amc_positions.closed_positions(rs),
        "scanner test trade": lambda rs: amc_positions.scanner_test_trades(rs, tz=tz),
        "scale-out": lambda rs: amc_positions.scale_outs(rs, entries),
        "sale": lambda rs: amc_positions.sales(rs, tz=tz),
        "lesson": lambda rs: amc_trader.lessons(rs, tz=tz, scanned=scanned),
        "Alpaca trade update": lambda rs: each(rs, "Alpaca trade update",
                                               lambda i, r, _: alpaca.trade_update(r)),
        "Alpaca order": lambda rs: each(rs, "Alpaca order", lambda i, r, _: alpaca.order(r)),
        **{shape: partial(_refused, shape) for shape in REFUSED},
    }
    out = Mapped()
    shapes: Counter[str] = Counter()
    for shape, group in groups.items():
        out.extend(adapters[shape](group))
        shapes[shape] += len(group)
    out.extend(each(unknown, "record", _unknown))
    if unknown:
        shapes["unknown"] += len(unknown)
    return out, shapes


def _scan_at(found: list[Any], tz: str) -> datetime | None:
    """The time of the scan object wrapping these records (its date and time, naive in
    `tz`), where it gives one."""
    first = found[0]
    if first.get("scan_date") and first.get("scan_time"):
        return utc(str(first["scan_date"]), str(first["scan_time"]), tz)
    return None


def shape_of(record: object) -> str | None:
    """The name of the record's shape (`SHAPES`), or None."""
    if not isinstance(record, Mapping):
        return None
    keys = set(record.get("data", record)) if isinstance(record.get("data"), Mapping) else set(
        record)
    return next((s.name for s in SHAPES if keys.issuperset(s.needs)), None)


def _refused(shape: str, found: list[Any]) -> Mapped:
    return each(found, shape, partial(_refuse, REFUSED[shape]))


def _refuse(why: str, i: int, record: Any, inferred: Counter[str]) -> Event:
    raise Unmappable(why)


def _unknown(i: int, record: Any, inferred: Counter[str]) -> Event:
    if isinstance(record, Misfit):
        raise Unmappable(f"a row of {record.fields} fields under a header of {record.header}")
    keys = sorted(map(str, record))[:8] if isinstance(record, Mapping) else type(record).__name__
    raise Unmappable(f"a record of no known shape (keys {keys})")



def publish(settings: Settings, events: list[Event],
            progress: Callable[[int], None] = lambda _: None) -> dict[str, int]:
    """Send `events` through `LearningPublisher`; the count per topic acknowledged."""
    publisher = LearningPublisher.from_settings(settings).start()
    try:
        for i, event in enumerate(events, start=1):
            publisher.publish(event)
            if i % 500 == 0:
                progress(i)
        if not publisher.flush(timeout=120):
            raise TimeoutError("the broker stopped acknowledging events (waited 120 s)")
        progress(len(events))
    finally:
        publisher.close()
    if publisher.stats.dropped or publisher.stats.invalid:
        raise RuntimeError(f"the publisher lost events: {publisher.stats}")
    return dict(publisher.stats.sent_by_topic)
