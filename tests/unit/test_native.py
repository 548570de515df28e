"""Reading AMC-Trader's own values: numbers as text, factors as emoji text, its decision
labels, naive Pacific times — on the records of its repository (tests/fixtures/amc_trader)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from amc_learning.adapters.native import (
    Unmappable,
    action,
    factor,
    fraction,
    llm_rating,
    number,
    prices,
    utc,
)
from amc_learning.intelligence.quality import field_health, stream_health

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader"


def _rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / "data" / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("text, value", [
    ("$30.45", 30.45), ("$+0.92", 0.92), ("$-0.01", -0.01), ("-$1,234.5", -1234.5),
    ("+1.0%", 1.0), ("35.8M", 35.8e6), ("180948088.0", 180948088.0), ("5.345", 5.345),
    (7, 7.0), ("", None), ("unknown", None), ("N/A", None), (None, None),
])
def test_numbers_written_as_text_are_read_and_missing_stays_missing(text, value):
    assert number(text) == (pytest.approx(value) if value is not None else None)


def test_what_holds_no_number_is_a_reason_not_a_zero():
    with pytest.raises(Unmappable, match="no number in 'Yes'"):
        number("Yes")
    with pytest.raises(Unmappable):
        number(True)


def test_every_money_cell_of_the_portfolio_file_reads():
    rows = _rows("portfolio_tracking.csv")
    assert rows
    for row in rows:
        cost = number(row["Cost Basis"])
        # the file rounds the entry price to cents, not the cost basis
        assert cost == pytest.approx(number(row["Qty"]) * number(row["Entry Price"]), rel=2e-3)
        assert fraction(row["Unrealized P&L %"]) == pytest.approx(
            number(row["Unrealized P&L"]) / cost, abs=0.0006)
        targets = prices(row["Target"])
        assert len(targets) == 2 and targets[0] < targets[1]
        assert number(row["Stop Loss"]) < targets[0]  # (SPHR's targets sit below its entry)


def test_the_current_scanners_factor_texts_read_as_tiers_and_measurements():
    [pick] = json.loads((FIXTURES / "data" / "diamonds.json").read_text())
    floated = factor(pick["float"])
    assert (floated.tier, floated.value, floated.mark) == ("moderate", 35.8e6, "warning")
    squeeze = factor(pick["squeeze"])
    assert (squeeze.tier, squeeze.value, squeeze.unit) == ("moderate", 3.9, "DTC")
    momentum = factor(pick["momentum"])
    assert (momentum.tier, momentum.value, momentum.unit, momentum.mark) == (
        "perfect", 0.0, "%", "ok")
    cap = factor(pick["market_cap"])
    assert (cap.tier, cap.value) == ("ultra_nano", 44e6)
    assert factor(pick["entry_timing"]).value == -5.0
    assert llm_rating(pick["catalyst"]) == pytest.approx(0.7)


@pytest.mark.parametrize("label, canonical, change", [
    ("BUY", "BUY", None), ("buy", "BUY", None), ("BUY_MORE", "BUY", None),
    ("BUY MORE", "BUY", None), ("increase", "BUY", None), ("HOLD", "HOLD", None),
    ("TRIM", "SELL", None), ("TRIM_25", "SELL", -25.0), ("TRIM_50", "SELL", -50.0),
    ("TRIM_75", "SELL", -75.0), ("LIQUIDATE", "SELL", -100.0), ("FULL_EXIT", "SELL", -100.0),
    ("STOP_LOSS", "SELL", -100.0), ("TRAILING_STOP", "SELL", -100.0),
    ("PARTIAL_PROFIT", "SELL", None), ("RESEARCH", "IGNORE", None),
    ("CANCELLED", "IGNORE", None),
])
def test_every_decision_label_amc_trader_uses_has_a_canonical_action(label, canonical, change):
    read = action(label)
    assert (read.action, read.label, read.size_change_pct) == (canonical, label, change)


def test_an_unknown_label_is_a_reason():
    with pytest.raises(Unmappable, match="unknown decision label 'YOLO'"):
        action("YOLO")
    with pytest.raises(Unmappable):
        action("TRIM_500")


def test_naive_times_take_the_declared_zone_and_aware_ones_keep_theirs():
    pacific = utc("2026-02-09", "13:23:43", "America/Los_Angeles")
    assert pacific == datetime(2026, 2, 9, 21, 23, 43, tzinfo=UTC)  # PST is UTC-8
    summer = utc("2025-09-12T11:15:14", tz="America/Los_Angeles")
    assert summer == datetime(2025, 9, 12, 18, 15, 14, tzinfo=UTC)  # PDT is UTC-7
    assert utc("2024-01-15T14:30:00Z", tz="America/Los_Angeles") == datetime(
        2024, 1, 15, 14, 30, tzinfo=UTC)
    with pytest.raises(Unmappable, match="unknown time zone"):
        utc("2026-02-09", "13:23:43", "Pacific/Nowhere")
    with pytest.raises(Unmappable, match="not a date"):
        utc("yesterday")


@pytest.mark.parametrize(("clock", "expected"), [
    ("12:17 PM PT", datetime(2026, 2, 3, 20, 17, tzinfo=UTC)),
    ("12:17 AM PT", datetime(2026, 2, 3, 8, 17, tzinfo=UTC)),
    ("9:30 a.m. ET", datetime(2026, 2, 3, 14, 30, tzinfo=UTC)),
    ("6:30 pm", datetime(2026, 2, 4, 2, 30, tzinfo=UTC)),  # the declared zone: Pacific
])
def test_a_clock_written_by_hand_with_its_zone_is_read(clock, expected):
    assert utc("2026-02-03", clock, "America/Los_Angeles") == expected


@pytest.mark.parametrize(("clock", "reason"), [
    ("13:05 PM", "not a time of day"), ("12:17 PM XT", "unknown time zone 'XT'"),
    ("noon", "not a time of day")])
def test_a_clock_that_cannot_be_read_says_why(clock, reason):
    with pytest.raises(Unmappable, match=reason):
        utc("2026-02-03", clock)


def test_the_scan_histories_dead_factor_columns_are_flagged_and_live_ones_are_not():
    rows = _rows("scanner_performance.csv")
    assert len(rows) == 729
    numeric = ("scanner_score", "float_score", "momentum_score", "volume_score",
               "catalyst_score", "multiday_score", "price_at_scan", "volume")
    frame = pl.DataFrame({c: [number(r[c]) for r in rows] for c in numeric})
    findings = {(f.field, f.kind): f for f in field_health(
        frame, ranges={"scanner_score": (-75.0, 305.0)})}
    dead = {"float_score", "momentum_score", "volume_score", "catalyst_score",
            "multiday_score"}
    assert {field for field, kind in findings if kind == "stuck"} == dead
    assert findings[("float_score", "stuck")].detail == "all 729 values are 0.0"
    assert not any(field in ("scanner_score", "price_at_scan", "volume")
                   for field, _ in findings)


def test_a_scale_change_and_a_feed_that_stops_are_noticed():
    scores = [0.2 + 0.001 * i for i in range(100)] + [55.0, 61.0]
    feed = [1.0 + i for i in range(80)] + [None] * 40
    findings = field_health(pl.DataFrame({"score": scores + [0.3] * 18, "feed": feed}),
                            ranges={"score": (0.0, 1.0)}, recent=40)
    kinds = {(f.field, f.kind) for f in findings}
    assert kinds == {("score", "out_of_scale"), ("feed", "missing_rise")}
    assert "2 of 120 values outside [0.0, 1.0]" in next(
        f.detail for f in findings if f.kind == "out_of_scale")


def test_stream_health_judges_each_producers_model_on_its_own_fields_and_scale():
    n = 60
    native = pl.DataFrame({
        "producer": ["sim"] * n, "scoring_model": ["native"] * n,
        "raw_score": [None] * n, "raw_low": [None] * n, "raw_high": [None] * n,
        "rsi_14": [30.0 + i for i in range(n)], "float_shares": [None] * n})
    scanner = pl.DataFrame({
        "producer": ["amc"] * n, "scoring_model": ["amc-scanner 3.3.1"] * n,
        "raw_score": [100.0] * (n - 2) + [320.0, 99.0], "raw_low": [-75.0] * n,
        "raw_high": [305.0] * n, "rsi_14": [None] * n, "float_shares": [0.0] * n})
    findings = stream_health(pl.concat([native, scanner], how="vertical_relaxed"))
    seen = {(f["producer"], f["scoring_model"], f["field"], f["kind"]) for f in findings}
    assert seen == {("amc", "amc-scanner 3.3.1", "float_shares", "stuck"),
                    ("amc", "amc-scanner 3.3.1", "raw_score", "out_of_scale")}
    assert stream_health(native.head(0)) == []
