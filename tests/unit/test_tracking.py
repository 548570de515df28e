"""Outcome tracking on hand-computed price paths: returns, excursions, volatility, exits,
thesis scoring, counterfactuals, and the disorder rules."""

from __future__ import annotations

import math
import random
import statistics
from datetime import UTC, date, datetime, timedelta

import pytest

from amc_learning.intelligence.measures import realized_volatility
from amc_learning.intelligence.tracking import (
    SymbolState,
    TrackerConfig,
    apply,
    low_watermark,
    never_decided_id,
    outcome,
    outcomes,
    prune,
    updates,
)
from tests import factories

CFG = TrackerConfig(horizons=(1, 2, 3), max_track_sessions=10, retention_days=30)
D0 = date(2024, 3, 4)  # a Monday
#: (open, high, low, close, volume) of three sessions after an entry at 100.
PATH = [(100, 104, 98, 102, 1000), (102, 103, 95, 96, 2000), (96, 110, 96, 108, 3000)]


def session(i: int) -> date:
    return D0 + timedelta(days=i)


def bars(path=PATH, first=0):
    return [factories.bar(session=session(first + i), open=o, high=h, low=lo, close=c,
                          volume=v)
            for i, (o, h, lo, c, v) in enumerate(path)]


def decision(decision_type="BUY", **thesis):
    expectation = {"expected_direction": "UP", "horizon_days": 2, "target_price": None,
                   "stop_price": None, "expected_catalyst": None, "catalyst_window_days": None,
                   "expected_volume_ratio": None, **thesis}
    return factories.thesis(
        decision_id="dec-1", decision_type=decision_type, entry_price=100.0,
        position_size_pct=0.0 if decision_type in ("HOLD", "IGNORE") else 2.0,
        occurred_at=datetime.combine(D0, datetime.min.time(), UTC) + timedelta(hours=14),
        thesis=expectation,
    )


def track(*facts, cfg=CFG):
    state = SymbolState()
    for fact in facts:
        apply(state, fact)
    return state


def test_buy_returns_excursions_and_volatility_on_a_hand_computed_path():
    state = track(decision("BUY"), *bars())
    o = outcome(state, "dec-1", CFG)
    assert o["return_1d"] == pytest.approx(0.02)
    assert o["return_7d"] == pytest.approx(-0.04)  # the second configured horizon: 2 sessions
    assert o["return_30d"] == pytest.approx(0.08)
    assert o["max_favorable_excursion"] == pytest.approx(0.10)  # high 110
    assert o["max_adverse_excursion"] == pytest.approx(-0.05)  # low 95
    logs = [math.log(102 / 100), math.log(96 / 102), math.log(108 / 96)]
    assert o["volatility_realized"] == pytest.approx(statistics.stdev(logs) * math.sqrt(252))
    assert o["return_pct"] == pytest.approx(0.08)
    assert o["sessions_elapsed"] == 3 and o["outcome_type"] == "matured" and o["final"]
    assert o["is_counterfactual"] is False and o["position_closed"] is False


def test_sell_excursions_are_signed_relative_to_the_side():
    o = outcome(track(decision("SELL"), *bars()), "dec-1", CFG)
    assert o["max_favorable_excursion"] == pytest.approx(0.05)  # the low of 95 is a gain
    assert o["max_adverse_excursion"] == pytest.approx(-0.10)  # the high of 110 is a loss
    assert o["return_30d"] == pytest.approx(0.08)  # returns stay raw market moves
    assert o["return_pct"] == pytest.approx(-0.08)  # a short lost 8 %


