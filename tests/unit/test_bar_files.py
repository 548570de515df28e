"""Bars from files (`prices import`): the long and the wide shape, every row accounted for."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from amc_learning.adapters.bar_files import BarFileError, read_bar_file
from amc_learning.intelligence import calendar

#: 2026-07-02 .. 2026-07-08: the 3rd is the observed Independence Day (the 4th a Saturday)
LONG = """Ticker,Date,Open,High,Low,Close,Volume,Split_Ratio,Source
AAA,2026-07-02,10.0,11.0,9.5,10.5,1000,,vendor
AAA,2026-07-03,10.5,11.0,10.0,10.8,1100,,vendor
AAA,2026-07-06,5.40,5.60,5.20,5.50,2300,2.0,vendor
AAA,2026-07-06,5.40,5.60,5.20,5.50,2300,2.0,vendor
AAA,2026-07-07,-5.0,5.60,5.20,5.55,2100,,vendor
AAA,2026-07-08,5.50,5.70,5.40,5.60,1900,,vendor
BBB,2026-07-02,20.0,20.5,19.5,20.2,500,,vendor
BBB,2026-07-06,20.2,21.0,20.0,20.9,700,,vendor
BBB,2026-07-07,20.9,21.2,20.5,21.0,650,,vendor
BBB,2026-07-08,21.0,21.5,20.8,21.4,600,,vendor
"""
#: the same market as adjusted closes, a column a symbol
WIDE = """date,AAA,BBB
2026-07-02,5.25,20.2
2026-07-03,5.40,20.3
2026-07-06,5.50,20.9
2026-07-06,5.50,20.9
2026-07-07,,21.0
2026-07-08,5.60,-21.4
"""


def _read(text: str, tmp_path, **kw):
    path = tmp_path / "bars.csv"
    path.write_text(text)
    return read_bar_file(pl.read_csv(path, infer_schema=False), sessions=calendar.sessions,
                         closes=calendar.close_of, **kw)


def test_a_long_file_maps_its_columns_and_accounts_for_every_row(tmp_path):
    read = _read(LONG, tmp_path, columns={"Ticker": "symbol"})
    assert read.shape == "long" and read.rows == 10
    assert len(read.bars) + len(read.rejected) == read.rows
    assert sorted((b.symbol, str(b.session)) for b in read.bars) == [
        ("AAA", "2026-07-02"), ("AAA", "2026-07-06"), ("AAA", "2026-07-08"),
        ("BBB", "2026-07-02"), ("BBB", "2026-07-06"), ("BBB", "2026-07-07"),
        ("BBB", "2026-07-08")]
    assert dict(read.rejected) == {
        "line 3": "2026-07-03 is not a trading session (a weekend or an exchange holiday)",
        "line 5": "a second row for AAA on 2026-07-06: the first is kept",
        "line 6": "open: -5 is not a positive price"}
    [split] = [b for b in read.bars if b.split_ratio]
    assert (split.symbol, split.session, split.split_ratio, split.schema_version) == (
        "AAA", date(2026, 7, 6), 2.0, 2)
    assert read.notes == ["columns not read: Source"]


def test_a_wide_file_is_closes_of_every_symbol_with_volume_unknown(tmp_path):
    read = _read(WIDE, tmp_path)
    assert read.shape == "wide" and read.rows == 6
    bars = {(b.symbol, str(b.session)): b for b in read.bars}
    assert set(bars) == {("AAA", "2026-07-02"), ("BBB", "2026-07-02"), ("AAA", "2026-07-06"),
                         ("BBB", "2026-07-06"), ("BBB", "2026-07-07"), ("AAA", "2026-07-08")}
    aaa = bars[("AAA", "2026-07-02")]
    assert (aaa.open, aaa.high, aaa.low, aaa.close, aaa.volume) == (5.25, 5.25, 5.25, 5.25, 0)
    assert dict(read.rejected) == {
        "line 3": "2026-07-03 is not a trading session (a weekend or an exchange holiday)",
        "line 5": "a second row for 2026-07-06: the first is kept",
        "line 7 BBB": "BBB: -21.4 is not a positive price"}
    assert "volume unknown (0)" in read.notes[0]


def test_the_same_bar_has_the_same_id_in_both_shapes_and_in_a_sync(tmp_path):
    from amc_learning.intelligence.prices import RawBar, bar_events

    long = {(b.symbol, b.session): b.event_id
            for b in _read(LONG, tmp_path, columns={"Ticker": "symbol"}).bars}
    wide = {(b.symbol, b.session): b.event_id for b in _read(WIDE, tmp_path).bars}
    assert {k: long[k] for k in wide if k in long} == {k: wide[k] for k in wide if k in long}
    [synced], _, _ = bar_events("AAA", [date(2026, 7, 2)], [RawBar(
        date(2026, 7, 2), 10.0, 11.0, 9.5, 10.5, 1000.0)], {}, producer="market-data-alpaca",
        closes=calendar.close_of, pending=date(2026, 7, 8))
    assert synced.event_id == long[("AAA", date(2026, 7, 2))]


def test_a_file_of_neither_shape_says_what_it_needs(tmp_path):
    with pytest.raises(BarFileError, match="needs the columns symbol, date, open"):
        _read("symbol,close\nAAA,1\n", tmp_path, shape="long")
    with pytest.raises(BarFileError, match="needs a date column"):
        _read("when,AAA\n2026-07-02,1\n", tmp_path)
