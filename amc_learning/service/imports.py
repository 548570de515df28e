"""Import a producer's history: read its files, map them with `adapters`, watch the data's
quality, and publish the events through the normal topics (so persist, outcomes and the
learner treat them like live traffic).

`read_amc_trader(path)` reads an AMC-Trader checkout (its `data/` folder) or such a
folder; every record of a file it maps is an event or a rejection, every file it does
not map yet is listed. `publish` sends the events with `LearningPublisher`.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from amc_learning.adapters import amc_trader
from amc_learning.adapters.native import Unmappable, number, time_zone
from amc_learning.intelligence.quality import Finding, field_health
from amc_learning.schemas.common import Event
from amc_learning.schemas.registry import TOPIC_OF_EVENT
from amc_learning.settings import Settings
from amc_learning.streams.publisher import LearningPublisher

#: The scan history's numeric columns, watched for stuck values and scale changes.
SCAN_NUMBERS = ("scanner_score", "float_score", "momentum_score", "volume_score",
                "catalyst_score", "multiday_score", "price_at_scan", "rvol", "float_shares",
                "change_pct", "volume")
#: The files of AMC-Trader's data/ folder read as the scanner's parameters, not records.
PARAMETERS = ("scanner_weights.json",)


@dataclass
class Imported:
    """What an import read: per file, what it became; the events; quality findings."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    inferred: Counter[str] = field(default_factory=Counter)
    quality: list[dict[str, Any]] = field(default_factory=list)

    @property
    def read(self) -> int:
        return sum(f.get("read", 0) for f in self.files.values())

    def add(self, name: str, mapped: amc_trader.Mapped) -> None:
        self.events.extend(mapped.events)
        reasons = Counter(reason for _, reason in mapped.rejected)
        self.rejected.update(reasons)
        self.inferred.update(mapped.inferred)
        self.files[name] = {"read": mapped.read, "events": len(mapped.events),
                            "rejected": dict(reasons)}

    def summary(self) -> dict[str, Any]:
        by_topic = Counter(TOPIC_OF_EVENT[e.event_type] for e in self.events)
        return {"read": self.read, "events": dict(sorted(by_topic.items())),
                "rejected": dict(self.rejected.most_common()),
                "inferred": dict(sorted(self.inferred.items())), "files": self.files,
                "quality": self.quality}


def read_amc_trader(path: Path, tz: str = "America/Los_Angeles") -> Imported:
    """Map every file of AMC-Trader's `data/` folder this engine knows (see module doc)."""
    time_zone(tz)  # a wrong zone is the caller's error, not one rejection per record
    folder = path / "data" if (path / "data").is_dir() else path
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: no such folder (an AMC-Trader checkout or its data/)")
    out = Imported()
    weights = _json(folder / "scanner_weights.json") if (
        folder / "scanner_weights.json").exists() else None
    model = amc_trader.scoring_model(weights if isinstance(weights, dict) else None)
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        name = file.name
        if name == "scanner_performance.csv":
            rows = _csv(file)
            out.add(name, amc_trader.scan_history(rows, tz=tz, model=model))
            out.quality.extend(_finding(name, f) for f in field_health(
                _numbers(rows, SCAN_NUMBERS),
                ranges={"scanner_score": amc_trader.POINTS_SCALE}))
        elif name == "diamonds.json":
            records = _json(file)
            written = datetime.fromtimestamp(file.stat().st_mtime, UTC)
            out.add(name, amc_trader.diamonds(records if isinstance(records, list) else [],
                                              written_at=written, weights=weights))
            out.inferred["occurred_at (the file's modification time)"] += len(records)
        elif name in PARAMETERS:
            out.files[name] = {"read": 0, "events": 0, "used": f"scoring model {model.version}"}
        else:
            out.files[name] = {"read": 0, "events": 0, "not_mapped": "no adapter for it yet"}
    return out


def _csv(file: Path) -> list[dict[str, str]]:
    with file.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _json(file: Path) -> Any:
    return json.loads(file.read_text(encoding="utf-8"))


def _numbers(rows: list[dict[str, str]], columns: tuple[str, ...]) -> pl.DataFrame:
    def read(value: str | None) -> float | None:
        try:
            return number(value)
        except Unmappable:
            return None

    present = [c for c in columns if rows and c in rows[0]]
    return pl.DataFrame({c: [read(r.get(c)) for r in rows] for c in present},
                        schema={c: pl.Float64 for c in present})


def _finding(file: str, f: Finding) -> dict[str, Any]:
    return {"file": file, "field": f.field, "kind": f.kind, "detail": f.detail}


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