def test_exit_fill_closes_the_position_and_bounds_the_holding_window():
    entry = factories.fill(decision_id="dec-1", fill_id="f-in", price=100.0,
                           occurred_at=datetime(2024, 3, 4, 14, 40, tzinfo=UTC))
    exit_ = factories.fill(decision_id="dec-1", fill_id="f-out", fill_type="EXIT", side="SELL",
                           price=96.0, exit_reason="stop_loss",
                           occurred_at=datetime(2024, 3, 5, 20, 55, tzinfo=UTC))
    o = outcome(track(decision("BUY"), entry, exit_, *bars()), "dec-1", CFG)
    assert o["position_closed"] is True and o["outcome_type"] == "closed"
    assert (o["exit_price"], o["exit_reason"]) == (96.0, "stop_loss")
    assert o["return_pct"] == pytest.approx(-0.04) and o["days_held"] == 2
    assert o["max_favorable_excursion"] == pytest.approx(0.04)  # session 3's 110 is after exit
    logs = [math.log(102 / 100), math.log(96 / 102)]
    assert o["volatility_realized"] == pytest.approx(statistics.stdev(logs) * math.sqrt(252))
    assert o["return_30d"] == pytest.approx(0.08)  # horizons still measure the market


def test_open_position_keeps_tracking_past_the_longest_horizon():
    entry = factories.fill(decision_id="dec-1", fill_id="f-in", price=100.0)
    state = track(decision("BUY"), entry, *bars(PATH + PATH))
    o = outcome(state, "dec-1", CFG)
    assert o["outcome_type"] == "matured" and not o["final"] and o["sessions_elapsed"] == 6


def test_thesis_accuracy_direction_target_and_stop():
    # UP, judged at 2 sessions: close 96 < 100 (direction 0); best high 104 of a 105 target
    # (0.8 of the way); the 94 stop never touched (1).  (0.5*0 + 0.3*0.8 + 0.2*1) / 1.0
    d = decision("BUY", target_price=105.0, stop_price=94.0)
    assert outcome(track(d, *bars()), "dec-1", CFG)["thesis_accuracy_score"] == pytest.approx(0.44)
    # DOWN with only a direction: right at 2 sessions (96 < 100).
    d = decision("SELL", expected_direction="DOWN")
    assert outcome(track(d, *bars()), "dec-1", CFG)["thesis_accuracy_score"] == 1.0
    # FLAT within the 2 % band fails at -4 %; not judged before the horizon.
    d = decision("HOLD", expected_direction="FLAT")
    assert outcome(track(d, *bars()), "dec-1", CFG)["thesis_accuracy_score"] == 0.0
    assert outcome(track(d, *bars()[:1]), "dec-1", CFG)["thesis_accuracy_score"] is None


def test_volume_pattern_accuracy_against_the_pre_decision_baseline():
    baseline = bars([(100, 100, 100, 100, 1000)] * 5, first=-7)
    d = decision("BUY", expected_volume_ratio=2.0)
    # realised: mean(1000, 2000) / 1000 = 1.5 against 2.0 expected -> 1.5 / 2.0
    o = outcome(track(d, *baseline, *bars()), "dec-1", CFG)
    assert o["volume_pattern_accuracy"] == pytest.approx(0.75)
    thin = outcome(track(d, *baseline[:4], *bars()), "dec-1", CFG)
    assert thin["volume_pattern_accuracy"] is None  # fewer than 5 baseline sessions


def test_catalyst_materialized_only_within_its_window_and_kind():
    d = decision("BUY", expected_catalyst="earnings", catalyst_window_days=2)
    in_window = factories.catalyst(session=session(1), kind="earnings")
    too_late = factories.catalyst(session=session(2), kind="earnings")
    other_kind = factories.catalyst(session=session(0), kind="guidance")
    assert outcome(track(d, in_window, *bars()), "dec-1", CFG)["catalyst_materialized"] is True
    assert outcome(track(d, too_late, other_kind, *bars()), "dec-1",
                   CFG)["catalyst_materialized"] is False
    assert outcome(track(d, too_late, *bars()[:1]), "dec-1", CFG)["catalyst_materialized"] is None


