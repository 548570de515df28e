"""Is a producer's field still measuring anything? Pure checks over a frame of its values.

Real producers break quietly: AMC-Trader's scan history has every factor score column at
0 in all 729 rows, because its logger reads a key the scanner never sets. Per field:

* `stuck`: at least `min_rows` values present and all of them equal — a constant is no
  measurement (a flag column may legitimately be constant: pass it in `constant_ok`);
* `missing_rise`: the share of missing values in the newest `recent` rows exceeds the
  share before them by `missing_jump` or more (a feed that stopped);
* `out_of_scale`: values beyond the field's declared range (a scale that changed, 0–100
  arriving where 0–1 was declared).

The rows are taken in the order given (oldest first). Each finding says what it saw.
`stream_health` runs the checks per producer and scoring model over what was stored (the
learner, every daily cycle); the import runs `field_health` over a producer's files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

from amc_learning.intelligence.stats import as_float


@dataclass(frozen=True)
class Finding:
    field: str
    kind: str  # stuck | missing_rise | out_of_scale
    detail: str
    rows: int


def field_health(
    frame: pl.DataFrame,
    *,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    constant_ok: Iterable[str] = (),
    min_rows: int = 30,
    recent: int = 50,
    missing_jump: float = 0.3,
) -> list[Finding]:
    """Findings for every column of `frame` (missing = null; NaN counts as missing)."""
    ranges = ranges or {}
    allowed = set(constant_ok)
    findings: list[Finding] = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype.is_float():
            column = column.fill_nan(None)
        present = column.drop_nulls()
        if name not in allowed and len(present) >= min_rows and present.n_unique() == 1:
            findings.append(Finding(name, "stuck", f"all {len(present)} values are "
                                    f"{present[0]!r}", len(present)))
        if len(column) >= recent + min_rows:
            before = column.head(len(column) - recent).null_count() / (len(column) - recent)
            after = column.tail(recent).null_count() / recent
            if after - before >= missing_jump:
                findings.append(Finding(name, "missing_rise", f"missing in {after:.0%} of the "
                                        f"last {recent} rows, {before:.0%} before", recent))
        if name in ranges and column.dtype.is_numeric() and len(present):
            low, high = ranges[name]
            outside = present.filter((present < low) | (present > high))
            if len(outside):
                findings.append(Finding(name, "out_of_scale", f"{len(outside)} of "
                                        f"{len(present)} values outside [{low}, {high}] "
                                        f"(from {outside.min()!r} to {outside.max()!r})",
                                        len(outside)))
    return findings


def stream_health(frame: pl.DataFrame, *, min_rows: int = 30, recent: int = 50
                  ) -> list[dict[str, str]]:
    """`field_health` per producer and scoring model over recent candidates (`frame`:
    producer, scoring_model, raw_score, raw_low, raw_high and one column per feature,
    oldest first). A field a producer never sends is not missing, it is not its field:
    the all-null columns of each group are left out. The raw score is judged on the
    scale the group declared."""
    findings: list[dict[str, str]] = []
    if frame.is_empty():
        return findings
    for (producer, model), group in frame.group_by(["producer", "scoring_model"],
                                                   maintain_order=True):
        values = group.drop("producer", "scoring_model", "raw_low", "raw_high")
        values = values.select(c for c in values.columns if values[c].null_count() < len(values))
        ranges = {}
        if "raw_score" in values.columns:
            ranges["raw_score"] = (as_float(group["raw_low"].min()),
                                   as_float(group["raw_high"].max()))
        findings.extend({"producer": str(producer), "scoring_model": str(model),
                         "field": f.field, "kind": f.kind, "detail": f.detail}
                        for f in field_health(values, ranges=ranges, min_rows=min_rows,
                                              recent=recent))
    return findings
