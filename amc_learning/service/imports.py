"""Import a producer's history: read its files, map them with `adapters`, watch the data's
quality, and publish the events through the normal topics (so persist, outcomes and the
learner treat them like live traffic).

`read_amc_trader(paths)` reads AMC-Trader checkouts (their `data/` folder), such folders,
folders of captured records and single files. The `data/` files are known by name; any
other JSON file holds records (a list, or `{"records": [...]}` as the captured payloads
are) each recognised by its shape (`SHAPES`), so an export of the backend's candidates,
its theses, its `learning_decisions` rows, the trade logs or Alpaca's orders imports as
it is. Every record read is an event or a rejection; every file not mapped is listed.
`publish` sends the events with `LearningPublisher`.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from amc_learning.adapters import alpaca, amc_backend, amc_positions, amc_trader
from amc_learning.adapters.mapped import Mapped, each
from amc_learning.adapters.native import Unmappable, number, time_zone
from amc_learning.intelligence.quality import field_health
from amc_learning.schemas.common import Event
from amc_learning.schemas.registry import TOPIC_OF_EVENT
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.settings import Settings
from amc_learning.streams.publisher import LearningPublisher

#: The scan history's numeric columns, watched for stuck values and scale changes.
SCAN_NUMBERS = ("scanner_score", "float_score", "momentum_score", "volume_score",
                "catalyst_score", "multiday_score", "price_at_scan", "rvol", "float_shares",
                "change_pct", "volume")
#: The files of AMC-Trader's data/ folder read as the scanner's parameters, not records.
PARAMETERS = ("scanner_weights.json", "weight_history.json")
#: A record's shape: the first whose keys it has (all of them) names its adapter.
SHAPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("trade log", ("heading", "file")),
    ("AlphaStack 4.1 candidate", ("subscores", "score", "symbol")),
    ("direct discovery candidate", ("volume_ratio", "action_tag", "symbol")),
    ("position thesis", ("suggestion", "symbol")),
    ("learning_decisions row", ("recommendation_source", "decision_type", "symbol")),
    ("scanner pick", ("score", "float", "squeeze", "symbol")),
    ("scan row", ("scan_date", "scan_time", "symbol", "scanner_score")),
    ("closed position", ("entry_price", "exit_price", "symbol")),
    ("scanner test trade", ("entry_time", "entry_price", "symbol")),
    ("scale-out", ("date_scaled", "symbol")),
    ("lesson", ("lesson_type", "decision", "symbol")),
    ("Alpaca trade update", ("event", "order")),
    ("Alpaca order", ("filled_avg_price", "side", "symbol")),
    ("Alpaca position", ("avg_entry_price", "qty", "symbol")),
)


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
        the same id) is counted there, not sent twice."""
        fresh = [e for e in mapped.events if e.event_id not in self.source]
        self.events.extend(fresh)
        self.source.update((e.event_id, name) for e in fresh)
        reasons = Counter(reason for _, reason in mapped.rejected)
        self.rejected.update(reasons)
        self.inferred.update(mapped.inferred)
        self.files[name] = {"read": mapped.read, "events": len(mapped.events),
                            "rejected": dict(reasons), **more}
        if len(fresh) < len(mapped.events):
            self.files[name]["already_read"] = len(mapped.events) - len(fresh)

    def summary(self) -> dict[str, Any]:
        by_topic = Counter(TOPIC_OF_EVENT[e.event_type] for e in self.events)
        return {"read": self.read, "events": dict(sorted(by_topic.items())),
                "rejected": dict(self.rejected.most_common()),
                "inferred": dict(sorted(self.inferred.items())), "files": self.files,
                "quality": self.quality}