def test_candidates_below_the_threshold_are_tracked_as_counterfactual_ignores():
    below = factories.candidate(passed=False, composite_score=0.5, price=100.0,
                                occurred_at=datetime(2024, 3, 4, 13, 30, tzinfo=UTC))
    passed = factories.candidate(passed=True, run_id="run-2")
    state = track(below, passed, *bars())
    assert list(state.tracked) == [never_decided_id(below)]
    o = outcome(state, never_decided_id(below), CFG)
    assert (o["decision_type"], o["tracked_from"], o["is_counterfactual"]) == (
        "IGNORE", "candidate", True)
    assert o["return_30d"] == pytest.approx(0.08) and o["thesis_accuracy_score"] is None


def test_hold_and_ignore_are_counterfactual_and_measured_as_if_bought():
    for kind in ("HOLD", "IGNORE"):
        o = outcome(track(decision(kind), *bars()), "dec-1", CFG)
        assert o["is_counterfactual"] is True
        assert o["return_pct"] == pytest.approx(0.08)
        assert o["max_adverse_excursion"] == pytest.approx(-0.05)


def test_afterhours_decision_starts_with_the_next_session():
    d = factories.thesis(decision_id="dec-1", entry_price=100.0, market_time="afterhours",
                         occurred_at=datetime(2024, 3, 4, 22, 0, tzinfo=UTC))
    o = outcome(track(d, *bars()), "dec-1", CFG)
    assert o["return_1d"] == pytest.approx(-0.04) and o["sessions_elapsed"] == 2


def test_any_arrival_order_and_duplicates_give_the_same_outcome():
    entry = factories.fill(decision_id="dec-1", fill_id="f-in", price=100.0)
    exit_ = factories.fill(decision_id="dec-1", fill_id="f-out", fill_type="EXIT", side="SELL",
                           price=108.0, exit_reason="profit_target",
                           occurred_at=datetime(2024, 3, 6, 20, 0, tzinfo=UTC))
    facts = [decision("BUY", target_price=105.0), entry, exit_, *bars(), *bars()[:2]]
    expected = outcome(track(*facts), "dec-1", CFG)
    rng = random.Random(3)
    for _ in range(20):
        shuffled = facts[:]
        rng.shuffle(shuffled)
        assert outcome(track(*shuffled), "dec-1", CFG) == expected
    assert apply(track(*facts), bars()[0]) is False  # a duplicate bar is ignored


def test_late_bar_lands_in_its_session_and_raises_the_revision():
    first, second, third = bars()
    early = outcome(track(decision("BUY"), first, third), "dec-1", CFG)
    late = outcome(track(decision("BUY"), first, third, second), "dec-1", CFG)
    assert early["return_7d"] == pytest.approx(0.08)  # session 3 stood in as the 2nd bar
    assert late["return_7d"] == pytest.approx(-0.04) and late["revision"] > early["revision"]


def test_a_symbol_that_stops_trading_leaves_the_decision_open():
    state = track(decision("BUY"), *bars()[:1])
    o = outcome(state, "dec-1", CFG)
    assert o["outcome_type"] == "open" and o["return_7d"] is None and not o["final"]
    assert prune(state, outcomes(state, CFG), CFG) == [] and "dec-1" in state.tracked


def test_updates_publish_every_change_once_and_repeat_after_a_restart():
    state = track(decision("BUY"))
    published: dict = {}
    assert updates(outcomes(state, CFG), published) == []  # no bar yet: nothing to say
    apply(state, bars()[0])
    [first] = updates(outcomes(state, CFG), published)
    assert first["return_1d"] == pytest.approx(0.02)
    assert updates(outcomes(state, CFG), published) == []  # nothing new
    apply(state, bars()[0])  # a duplicate changes nothing
    assert updates(outcomes(state, CFG), published) == []
    apply(state, bars()[1])
    [second] = updates(outcomes(state, CFG), published)
    assert second["sessions_elapsed"] == 2 and second["revision"] > 1
    for b in bars()[2:]:
        apply(state, b)
    [final] = updates(outcomes(state, CFG), published)
    assert final["final"] and final == outcome(state, "dec-1", CFG)
    assert updates(outcomes(state, CFG), {}) == [final]  # a restarted worker repeats what it knows


