"""AMC-Trader's own files, mapped to contract-v2 events: every record an event or a reason,
the same ids on a second import, the scan history's dead columns flagged."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amc_learning.adapters import amc_backend, amc_positions, amc_trader
from amc_learning.schemas.registry import decode_event
from amc_learning.service.imports import read_amc_trader

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader"
DATA = FIXTURES / "data"


def _scan_rows() -> list[dict[str, str]]:
    with (DATA / "scanner_performance.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _weights() -> dict:
    return json.loads((DATA / "scanner_weights.json").read_text())


def _versions() -> list[amc_trader.Version]:
    return amc_trader.scanner_versions(
        _weights(), json.loads((DATA / "weight_history.json").read_text()))


def _payload(name: str) -> list[dict]:
    return json.loads((FIXTURES / "payloads" / name).read_text())["records"]


def test_the_scan_history_becomes_candidates_and_entered_picks_decisions():
    rows = _scan_rows()
    mapped = amc_trader.scan_history(rows, versions=_versions())
    candidates = [e for e in mapped.events if e.event_type == "candidate_scored"]
    decisions = [e for e in mapped.events if e.event_type == "thesis_decided"]
    assert (mapped.read, len(candidates), len(decisions), len(mapped.rejected)) == (
        729, 728, 7, 1)
    [(where, reason)] = mapped.rejected
    assert where == "scanner_performance.csv record 321" and "(got 'ORCLpD')" in reason
    first = candidates[0]  # scanned 2026-02-09, before the first recorded weight change
    assert (first.schema_version, first.scoring_model.version) == (2, "before-3.2_explosive")
    assert (first.raw_score.value, first.raw_score.high) == (float(rows[0]["scanner_score"]),
                                                             230.0)
    by_version = {c.scoring_model.version for c in candidates}
    assert by_version == {"before-3.2_explosive", "3.2_explosive", "3.3.1"}
    assert {c.scoring_model.version for c in candidates
            if c.occurred_at.date() >= datetime(2026, 2, 27).date()} == {"3.3.1"}
    assert first.occurred_at == datetime(2026, 2, 9, 21, 23, 43, tzinfo=UTC)  # 13:23:43 PST
    assert sum(c.passed for c in candidates) == 7  # the picks entered
    rig = next(d for d in decisions if d.symbol == "RIG")
    assert (rig.decision_type, rig.label, rig.entry_price, rig.confidence_score) == (
        "BUY", "entered", 5.345, None)
    assert rig.decision_id == "amc-scan:RIG:2026-02-10" and "Earnings beat" in rig.reasoning
    for event in mapped.events:  # what the persist consumer will read back
        assert decode_event(event.model_dump_json().encode()) == event
    again = amc_trader.scan_history(rows, versions=_versions())
    assert [e.event_id for e in again.events] == [e.event_id for e in mapped.events]


def test_a_malformed_row_is_one_rejection_with_its_reason_never_a_crash():
    rows = _scan_rows()[:3]
    broken = [{**rows[0], "scanner_score": "lots"}, {k: v for k, v in rows[1].items()
                                                      if k != "symbol"},
              {**rows[2], "scan_time": "25:99:00"}]
    mapped = amc_trader.scan_history(broken)
    assert mapped.events == [] and [r for _, r in mapped.rejected] == [
        "scanner_score: no number in 'lots'", "no field 'symbol'",
        "not a time of day: '25:99:00'"]


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
    assert (candidate.features["float_shares"], candidate.features["squeeze_dtc"],  # text
            candidate.features["market_cap"], candidate.features["momentum_pct"]) == (
        pytest.approx(35.8e6), 3.9, pytest.approx(44e6), 0.0)
    assert candidate.raw_score.value == 120 and candidate.occurred_at == written
    assert len(mapped.rejected) == 1 and "symbol" in mapped.rejected[0][1]


#: Per file of the vendored AMC-Trader shapes: records read, events made, rejections by
#: reason. An entered pick, a closed position: two events from one record.
ACCOUNTS = {
    "scanner_performance.csv": (729, 735, {"got 'ORCLpD'": 1}),
    "diamonds.json": (1, 1, {}),
    "closed_positions.json": (3, 6, {}),
    "learning_log.json": (1, 1, {}),
    "portfolio_tracking.csv": (17, 17, {}),
    "d5_direct_discovery.json": (4, 4, {}),
    "d8_alphastack41_api_candidates.json": (3, 3, {}),
    "r1_memory_trade_log.json": (4, 4, {}),
    "r4_alpaca_orders_as_consumed.json": (3, 0, {"filled_at: missing": 2,
                                                  "a position": 1}),
    "r5_closed_positions_and_test_trades.json": (4, 5, {}),
    "t1_position_thesis_enhanced.json": (3, 3, {}),
    "t3_learning_decisions_rows.json": (3, 2, {"price_at_decision: 0.0 is no price": 1}),
    "t4_openclaw_rig_recommendation.json": (1, 2, {}),
    "scanner_weights.json": (1, 0, {"the scanner's parameters (read for its versions)": 1}),
    "weight_history.json": (1, 0, {"the scanner's parameters (read for its versions)": 1}),
}


def test_every_vendored_file_is_accounted_for_record_by_record():
    imported = read_amc_trader([FIXTURES, FIXTURES / "payloads"])
    files = imported.summary()["files"]
    assert {n for n, f in files.items() if f["read"]} == set(ACCOUNTS)
    for name, (read, events, rejected) in ACCOUNTS.items():
        figures = files[name]
        assert (figures["read"], figures["events"]) == (read, events), name
        reasons = figures["rejected"]
        assert sum(reasons.values()) == sum(rejected.values()), (name, reasons)
        for part, n in rejected.items():
            assert sum(v for r, v in reasons.items() if part in r) == n, (name, reasons)
    for name in ("scanner_weights.json", "weight_history.json"):
        assert "3.2_explosive (from 2026-02-21, points up to 305)" in files[name]["used"]
    # the recommendation and the NVDA closed position were read from another file too
    assert files["t4_openclaw_rig_recommendation.json"]["already_read"] == 2
    assert files["r5_closed_positions_and_test_trades.json"]["already_read"] == 2
    ids = [e.event_id for e in imported.events]
    assert len(ids) == len(set(ids)) == 779
    again = read_amc_trader([FIXTURES, FIXTURES / "payloads"])
    assert [e.event_id for e in again.events] == ids


def test_two_files_that_contradict_each_other_or_log_one_decision_twice_are_findings():
    found = read_amc_trader([FIXTURES, FIXTURES / "payloads"]).summary()["quality"]
    [conflict] = [q for q in found if q["kind"] == "conflict"]
    assert conflict["detail"] == ("ENSC on 2026-02-27: BUY (entered) in "
                                  "scanner_performance.csv; IGNORE (CANCELLED) in "
                                  "learning_log.json")
    twice = {q["detail"] for q in found if q["kind"] == "logged_twice"}
    assert twice == {"RIG on 2026-02-10: BUY (entered) in scanner_performance.csv; "
                     "BUY (buy) in t3_learning_decisions_rows.json"}


def test_the_dead_factor_columns_are_flagged_and_live_ones_are_not():
    summary = read_amc_trader(FIXTURES).summary()
    stuck = {q["field"] for q in summary["quality"] if q["kind"] == "stuck"}
    assert {"float_score", "momentum_score", "volume_score", "catalyst_score",
            "multiday_score"} <= stuck
    assert "scanner_score" not in stuck and "price_at_scan" not in stuck


def test_a_score_beyond_its_versions_scale_is_a_finding_of_that_version(tmp_path):
    rows = _scan_rows()
    early = next(i for i, r in enumerate(rows) if r["scan_date"] < "2026-02-21")
    rows[early]["scanner_score"] = "290"  # possible for 3.2 (up to 305), not before (230)
    folder = tmp_path / "data"
    folder.mkdir()
    with (folder / "scanner_performance.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for name in ("scanner_weights.json", "weight_history.json"):
        (folder / name).write_text((DATA / name).read_text())
    [finding] = [q for q in read_amc_trader(tmp_path).summary()["quality"]
                 if q["kind"] == "out_of_scale"]
    assert finding["scoring_model"] == "amc-scanner before-3.2_explosive"
    assert finding["field"] == "raw_score" and "290" in finding["detail"]


def test_a_file_that_is_not_json_is_listed_as_unreadable_and_others_still_import(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "scanner_weights.json").write_text("[1, 2")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "odd.json").write_text(json.dumps({"records": [{"what": 1}, "text"]}))
    (tmp_path / "d5.json").write_text((FIXTURES / "payloads" / "d5_direct_discovery.json")
                                      .read_text())
    files = read_amc_trader(tmp_path).summary()["files"]
    assert "Expecting property name" in files["broken.json"]["unreadable"]
    assert files["notes.txt"]["not_mapped"] == "text, not a table of records (1 line)"
    assert files["odd.json"]["read"] == 2 and files["odd.json"]["events"] == 0
    assert set(files["odd.json"]["rejected"]) == {
        "a record of no known shape (keys ['what'])", "a record of no known shape (keys str)"}
    assert files["d5.json"]["events"] == 4
    assert "unreadable" in files["scanner_weights.json"]


def test_alphastack_candidates_keep_their_0_100_scale_and_fill_the_six_scores():
    written = datetime(2026, 3, 6, 16, tzinfo=UTC)
    mapped = amc_backend.alphastack(_payload("d8_alphastack41_api_candidates.json"),
                                    written_at=written)
    lgn, opi, serv = mapped.events
    assert (lgn.scoring_model.name, lgn.scoring_model.version) == ("alphastack", "4.1")
    assert lgn.raw_score.value == 78.4 and lgn.composite_score == pytest.approx(0.784)
    assert lgn.components["squeeze"].value == 62.5 and lgn.scores.squeeze == 0.625
    assert (lgn.passed, opi.passed, serv.passed) == (True, False, False)
    assert "market_cap_m" not in lgn.features and opi.features["market_cap_m"] == 38.7
    assert serv.flags == ["low_confidence"] and [c.rank for c in mapped.events] == [1, 2, 3]


def test_the_backends_own_decisions_keep_their_labels_and_refuse_a_zero_price():
    rows = amc_backend.learning_rows(_payload("t3_learning_decisions_rows.json"))
    rig, kss = rows.events
    assert (rig.decision_type, rig.label, rig.confidence_score, rig.targets) == (
        "BUY", "buy", 0.7, [6.91])
    assert rig.occurred_at == datetime(2026, 2, 10, 19, 46, tzinfo=UTC)  # naive UTC
    assert (kss.decision_type, kss.decision_source, kss.market_time) == (
        "SELL", "thesis", "regular")
    assert rows.rejected == [("learning_decisions row 3",
                              "price_at_decision: 0.0 is no price")]
    theses = amc_backend.position_thesis(_payload("t1_position_thesis_enhanced.json"),
                                         written_at=datetime(2026, 3, 6, tzinfo=UTC))
    labels = [(t.symbol, t.decision_type, t.label, t.entry_price) for t in theses.events]
    assert labels == [("AMDL", "HOLD", "hold", 8.45), ("CARS", "HOLD", "hold", 15.2),
                      ("KSS", "BUY", "increase", 18.75)]


def test_positions_closed_held_and_tested_become_fills_and_holds():
    closed = amc_positions.closed_positions(json.loads(
        (DATA / "closed_positions.json").read_text()))
    entry, exit_ = closed.events[:2]
    assert (entry.fill_type, exit_.fill_type, exit_.exit_reason) == ("ENTRY", "EXIT", "manual")
    assert entry.trade_id == exit_.trade_id and exit_.provenance["exit_reason"]
    tests = amc_positions.scanner_test_trades(
        _payload("r5_closed_positions_and_test_trades.json")[1:3])
    cflt = tests.events[0]
    assert (cflt.mode, cflt.quantity) == ("paper", 3.0)
    assert cflt.occurred_at == datetime(2026, 2, 3, 20, 17, tzinfo=UTC)  # 12:17 PM PT
    with (DATA / "portfolio_tracking.csv").open(newline="") as f:
        held = amc_positions.portfolio(list(csv.DictReader(f)))
    cflt = held.events[0]
    assert (cflt.decision_type, cflt.entry_price, cflt.targets) == ("HOLD", 30.76,
                                                                    [39.59, 45.67])
    uuuu = held.events[-1]
    assert uuuu.symbol == "UUUU" and uuuu.discovery_features["unrealized_pl_pct"] == -7.4


def test_a_cancelled_order_is_an_ignore_priced_from_the_scan_of_its_day():
    lesson = json.loads((DATA / "learning_log.json").read_text())["manual_lessons"]
    [ensc] = amc_trader.lessons(lesson, scanned={("ENSC", "2026-02-27"): 0.621}).events
    assert (ensc.decision_type, ensc.label, ensc.entry_price) == ("IGNORE", "CANCELLED",
                                                                   0.621)
    assert ensc.discovery_features == {"score": 144.0}
    unpriced = amc_trader.lessons(lesson)
    assert unpriced.rejected == [("learning_log.json lesson 1",
                                  "no price: the scan history has no ENSC on '2026-02-27'")]


def test_the_trade_log_fills_enter_the_scan_historys_entered_picks():
    records = json.loads((FIXTURES / "payloads" / "r1_memory_trade_log.json").read_text())[
        "records"]
    mapped = amc_positions.trade_log([*records, {"file": "memory/2026-03-05.md",
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