def read_amc_trader(paths: Path | list[Path], tz: str = "America/Los_Angeles") -> Imported:
    """Map every file under `paths` this engine knows (see the module's doc)."""
    time_zone(tz)  # a wrong zone is the caller's error, not one rejection per record
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
    by_name = {f.name: f for f in files}
    weights = _object(by_name.get("scanner_weights.json"))
    versions = amc_trader.scanner_versions(weights, _object(by_name.get("weight_history.json")))
    out = Imported()
    scanned: dict[tuple[str, str], float] = {}  # (symbol, day) -> the last price scanned
    for file in sorted(files, key=lambda f: f.name != "scanner_performance.csv"):
        name = _label(file, by_name)
        try:
            _read_file(out, file, name, tz, weights, versions, scanned)
        except (ValueError, UnicodeDecodeError, csv.Error) as exc:  # JSON errors are these
            out.files[name] = {"read": 0, "events": 0, "unreadable": str(exc)[:200]}
    out.quality.extend(conflicts(out))
    return out


def conflicts(imported: Imported) -> list[dict[str, Any]]:
    """Decisions of two files that contradict each other — on one symbol and day, one acts
    (BUY or SELL) and the other says nothing was done (IGNORE): AMC-Trader's scan history
    marks ENSC entered on 2026-02-27, its learning log says that order was cancelled — or
    that look like one decision logged twice (the same action on one symbol and day in two
    files: its own learning_decisions row beside the scan history's entry). Both are
    kept; the analyst decides."""
    days: dict[tuple[str, Any], list[ThesisDecided]] = defaultdict(list)
    for e in imported.events:
        if isinstance(e, ThesisDecided) and e.decision_type != "HOLD":
            days[(e.symbol, e.occurred_at.date())].append(e)
    found = []
    for (symbol, day), decided in sorted(days.items()):
        acting = [d for d in decided if d.decision_type in ("BUY", "SELL")]
        left = [d for d in decided if d.decision_type == "IGNORE"]
        files = {imported.source[d.event_id] for d in acting}
        twice = len(files) > 1 and len({d.decision_type for d in acting}) == 1
        if (acting and left) or twice:
            said = "; ".join(f"{d.decision_type} ({d.label}) in {imported.source[d.event_id]}"
                             for d in acting + left)
            found.append({"file": imported.source[(left or acting)[-1].event_id],
                          "field": "decision", "kind": "conflict" if left else "logged_twice",
                          "detail": f"{symbol} on {day}: {said}"})
    return found


def _read_file(out: Imported, file: Path, name: str, tz: str, weights: dict[str, Any],
               versions: list[amc_trader.Version], scanned: dict[tuple[str, str], float]
               ) -> None:
    if file.name == "scanner_performance.csv":
        rows = _csv(file)
        out.add(name, amc_trader.scan_history(rows, tz=tz, versions=versions))
        scanned.update(((r.get("symbol", ""), r.get("scan_date", "")), price) for r in rows
                       if (price := _number(r.get("price_at_scan"))) is not None)
        out.quality.extend(_quality(name, rows, versions))
    elif file.name == "portfolio_tracking.csv":
        out.add(name, amc_positions.portfolio(_csv(file), tz=tz))
    elif file.name in PARAMETERS:
        _json(file)  # unreadable: said so in its line (the versions then go without it)
        out.files[name] = {"read": 0, "events": 0, "used": "scoring model versions " + ", ".join(
            f"{v.model.version} (from {v.since or 'the start'}, points up to {v.scale[1]:g})"
            for v in versions)}
    elif file.name == "learning_log.json":
        log = _object(file)
        out.add(name, amc_trader.lessons(log.get("manual_lessons") or [], tz=tz,
                                         scanned=scanned))
    elif file.suffix == ".json":
        written = datetime.fromtimestamp(file.stat().st_mtime, UTC)
        mapped, shapes = records(_records(file), tz=tz, written_at=written, weights=weights,
                                 versions=versions, scanned=scanned)
        out.add(name, mapped, shapes=dict(shapes))
    else:
        out.files[name] = {"read": 0, "events": 0, "not_mapped": "no adapter for it"}