def seen_outcome(path, candidate, cfg):
    return outcome(track(candidate, *path), never_decided_id(candidate), cfg)


def test_a_never_decided_candidate_is_published_at_its_horizons_and_when_final():
    """Decision 017: a decision's outcome changes with every bar, a never-decided
    candidate's is its outcome as of the last horizon it reached, so it is published at
    each horizon and when a late bar corrects what it covers."""
    cfg = TrackerConfig(horizons=(1, 3, 5), max_track_sessions=10, retention_days=30)
    candidate = factories.candidate(passed=False, price=100.0,
                                    occurred_at=datetime.combine(D0, datetime.min.time(), UTC)
                                    + timedelta(hours=14))
    cid = never_decided_id(candidate)
    b = bars([(100 + i, 110, 90, 100 + i, 1000) for i in range(1, 7)])
    state = track(candidate, decision("BUY"))
    published: dict = {}
    seen = []
    for bar in (b[0], b[1], b[3], b[2], b[4], b[5]):  # b[2] comes late
        apply(state, bar)
        seen.append({o["decision_id"]: o["sessions_elapsed"]
                     for o in updates(outcomes(state, cfg), published)})
    # the decision on every change (it is final at its 5th bar); the candidate at its
    # 1st bar, at its 3rd (b[3] standing in for b[2]), when the late b[2] corrected what
    # its first 3 sessions are, and at its 5th (final): never at the 2nd or the 4th alone
    assert [s.get("dec-1") for s in seen] == [1, 2, 3, 4, 5, None]
    assert [s.get(cid) for s in seen] == [1, None, 3, 3, 5, None]
    # mid-way, a restarted worker publishes the candidate as it was last published: the
    # outcome is a function of the facts, not of when the worker last spoke
    midway = track(candidate, *b[:4])
    assert outcome(midway, cid, cfg) == seen_outcome(b[:3], candidate, cfg)
    final = outcome(state, cid, cfg)
    assert final["final"] and published[cid] == final
    assert final["return_7d"] == pytest.approx(0.03)  # the 3rd session's close, 103


def test_prune_forgets_finished_decisions_after_retention_and_refuses_replays():
    state = track(decision("BUY"), *bars())
    late = factories.bar(session=D0 + timedelta(days=60), open=1, high=1, low=1, close=1,
                         volume=1)
    apply(state, late)
    assert prune(state, outcomes(state, CFG), CFG) == ["dec-1"]
    assert state.done == {"dec-1": session(2).isoformat()}
    assert apply(state, decision("BUY")) is False  # a replayed decision is not re-tracked
    assert sorted(state.bars) == [late.session.isoformat()]


def test_retention_waits_for_the_slowest_partition_with_a_backlog():
    # bars ran 60 days ahead while the candidates' partition is still at D0
    state = track(decision("BUY"), *bars())
    apply(state, factories.bar(session=D0 + timedelta(days=60), open=1, high=1, low=1,
                               close=1, volume=1))
    lagging = low_watermark([(session(0).isoformat(), 10, 500),  # a backlog at D0
                             (session(60).isoformat(), 900, 900)])  # caught up
    assert lagging == session(0).isoformat()
    assert prune(state, outcomes(state, CFG), CFG, lagging) == []
    assert "dec-1" in state.tracked and len(state.bars) == 4
    # a partition never read, with a backlog of unknown content, holds everything
    assert low_watermark([(None, None, 40), (session(5).isoformat(), 3, 3)]) == ""
    assert prune(state, outcomes(state, CFG), CFG, "") == []
    # once every partition has caught up, retention counts from the newest bar again
    assert low_watermark([(session(0).isoformat(), 500, 500), (None, 7, 7)]) is None
    assert prune(state, outcomes(state, CFG), CFG, None) == ["dec-1"]


