"""The import reads a producer's files by what they hold, never by their names: every
scanner generation AMC-Trader has had, its positions, at any depth, every record
accounted for (`tests/fixtures/amc_trader/generations/README.md` says where each shape
was found)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.trades import TradeFilled
from amc_learning.service.imports import explain, read_amc_trader

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader"
DATA = FIXTURES / "data"
GENERATIONS = FIXTURES / "generations"
#: one whole second, so a time written as a scan's date and time equals the file's own
WRITTEN = datetime(2026, 2, 12, 22, 15, 7, tzinfo=UTC).timestamp()
#: the scan history's columns the adapter never reads: a checkout may lack any of them
UNREAD = ("notes", "outcome", "spy_return", "alpha", "sector_return", "hold_days",
          "return_pct", "return_dollars", "exit_date", "exit_price")


def _sources() -> list[Path]:
    return sorted(DATA.iterdir()) + sorted(p for p in GENERATIONS.iterdir()
                                           if p.suffix in (".json", ".csv"))


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    os.utime(target, (WRITTEN, WRITTEN))


def _comparable(imported) -> list[dict]:
    """The events without their provenance (a time read from a scan object says so)."""
    return sorted((e.model_dump(mode="json", exclude={"provenance"}) for e in imported.events),
                  key=lambda e: e["event_id"])


def _accounted(imported) -> None:
    for name, figures in imported.summary()["files"].items():
        if "read" in figures and "mapped" in figures:
            assert figures["mapped"] + sum(figures["rejected"].values()) == figures["read"], name


def test_a_checkout_the_importer_has_never_seen_gives_the_same_events(tmp_path):
    """Every file renamed (names and endings that say nothing); the scan history with the
    columns it never reads removed and the rest in reverse order; the current scanner's
    picks wrapped in a scan object with its date and time; the closed positions keyed by
    symbol."""
    originals, unseen = tmp_path / "originals", tmp_path / "unseen"
    originals.mkdir()
    unseen.mkdir()
    for source in _sources():
        _copy(source, originals / source.name)
    for i, source in enumerate(_sources()):
        target = unseen / f"export_{i:02d}.dat"
        if source.name == "scanner_performance.csv":
            with source.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            columns = [c for c in reversed(list(rows[0])) if c not in UNREAD]
            with target.open("w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        elif source.name == "diamonds.json":
            local = datetime.fromtimestamp(WRITTEN, ZoneInfo("America/Los_Angeles"))
            target.write_text(json.dumps({
                "scan_date": f"{local:%Y-%m-%d}", "scan_time": f"{local:%H:%M:%S}",
                "gates": {"threshold": 60}, "candidates": json.loads(source.read_text())}))
        elif source.name == "closed_positions.json":
            target.write_text(json.dumps({r.pop("symbol"): r
                                          for r in json.loads(source.read_text())}))
        else:
            shutil.copyfile(source, target)
        os.utime(target, (WRITTEN, WRITTEN))

    before, after = read_amc_trader(originals), read_amc_trader(unseen)
    assert len(before.events) > 750
    assert _comparable(after) == _comparable(before)
    assert after.read == before.read
    assert after.rejected == before.rejected
    _accounted(before)
    _accounted(after)
    scan = next(f for n, f in after.summary()["files"].items()
                if f.get("shapes", {}).get("scan row", 0) > 700)
    assert "extra" not in scan["columns"]
    assert set(scan["columns"]["missing_optional"]) == set(UNREAD)


def _import(*names: str):
    return read_amc_trader([GENERATIONS / n for n in names] + [DATA / "scanner_weights.json"])


def _candidates(imported) -> dict[str, CandidateScored]:
    return {e.symbol: e for e in imported.events if isinstance(e, CandidateScored)}


def test_the_first_scanners_picks_keep_their_four_factors_points_and_tiers():
    picks = _candidates(_import("v1_picks.json"))
    qrst = picks["QRST"]
    assert (qrst.scoring_model.name, qrst.scoring_model.version) == ("amc-scanner", "1")
    assert (qrst.raw_score.value, qrst.raw_score.high) == (97, 200)
    assert {k: (c.value, c.high) for k, c in qrst.components.items()} == {
        "volume": (20, 20), "squeeze": (40, 50), "catalyst": (25, 30), "momentum": (12, 15)}
    assert (qrst.tiers["momentum"].tier, qrst.tiers["momentum"].points) == ("starting", 12)
    assert "momentum" in picks["LMNO"].components and "momentum" not in picks["LMNO"].tiers
    assert (qrst.rank, picks["LMNO"].rank) == (1, 2)


@pytest.mark.parametrize(("name", "tiers"), [
    ("v3_picks_2026-02-13.json", {"float": "very_low", "momentum": "perfect"}),
    ("v3_picks_2026-02-22.json", {"float": "ultra_tiny", "squeeze": "extreme_squeeze"}),
])
def test_every_3x_generation_of_picks_is_the_points_scanners(name, tiers):
    [first, *_] = sorted(_candidates(_import(name)).values(), key=lambda c: c.rank)
    assert first.scoring_model.name == "amc-scanner" and first.scoring_model.version == "3.3.1"
    assert {k: first.tiers[k].tier for k in tiers} == tiers


def test_a_v4_scan_object_gives_its_candidates_its_time_and_version():
    imported = _import("v4_swing_scan.json")
    picks = _candidates(imported)
    mnop = picks["MNOP"]
    assert (mnop.scoring_model.name, mnop.scoring_model.version) == ("amc-scanner", "V4_SWING")
    assert mnop.occurred_at == datetime(2026, 2, 12, 0, 2, 10, tzinfo=UTC)  # 16:02:10 PT
    assert (mnop.components["stealth_accumulation"].value,
            mnop.components["stealth_accumulation"].high) == (30.1, 40)
    assert mnop.attributes["letter_tier"] == "A"
    assert mnop.features["explosion_probability"] == pytest.approx(0.725)
    assert [picks[s].rank for s in ("MNOP", "TUVW", "XYZA")] == [1, 2, 3]
    assert mnop.run_id == picks["XYZA"].run_id == "amc-v4-2026-02-11T16:02:10"


def test_the_squeeze_and_market_scanners_import_as_undeclared_models():
    picks = _candidates(_import("squeeze_results.json", "production_scan_results.json",
                                "squeeze_candidates.json"))
    assert {s: (c.scoring_model.name, c.raw_score.high) for s, c in picks.items()} == {
        "EFGH": ("amc-squeeze-scanner", 100), "IJKL": ("amc-squeeze-scanner", 100),
        "MNQR": ("amc-squeeze-scanner", 100), "STUV": ("amc-full-market-scanner", 100),
        "WXAB": ("amc-full-market-scanner", 100)}
    assert picks["EFGH"].features["float_shares"] == 18_400_000
    assert picks["IJKL"].attributes["catalyst"] == "Contract award announced"
    assert picks["STUV"].attributes["reason"].startswith("High short interest")


def test_both_older_scan_history_loggers_import_with_their_columns_reported():
    imported = _import("scan_history_2026-02-13.csv", "scan_history_2026-02-21.csv")
    files = imported.summary()["files"]
    assert files["scan_history_2026-02-13.csv"]["columns"]["missing_optional"] == [
        "vigl_bonus", "vigl_match", "rvol", "spy_return", "alpha", "sector_return"]
    assert files["scan_history_2026-02-21.csv"]["columns"]["missing_optional"] == [
        "spy_return", "alpha", "sector_return"]
    assert len(_candidates(imported)) == 5
    [entered] = [e for e in imported.events if not isinstance(e, CandidateScored)]
    assert (entered.decision_id, entered.entry_price) == ("amc-scan:NOPQ:2026-02-05", 6.15)


def test_positions_partial_exits_are_fills_and_marks_and_states_are_counted_refusals():
    imported = _import("exit_state.json", "scaled_positions.json", "ghost_portfolio.json",
                       "midday_check.json", "portfolio_daily_log.csv",
                       "allocation_history.json", "fast_scan_results.json",
                       "daily_cost.json", "market_cap_cache.json")
    files = imported.summary()["files"]
    fills = sorted((e.fill_id, e.fill_type, e.price) for e in imported.events
                   if isinstance(e, TradeFilled))
    # the scale-out priced from the entry price another file holds (ghost: 4.00 x 1.215)
    assert fills == [("amc:LMNP:sale:2026-02-10", "PARTIAL_EXIT", 4.86),
                     ("amc:LMNP:scale-out:2026-02-10", "PARTIAL_EXIT", 4.86)]
    assert files["scaled_positions.json"]["rejected"] == {
        "entry price: missing (no file of this import holds one for QQRS), and a scale-out "
        "states only the gain": 1}
    refused = {name: (f["read"], set(f["rejected"])) for name, f in files.items()
               if f.get("mapped") == 0}
    assert refused == {
        "exit_state.json": (3, {"a position's state (its gains so far), not a decision or "
                                "fill"}),
        "midday_check.json": (2, {"a position mark, not a decision or fill"}),
        "portfolio_daily_log.csv": (5, {"a position mark, not a decision or fill",
                                        "a row of 7 fields under a header of 8"}),
        "allocation_history.json": (2, {"an allocation names an amount, not a price: price "
                                        "missing"}),
        "fast_scan_results.json": (3, {"a screen's row (price, volume, change): no score to "
                                       "learn from"}),
        "daily_cost.json": (1, {"a record of no known shape (keys ['calls', 'date', "
                                "'total_cost'])"}),
        "market_cap_cache.json": (3, {"values by symbol that are not records (numbers: a "
                                      "cache)"}),
        "scanner_weights.json": (1, {"a change of the scanner's parameters (read for its "
                                     "versions), not an event"}),
    }
    _accounted(imported)


def _independent_count(folder: Path) -> int:
    """Data rows of every CSV; elements of a top-level list, of the lists an object holds
    at its top level, or of a dict keyed by symbol (not counting one metadata key)."""
    total = 0
    for file in folder.iterdir():
        text = file.read_text(encoding="utf-8")
        if file.suffix == ".csv":
            total += sum(1 for row in csv.reader(text.splitlines(keepends=True)) if row) - 1
            continue
        value = json.loads(text)
        if isinstance(value, list):
            total += len(value)
        elif lists := [v for v in value.values() if isinstance(v, list)]:
            total += sum(len(v) for v in lists)
        else:
            total += len([k for k in value if k.isupper()]) or 1
    return total


def test_the_vendored_folders_read_is_every_row_and_list_element_in_it():
    for folder in (DATA,):
        assert read_amc_trader(folder).read == _independent_count(folder) > 750


def test_explain_says_where_the_records_are_and_which_fields_matched():
    lines = explain(GENERATIONS / "v4_swing_scan.json")
    assert lines[0] == "v4_swing_scan.json: JSON"
    assert '  3 records in key "candidates" (wrapper)' in lines
    assert any(line.startswith("    each inherits scan_date='2026-02-11', scan_time='16:02:10'")
               for line in lines)
    assert ("    3 V4 swing candidate: fields total_score, components, symbol matched; mapped"
            in lines)
    cache = explain(GENERATIONS / "market_cap_cache.json")
    assert cache[1:] == ["  3 records in 3 keys that are symbols (keyed)",
                         "    values by symbol that are not records (numbers: a cache)"]
    readme = explain(GENERATIONS / "README.md")
    assert readme[0].startswith("README.md: not mapped (text, not a table of records (")


def test_every_imported_scoring_model_is_watched_for_broken_fields(tmp_path):
    """A V4 scan whose relative volume is 1.0 on every candidate (as the real scan's is)."""
    scan = json.loads((GENERATIONS / "v4_swing_scan.json").read_text())
    template = scan["candidates"][1]
    scan["candidates"] = [{**template, "symbol": f"S{chr(65 + i // 26)}{chr(65 + i % 26)}",
                           "total_score": 40 + i / 2, "change_pct": (i % 7) - 3.0}
                          for i in range(40)]
    (tmp_path / "scan.json").write_text(json.dumps(scan))
    found = read_amc_trader(tmp_path).summary()["quality"]
    assert {(q["scoring_model"], q["field"], q["kind"]) for q in found} >= {
        ("amc-scanner V4_SWING", "rvol", "stuck")}
    assert not any(q["field"] in ("raw_score", "change_pct") for q in found)


def test_the_cli_explains_a_file_and_its_summary_starts_with_what_it_saw():
    run = [sys.executable, "-m", "amc_learning.cli", "import", "amc-trader"]
    explained = subprocess.run([*run, str(GENERATIONS / "exit_state.json"), "--explain"],
                               capture_output=True, text=True, timeout=120, check=False)
    assert explained.returncode == 0, explained.stderr
    assert "3 records in 3 keys that are symbols (keyed)" in explained.stdout
    dry = subprocess.run([*run, str(DATA), "--dry-run"], capture_output=True, text=True,
                         timeout=120, check=False)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == (f"saw 7 files holding "
                                          f"{_independent_count(DATA):,} records")


def _bar(n: int, **changes) -> dict:
    return {"event_type": "price_bar_closed", "event_id": f"6f1c7e6e-1111-4c1d-9a1e-{n:012d}",
            "occurred_at": "2026-07-02T20:00:00Z", "producer": "vendor", "symbol": "AAA",
            "session": "2026-07-02", "open": 1, "high": 2, "low": 0.5, "close": 1.5,
            "volume": 10, **changes}


def test_contract_events_from_lines_or_an_array_are_validated_as_the_api_does(tmp_path):
    from amc_learning.service.event_files import read_events

    lines = tmp_path / "events.jsonl"
    lines.write_text("\n".join([json.dumps(_bar(1)), json.dumps(_bar(2, high=0.2)),
                                "not json", "", json.dumps([1]),
                                json.dumps(_bar(3, session="July 2nd"))]) + "\n")
    array = tmp_path / "events.json"
    array.write_text(json.dumps([_bar(4), _bar(5, producer=None)]))
    imported = read_events([lines, array], producer=None)
    files = imported.summary()["files"]
    assert (files["events.jsonl"]["read"], files["events.jsonl"]["mapped"]) == (5, 1)
    assert set(files["events.jsonl"]["rejected"]) == {
        "price_bar_closed: Value error, bar must satisfy low <= open, close <= high",
        "not JSON (Expecting value: line 1 column 1 (char 0))", "an event is a JSON object",
        "price_bar_closed.session: Input should be a valid date in the format YYYY-MM-DD, "
        "input is too short"}
    assert files["events.json"]["rejected"] == {
        "price_bar_closed.producer: Input should be a valid string": 1}
    renamed = read_events([array], producer="my-scanner")
    assert [e.producer for e in renamed.events] == ["my-scanner", "my-scanner"]
