"""What an import watches in the data it read: a field stuck at one value, a rise in
missing values, a score beyond its model's scale (`model_quality`, per imported scoring
model; `scan_quality`, the scan history's own columns), and decisions of two files that
contradict each other or look logged twice (`conflicts`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import polars as pl

from amc_learning.adapters.native import number_or_none
from amc_learning.intelligence.quality import field_health
from amc_learning.schemas.common import Event
from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.thesis import ThesisDecided

#: The scan history's numeric columns, watched for stuck values.
SCAN_NUMBERS = ("scanner_score", "float_score", "momentum_score", "volume_score",
                "catalyst_score", "multiday_score", "price_at_scan", "rvol", "float_shares",
                "change_pct", "volume")
def conflicts(events: list[Event], source: Mapping[Any, str]) -> list[dict[str, Any]]:
    """Decisions of two files that contradict each other — on one symbol and day, one acts
    (BUY or SELL) and the other says nothing was done (IGNORE): AMC-Trader's scan history
    marks ENSC entered on 2026-02-27, its learning log says that order was cancelled — or
    that look like one decision logged twice (the same action on one symbol and day in two
    files: its own learning_decisions row beside the scan history's entry). Both are
    kept; the analyst decides."""
    days: dict[tuple[str, Any], list[ThesisDecided]] = defaultdict(list)
    for e in events:
        if isinstance(e, ThesisDecided) and e.decision_type != "HOLD":
            days[(e.symbol, e.occurred_at.date())].append(e)
    found = []
    for (symbol, day), decided in sorted(days.items()):
        acting = [d for d in decided if d.decision_type in ("BUY", "SELL")]
        left = [d for d in decided if d.decision_type == "IGNORE"]
        files = {source[d.event_id] for d in acting}
        twice = len(files) > 1 and len({d.decision_type for d in acting}) == 1
        if (acting and left) or twice:
            said = "; ".join(f"{d.decision_type} ({d.label}) in {source[d.event_id]}"
                             for d in acting + left)
            found.append({"file": source[(left or acting)[-1].event_id],
                          "field": "decision", "kind": "conflict" if left else "logged_twice",
                          "detail": f"{symbol} on {day}: {said}"})
    return found


def scan_quality(file: str, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The scan history's health: a stuck field or a feed that stops is the logger's,
    whichever version scored (the whole file)."""
    return [{"file": file, "field": f.field, "kind": f.kind, "detail": f.detail}
            for f in field_health(_numbers(rows, SCAN_NUMBERS)) if f.kind != "out_of_scale"]


def model_quality(events: list[Event]) -> list[dict[str, Any]]:
    """Every imported scoring model's health, on its candidates: its raw score beyond the
    scale it declares, a stuck or newly missing score or feature."""
    by_model: dict[str, list[CandidateScored]] = defaultdict(list)
    for e in events:
        if isinstance(e, CandidateScored) and e.scoring_model is not None:
            by_model[f"{e.scoring_model.name} {e.scoring_model.version}"].append(e)
    found: list[dict[str, Any]] = []
    for model, candidates in by_model.items():
        candidates.sort(key=lambda c: c.occurred_at)
        raw = [c.raw_score for c in candidates]
        scales = {(r.low, r.high) for r in raw if r is not None}
        names = sorted({k for c in candidates for k in c.features})
        frame = pl.DataFrame(
            {"raw_score": [None if r is None else r.value for r in raw],
             **{k: [c.features.get(k) for c in candidates] for k in names}},
            schema={"raw_score": pl.Float64, **{k: pl.Float64 for k in names}})
        ranges = {"raw_score": scales.pop()} if len(scales) == 1 else {}
        found.extend({"file": "all files", "scoring_model": model, "field": f.field,
                      "kind": f.kind, "detail": f.detail}
                     for f in field_health(frame, ranges=ranges))
    return found


def _numbers(rows: list[dict[str, str]], columns: tuple[str, ...]) -> pl.DataFrame:
    present = [c for c in columns if rows and c in rows[0]]
    return pl.DataFrame({c: [number_or_none(r.get(c)) for r in rows] for c in present},
                        schema={c: pl.Float64 for c in present})


