"""AMC-Trader's own files, mapped to contract-v2 events: every record an event or a reason,
the same ids on a second import, the scan history's dead columns flagged."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amc_learning.adapters import amc_trader
from amc_learning.schemas.registry import decode_event
from amc_learning.service.imports import read_amc_trader

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader"
DATA = FIXTURES / "data"


def _scan_rows() -> list[dict[str, str]]:
    with (DATA / "scanner_performance.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _weights() -> dict:
    return json.loads((DATA / "scanner_weights.json").read_text())


def test_the_scan_history_becomes_candidates_and_entered_picks_decisions():
    rows = _scan_rows()
    model = amc_trader.scoring_model(_weights())
    mapped = amc_trader.scan_history(rows, model=model)
    candidates = [e for e in mapped.events if e.event_type == "candidate_scored"]
    decisions = [e for e in mapped.events if e.event_type == "thesis_decided"]
    assert (mapped.read, len(candidates), len(decisions), len(mapped.rejected)) == (
        729, 728, 7, 1)
    [(where, reason)] = mapped.rejected
    assert where == "scanner_performance.csv row 322" and "(got 'ORCLpD')" in reason
    first = candidates[0]
    assert (first.schema_version, first.scoring_model.version) == (2, "3.3.1")
    assert first.raw_score.value == float(rows[0]["scanner_score"])
    assert first.occurred_at == datetime(2026, 2, 9, 21, 23, 43, tzinfo=UTC)  # 13:23:43 PST
    assert sum(c.passed for c in candidates) == 7  # the picks entered
    rig = next(d for d in decisions if d.symbol == "RIG")
    assert (rig.decision_type, rig.label, rig.entry_price, rig.confidence_score) == (
        "BUY", "entered", 5.345, None)
    assert rig.decision_id == "amc-scan:RIG:2026-02-10" and "Earnings beat" in rig.reasoning
    for event in mapped.events:  # what the persist consumer will read back
        assert decode_event(event.model_dump_json().encode()) == event
    again = amc_trader.scan_history(rows, model=model)
    assert [e.event_id for e in again.events] == [e.event_id for e in mapped.events]


def test_a_malformed_row_is_one_rejection_with_its_reason_never_a_crash():
    rows = _scan_rows()[:3]
    broken = [{**rows[0], "scanner_score": "lots"}, {k: v for k, v in rows[1].items()
                                                      if k != "symbol"},
              {**rows[2], "scan_time": "25:99:00"}]
    mapped = amc_trader.scan_history(broken)
    assert mapped.events == [] and [r for _, r in mapped.rejected] == [
        "scanner_score: no number in 'lots'", "no column 'symbol'",
        "not a date or time: '2026-02-09' 25:99:00"]


def test_the_current_scanners_pick_keeps_its_tiers_with_their_points_and_flags():
    [pick] = json.loads((DATA / "diamonds.json").read_text())
    written = datetime(2026, 3, 6, 16, tzinfo=UTC)
    mapped = amc_trader.diamonds([pick, {**pick, "symbol": "BAD TICKER"}], written_at=written,
                                 weights=_weights())
    [candidate] = mapped.events
    assert candidate.tiers["float"].tier == "moderate" and candidate.tiers["float"].points == 10
    assert candidate.tiers["momentum"].points == 40 and candidate.tiers["squeeze"].points == 20
    assert candidate.tiers["market_cap"].points is None  # "ultra_nano" has no points listed
    assert candidate.features["catalyst_llm"] == pytest.approx(0.7)
    assert candidate.raw_score.value == 120 and candidate.occurred_at == written
    assert len(mapped.rejected) == 1 and "symbol" in mapped.rejected[0][1]


def test_an_import_accounts_for_every_record_and_flags_the_dead_columns():
    imported = read_amc_trader(FIXTURES)
    summary = imported.summary()
    mapped = {name: f for name, f in summary["files"].items() if f["read"]}
    assert set(mapped) == {"scanner_performance.csv", "diamonds.json"}
    for figures in mapped.values():  # each record: events (an entered pick has two) or out
        assert figures["read"] == figures["events"] - 7 * (figures["read"] == 729) + sum(
            figures["rejected"].values())
    assert summary["events"] == {"learning.discovery.v1": 729, "learning.thesis.v1": 7}
    assert "not_mapped" in summary["files"]["closed_positions.json"]
    stuck = {q["field"] for q in summary["quality"] if q["kind"] == "stuck"}
    assert {"float_score", "momentum_score", "volume_score", "catalyst_score",
            "multiday_score"} <= stuck
    assert "scanner_score" not in stuck


def test_the_trade_log_fills_enter_the_scan_historys_entered_picks():
    records = json.loads((FIXTURES / "payloads" / "r1_memory_trade_log.json").read_text())[
        "records"]
    mapped = amc_trader.trade_log([*records, {"file": "memory/2026-03-05.md",
                                              "heading": "09:00:00 PT - RESEARCH XYZ",
                                              "Qty": "1", "Price": "$1"}])
    assert (mapped.read, len(mapped.events)) == (5, 4)
    assert mapped.rejected == [("trade log record 5", "'RESEARCH' is not a trade")]
    entered = {d.decision_id for d in amc_trader.scan_history(_scan_rows()).events
               if d.event_type == "thesis_decided"}
    for fill in mapped.events:
        assert fill.decision_id in entered and fill.fill_type == "ENTRY"
    rig = mapped.events[0]
    assert (rig.quantity, rig.price) == (55.0, 5.34)
    assert rig.occurred_at == datetime(2026, 2, 10, 20, 0, 23, tzinfo=UTC)  # 12:00:23 PST