def records(found: list[Any], *, tz: str, written_at: datetime, weights: dict[str, Any],
            versions: list[amc_trader.Version], scanned: dict[tuple[str, str], float]
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
        "direct discovery candidate": lambda rs: amc_backend.direct_discovery(rs),
        "position thesis": lambda rs: amc_backend.position_thesis(rs, written_at=written_at),
        "learning_decisions row": lambda rs: amc_backend.learning_rows(rs),
        "scanner pick": lambda rs: amc_trader.diamonds(rs, written_at=written_at,
                                                       weights=weights),
        "scan row": lambda rs: amc_trader.scan_history(rs, tz=tz, versions=versions),
        "closed position": lambda rs: amc_positions.closed_positions(rs),
        "scanner test trade": lambda rs: amc_positions.scanner_test_trades(rs, tz=tz),
        "scale-out": amc_positions.scale_outs,
        "lesson": lambda rs: amc_trader.lessons(rs, tz=tz, scanned=scanned),
        "Alpaca trade update": lambda rs: each(rs, "Alpaca trade update",
                                               lambda i, r, _: alpaca.trade_update(r)),
        "Alpaca order": lambda rs: each(rs, "Alpaca order", lambda i, r, _: alpaca.order(r)),
        "Alpaca position": lambda rs: each(rs, "Alpaca position", _not_a_fill),
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


def shape_of(record: object) -> str | None:
    """The name of the record's shape (`SHAPES`), or None."""
    if not isinstance(record, Mapping):
        return None
    keys = set(record.get("data", record)) if isinstance(record.get("data"), Mapping) else set(
        record)
    return next((name for name, needs in SHAPES if keys.issuperset(needs)), None)


def _not_a_fill(i: int, record: Any, inferred: Counter[str]) -> Event:
    raise Unmappable("a position (its average price and size now), not a fill")


def _unknown(i: int, record: Any, inferred: Counter[str]) -> Event:
    keys = sorted(record)[:8] if isinstance(record, Mapping) else type(record).__name__
    raise Unmappable(f"a record of no known shape (keys {keys})")


def _label(file: Path, by_name: dict[str, Path]) -> str:
    return file.name if by_name.get(file.name) == file else str(file)


def _object(file: Path | None) -> dict[str, Any]:
    """A JSON object from `file`; {} when there is no file or no object in it."""
    try:
        value = _json(file) if file is not None else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _records(file: Path) -> list[Any]:
    value = _json(file)
    if isinstance(value, dict) and isinstance(value.get("records"), list):
        return list(value["records"])
    return value if isinstance(value, list) else [value]


def _number(value: object) -> float | None:
    try:
        return number(value)
    except Unmappable:
        return None


def _quality(file: str, rows: list[dict[str, str]], versions: list[amc_trader.Version]
             ) -> list[dict[str, Any]]:
    """The scan history's health: a stuck field or a feed that stops is the logger's,
    whichever version scored (the whole file); a score beyond its scale is judged on the
    scale of the version that scored it."""
    found = [{"file": file, "field": f.field, "kind": f.kind, "detail": f.detail}
             for f in field_health(_numbers(rows, SCAN_NUMBERS)) if f.kind != "out_of_scale"]
    by_version: dict[int, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if (version := _scan_version(row, versions)) is not None:
            by_version[id(version)].append(row)
    for version in versions:
        if not (mine := by_version.get(id(version), [])):
            continue
        found.extend({"file": file, "scoring_model": f"amc-scanner {version.model.version}",
                      "field": f.field, "kind": f.kind, "detail": f.detail}
                     for f in field_health(_numbers(mine, ("scanner_score",)),
                                           ranges={"scanner_score": version.scale})
                     if f.kind == "out_of_scale")
    return found


def _scan_version(row: Mapping[str, str], versions: list[amc_trader.Version]
                  ) -> amc_trader.Version | None:
    try:
        day = datetime.fromisoformat(str(row.get("scan_date"))[:10]).date()
    except ValueError:
        return None
    return amc_trader.version_on(versions, day)


def _csv(file: Path) -> list[dict[str, str]]:
    with file.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _json(file: Path) -> Any:
    return json.loads(file.read_text(encoding="utf-8"))


def _numbers(rows: list[dict[str, str]], columns: tuple[str, ...]) -> pl.DataFrame:
    present = [c for c in columns if rows and c in rows[0]]
    return pl.DataFrame({c: [_number(r.get(c)) for r in rows] for c in present},
                        schema={c: pl.Float64 for c in present})


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