def test_state_survives_its_changelog_encoding():
    state = track(decision("BUY"), *bars(), factories.catalyst())
    assert SymbolState.loads(state.dumps()) == state


def test_realized_volatility_needs_two_returns_and_matches_the_formula():
    assert realized_volatility([100.0, 101.0]) is None
    prices = [100.0, 101.0, 99.0, 102.0]
    logs = [math.log(prices[i + 1] / prices[i]) for i in range(3)]
    assert realized_volatility(prices) == pytest.approx(statistics.stdev(logs) * math.sqrt(252))


def test_horizons_must_increase():
    with pytest.raises(ValueError, match="increasing"):
        TrackerConfig(horizons=(7, 1, 30))


def test_a_split_is_no_return_for_decisions_before_or_after_it():
    """The same path as above, but a 2-for-1 split took effect at the second session's
    open: the raw bars from then on are half the price and twice the volume."""
    raw = [PATH[0]] + [(o / 2, h / 2, lo / 2, c / 2, v * 2) for o, h, lo, c, v in PATH[1:]]
    split = bars(raw)
    split[1] = split[1].model_copy(update={"schema_version": 2, "split_ratio": 2.0})
    before = outcome(track(decision("BUY"), *split), "dec-1", CFG)
    plain = outcome(track(decision("BUY"), *bars()), "dec-1", CFG)
    for name in ("return_1d", "return_7d", "return_30d", "max_favorable_excursion",
                 "max_adverse_excursion", "volatility_realized", "return_pct"):
        assert before[name] == pytest.approx(plain[name]), name

    # decided on the split day, at the post-split price: the raw bars are its terms
    after = factories.thesis(
        decision_id="dec-2", decision_type="BUY", entry_price=50.0, position_size_pct=2.0,
        occurred_at=datetime.combine(session(1), datetime.min.time(), UTC) + timedelta(hours=14))
    o = outcome(track(after, *split), "dec-2", CFG)
    assert o["return_1d"] == pytest.approx(96 / 2 / 50 - 1)
    assert o["return_7d"] == pytest.approx(108 / 2 / 50 - 1)

    # a candidate the session before the split, tracked counterfactually: no -50 % either
    candidate = factories.candidate(
        symbol=split[0].symbol, price=100.0, passed=False,
        occurred_at=datetime.combine(D0, datetime.min.time(), UTC) + timedelta(hours=13))
    c = outcome(track(candidate, *split), never_decided_id(candidate), CFG)
    assert c["return_1d"] == pytest.approx(0.02) and c["return_7d"] == pytest.approx(-0.04)


def test_baseline_volume_before_an_earlier_split_is_counted_in_todays_shares():
    """A reverse 1-for-10 split between the baseline and the decision: the baseline's
    volumes (old shares) are a tenth in the new shares the path trades in."""
    cfg = TrackerConfig(horizons=(1, 2, 3), max_track_sessions=10, retention_days=30,
                        baseline_sessions=5)
    base = [factories.bar(session=D0 - timedelta(days=6 - i), open=1, high=1, low=1, close=1,
                          volume=10_000) for i in range(5)]
    path = bars([(10, 10, 10, 10, 1000)] * 3)
    path[0] = path[0].model_copy(update={"schema_version": 2, "split_ratio": 0.1})
    thesis = decision("BUY", expected_volume_ratio=1.0)
    o = outcome(track(thesis.model_copy(update={"entry_price": 10.0}), *base, *path),
                "dec-1", cfg)
    assert o["volume_pattern_accuracy"] == pytest.approx(1.0)  # 1000 vs 10,000 / 10
    assert o["return_1d"] == pytest.approx(0.0)
