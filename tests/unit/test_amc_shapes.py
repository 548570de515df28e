"""The simulated trading side written as AMC-Trader writes, and read back by the adapters:
the facts the simulator planted survive the round trip, within what the shapes can say."""

from __future__ import annotations

from datetime import date

import pytest

from amc_learning.entrypoints.feeds import AMC_SCANNER, SCANNER, AmcTraderFeed
from amc_learning.simulator import amc_shapes
from amc_learning.simulator.world import SimConfig, World, simulate


@pytest.fixture(scope="module")
def sessions() -> list[list]:
    config = SimConfig(seed=5, symbols=40, start=date(2014, 3, 3), days=12)
    return list(simulate(config, world=World(config, scanner=SCANNER)))


def test_every_record_reads_back_and_only_bars_and_news_pass_as_they_are(sessions):
    feed = AmcTraderFeed()
    for events in sessions:
        mapped = feed(events)
        rendered = [e for e in events if amc_shapes.render(e) is not None]
        assert len(mapped) == len(events)
        assert {e.event_type for e in events} - {e.event_type for e in mapped} == set()
        assert all(e.schema_version == 2 for e in mapped
                   if e.event_type in ("candidate_scored", "thesis_decided", "trade_filled"))
        assert sum(1 for e in mapped if e.event_type in (
            "candidate_scored", "thesis_decided", "trade_filled")) == len(rendered)
    assert feed.account.read > 0 and feed.account.rejected == []


def test_a_candidate_keeps_its_score_on_the_points_scale_and_its_tiers(sessions):
    candidates = [e for day in sessions for e in day if e.event_type == "candidate_scored"]
    original = candidates[0]
    row = amc_shapes.scan_row(original)
    assert all(isinstance(v, str) for v in row.values())  # every value a string
    [read] = AmcTraderFeed()([original])
    assert read.scoring_model == AMC_SCANNER.model == original.scoring_model
    assert read.raw_score.value == float(row["scanner_score"]) == original.raw_score.value
    assert read.composite_score == pytest.approx(original.composite_score, abs=1e-6)
    assert {f: t.tier for f, t in read.tiers.items()} == {
        f: t.tier for f, t in original.tiers.items()}  # every factor's tier, as sent
    assert all(read.tiers[f].points == t.points for f, t in original.tiers.items())
    # the net score is the sum of the tiers' points (no bonus is planted)
    assert all(sum(t.points for t in c.tiers.values()) == c.raw_score.value
               for c in candidates)
    assert any(t.points < 0 for c in candidates for t in c.tiers.values())  # penalties
    assert read.passed == original.passed and read.price == original.price
    assert read.features["news_sentiment"] == original.features["sentiment"]
    assert row["scan_time"] == "06:30:00" or row["scan_time"] == "05:30:00"  # naive Pacific


def test_decisions_keep_their_label_params_and_fills_their_decision_and_exit(sessions):
    events = [e for day in sessions for e in day]
    decisions = {e.decision_id: e for e in events if e.event_type == "thesis_decided"}
    fills = [e for e in events if e.event_type == "trade_filled"]
    feed = AmcTraderFeed()
    mapped = [m for day in sessions for m in feed(day)]
    read = {m.decision_id: m for m in mapped if m.event_type == "thesis_decided"}
    assert len(read) == len(decisions)
    for decision_id, original in decisions.items():
        back = read[f"{amc_shapes.ROW_PREFIX}{decision_id}"]
        assert back.decision_type == original.decision_type
        assert back.label in (amc_shapes.LABELS[original.decision_type],
                              amc_shapes.HELD_LABELS[original.decision_type])
        assert back.confidence_score == original.confidence_score
        assert back.entry_price == original.entry_price
        assert back.occurred_at == original.occurred_at
        assert (back.params_version, back.params_mode) == (original.params_version,
                                                           original.params_mode)
    back_fills = {m.fill_id: m for m in mapped if m.event_type == "trade_filled"}
    assert fills and len(back_fills) == len(fills)
    for original in fills:
        back = back_fills[original.fill_id]
        assert back.decision_id == f"{amc_shapes.ROW_PREFIX}{original.decision_id}"
        assert (back.fill_type, back.side, back.price, back.exit_reason) == (
            original.fill_type, original.side, original.price, original.exit_reason)


def test_a_decision_on_a_symbol_held_is_labelled_as_amc_trader_labels_it(sessions):
    feed = AmcTraderFeed()
    labels = {m.label for day in sessions for m in feed(day) if m.event_type == "thesis_decided"}
    assert labels >= {"BUY", "BUY_MORE"}  # the simulator decides on symbols it holds too
    acting = [e for day in sessions for e in day
              if e.event_type == "thesis_decided" and e.decision_type in ("BUY", "SELL")]
    for decision in acting[:4]:
        [more] = AmcTraderFeed(held={decision.symbol})([decision])
        assert more.decision_type == decision.decision_type
        assert (more.label, more.size_change_pct) == (
            ("BUY_MORE", None) if decision.decision_type == "BUY" else ("TRIM_50", -50.0))
