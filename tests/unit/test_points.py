"""The points fit against a table worked out by hand, and the learner's loop walked over
a small tiered history (`intelligence.walk`) with the real judge.

The small frame: each session has 8 candidates of one factor `f` — tier A (the
reference, 0 points) 4 of them, B (10 points) 2, C (20 points) 2. B and C both earn
0.01 more than A over the horizon; a small noise (±0.001 that cancels within each tier
over two sessions and within each session) makes the standard errors finite. By hand:

* effects: B − A = C − A = 0.01 exactly (OLS on tier indicators; the excess over the
  session's mean shifts every row alike);
* the current net score has shares 1/2, 1/4, 1/4 on 0, 10, 20: sd √68.75 = 8.2916; the
  fitted score 0 or 0.01 with shares 1/2, 1/2: sd 0.005; points per unit return 1,658.3;
* targets: B = C = 0 + 1,658.3 × 0.01 = 16.58 points.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from amc_learning.intelligence.book import Book, Rule
from amc_learning.intelligence.points import (
    PointsGuardrails,
    excess,
    fit_points,
    points_per_return,
    propose,
    tier_effects,
)
from amc_learning.intelligence.rollout import (
    RolloutPolicy,
    compare,
    promotion_level,
    session_pnl,
)
from amc_learning.intelligence.walk import walk
from amc_learning.schemas.models import TIER
from amc_learning.schemas.params import ScoringModel, TieredParams

MODEL = ScoringModel(name="hand", version="1")


def table(a: int = 0, b: int = 10, c: int = 20, threshold: float = 15) -> TieredParams:
    return TieredParams(model=MODEL, tables={"f": {"a": a, "b": b, "c": c}},
                        entry_threshold=threshold)


def small_frame(sessions: int, edge: float = 0.01, noise: float = 0.001,
                c_edge: float | None = None) -> pl.DataFrame:
    """The module's frame; C earns `c_edge` over A where it is given, else `edge`."""
    edges = {"a": 0.0, "b": edge, "c": edge if c_edge is None else c_edge}
    rows = []
    day = date(2024, 1, 1)
    for s in range(sessions):
        sign = 1 if s % 2 == 0 else -1
        tiers = [("a", noise), ("a", -noise), ("a", noise), ("a", -noise),
                 ("b", sign * noise), ("b", sign * noise),
                 ("c", -sign * noise), ("c", -sign * noise)]
        for i, (tier, e) in enumerate(tiers):
            rows.append({"session_index": s, "session": day + timedelta(days=s),
                         "symbol": f"S{i}", TIER.format("f"): tier,
                         "return_1d": edges[tier] + e})
    return pl.DataFrame(rows)


def noisy_frame(sessions: int, edge: float = 0.01, sd: float = 0.01,
                seed: int = 0, c_edge: float | None = None) -> pl.DataFrame:
    """The small frame's tiers, with an independent normal noise of `sd` on every
    return (and `edge` for B and C over A, or `c_edge` for C where it is given)."""
    frame = small_frame(sessions, edge=edge, noise=0.0, c_edge=c_edge)
    noise = np.random.default_rng(seed).normal(0.0, sd, len(frame))
    return frame.with_columns(pl.col("return_1d") + noise)


def hand_guardrails(**changes) -> PointsGuardrails:
    return PointsGuardrails(**{"horizon": 1, "min_tier_n": 10, "prior_strength": 0,
                               "max_step": 100, "max_threshold_step": 0, **changes})


def test_the_effects_and_the_rate_are_the_ones_computed_by_hand():
    data = excess(small_frame(40), 1)
    effects = {e.tier: e for e in tier_effects(data, ["f"], 1)}
    assert set(effects) == {"b", "c"} and {e.reference for e in effects.values()} == {"a"}
    assert effects["b"].effect == pytest.approx(0.01, abs=1e-12)
    assert effects["c"].effect == pytest.approx(0.01, abs=1e-12)
    assert 0 < effects["b"].se < 0.001 and effects["b"].n == 80
    rate = points_per_return(data, table(), list(effects.values()))
    assert rate == pytest.approx(math.sqrt(68.75) / 0.005)  # 1,658.3


@pytest.mark.parametrize(("changes", "current", "expected", "why"), [
    # no shrinkage, no step bound: the targets, in whole points
    ({}, table(), {"a": 0, "b": 17, "c": 17}, "moved"),
    # shrinkage n / (n + 80) = 1/2 toward the current table: 13.29, 18.29
    ({"prior_strength": 80}, table(), {"a": 0, "b": 13, "c": 18}, "moved"),
    # ... and at most 2 points a cycle
    ({"prior_strength": 80, "max_step": 2}, table(), {"a": 0, "b": 12, "c": 18}, "moved"),
    # too few candidates per tier: nothing moves
    ({"min_tier_n": 81}, table(), {"a": 0, "b": 10, "c": 20}, "n 80 < 81"),
    # C as a penalty of −5: the spread is √29.6875 = 5.449, its target +10.9; a penalty
    # stays one without decisive evidence (decisive_q 0: never)
    ({"decisive_q": 0.0}, table(c=-5), {"a": 0, "b": 11, "c": -1},
     "a penalty stays one without decisive evidence"),
])
def test_the_guarded_table_is_the_one_computed_by_hand(changes, current, expected, why):
    data = excess(small_frame(40), 1)
    effects = tier_effects(data, ["f"], 1)
    g = hand_guardrails(**changes)
    proposed, notes = propose(current, effects, points_per_return(data, current, effects), g)
    assert proposed.tables["f"] == expected
    assert why in {n["why"] for n in notes}, notes
    assert all(n["q"] < 0.01 for n in notes)  # the claims are all off


def test_fit_points_keeps_the_hand_table_when_it_earns_more_out_of_sample():
    """C earns no more than A (the table rates it 20), B earns 0.01 over A. By hand: the
    fitted score is 0.01 on a quarter of the rows, sd 0.01 * sqrt(3/16) = 0.00433, so
    points per unit return sqrt(68.75) / 0.00433 = 1,914.85; targets B 19.15 -> 19, C 0.
    Fitted on the first 40 of 60 sessions, judged on the last 19: the new table buys B
    (19 >= 15) where the old one bought C, so its picks earn 0.01 more every session."""
    frame = small_frame(60, c_edge=0.0)
    params, evidence = fit_points(frame, table(), None, hand_guardrails())
    assert params.tables["f"] == {"a": 0, "b": 19, "c": 0}
    assert params.entry_threshold == 15
    assert evidence["judged"]["accepted"] and evidence["judged"]["sessions"] == 19
    assert evidence["judged"]["gain"] == pytest.approx(0.01, abs=0.002)
    assert evidence["points_per_unit_return"] == pytest.approx(1914.85, abs=0.01)


def test_fit_points_keeps_the_current_table_when_nothing_is_learned():
    """Every tier earns the same: no tier differs from A, the current table's claims are
    all wrong, but the new table (every tier ~0) buys nothing out of sample that the old
    one did not beat; the current table comes back unchanged."""
    flat = small_frame(60, edge=0.0)
    params, evidence = fit_points(flat, table(), None, hand_guardrails())
    assert params == table()
    assert not evidence["judged"]["accepted"]


def test_fit_points_needs_a_history():
    params, evidence = fit_points(small_frame(2), table(), None, hand_guardrails())
    assert params == table() and evidence["why"] == "too little history"


def test_the_judges_level_holds_a_null_version_to_its_promise():
    """The per-look level is calibrated so that a version no better than its incumbent
    goes live with probability 1 − promote_at over all its daily looks: below the
    nominal 0.05 (looks add chances), and lower still when there are more looks."""
    default = promotion_level(RolloutPolicy(horizon=7))
    assert 0.005 < default < 0.025
    assert promotion_level(RolloutPolicy(horizon=7, max_sessions=80)) > default
    assert promotion_level(RolloutPolicy(horizon=7, promote_at=0.99)) < default


def better_fit(proposal: TieredParams):
    """A fit that always proposes `proposal` (what a points fit would propose, without
    its statistics: the walk and the judge are under test)."""
    def fit(frame, incumbent, regime, guardrails):
        return (proposal if incumbent != proposal else incumbent), {"fake": True}
    return fit


@pytest.mark.parametrize(("proposal", "goes_live"), [
    (table(b=17, c=17), True),  # buys B too, which earns 0.01 over A: better
    (table(b=20, c=5), False),  # buys B only, not C: as good, never better
])
def test_the_walk_trades_a_version_only_from_the_session_after_it_goes_live(
        proposal, goes_live):
    frame = noisy_frame(120)
    static = table()
    policy = RolloutPolicy(horizon=1, max_sessions=60)
    out = walk(frame, static, better_fit(proposal), None, policy, first=10, last=120)
    modes = [(s["version"], s["mode"]) for s in out.path]
    assert modes[0] == (1, "shadow")
    if goes_live:
        assert (1, "canary") in modes and (1, "live") in modes, modes
        live_on = next(s["session"] for s in out.path if s["mode"] == "live")
        assert out.traded[live_on] == static  # decided after that session's close...
        assert out.traded[live_on + 1] == proposal  # ...traded from the next one
        assert out.version_on[live_on + 1] == 1
        assert out.learned_sessions(range(10, 120)) == 120 - live_on - 1
    else:
        assert (1, "live") not in modes and (1, "rejected") in modes, modes
        assert all(p == static for p in out.traded.values())
        assert out.learned_sessions(range(10, 120)) == 0


def test_a_live_version_that_stops_earning_is_rolled_back_to_the_static_table():
    """B earns 0.02 and C 0.01 over A for 60 sessions, then both 0.01 less: the version
    that buys B too goes live, the CUSUM sees it lose, and trading goes back to the
    static table from the session after the rollback; only the sessions in between were
    learned."""
    first = noisy_frame(60, edge=0.02, c_edge=0.01)
    later = noisy_frame(160, edge=-0.01, seed=1).filter(pl.col("session_index") >= 60)
    static, proposal = table(), table(b=17, c=17)
    out = walk(pl.concat([first, later]), static, better_fit(proposal), None,
               RolloutPolicy(horizon=1), first=10, last=160)
    steps = [(s["session"], s["version"], s["mode"]) for s in out.path]
    live_on = next(t for t, v, m in steps if (v, m) == (1, "live"))
    back_on, _, _ = next(x for x in steps if x[2] == "rolled_back")
    assert live_on < 60 < back_on, steps
    restored = next(s for s in out.path if s["provenance"].get("rollback_of") == 1)
    assert restored["provenance"]["restores"] == "fallback" and restored["mode"] == "live"
    assert out.traded[back_on] == proposal and out.traded[back_on + 1] == static
    assert out.version_on[back_on + 1] is None  # a restored fallback is no learned version
    assert out.learned_sessions(range(10, 160)) == back_on - live_on


def market_world(sessions: int, seed: int, edge: float) -> pl.DataFrame:
    """The small frame's tiers, B earning `edge` over A and C; every return also carries
    the session's market move (sd 0.02, common to all 8) and its own noise (sd 0.01)."""
    frame = small_frame(sessions, edge=edge, noise=0.0, c_edge=0.0)
    rng = np.random.default_rng(seed)
    market = np.repeat(rng.normal(0.0, 0.02, sessions), 8)
    return frame.with_columns(pl.col("return_1d") + market + rng.normal(0.0, 0.01, len(frame)))


@pytest.mark.parametrize(("edge", "at_least", "at_most"), [(0.003, 0.9, 1.0), (0.0, 0.0, 0.05)])
def test_the_judge_reads_risk_as_the_book_carries_it(edge, at_least, at_most):
    """Decision 018. The challenger buys B only (2 names), the incumbent B and C (4): the
    challenger's selection is more concentrated, but the market move dominates both books,
    so they carry the same risk. Where B earns 0.003 more, the judge passes the
    challenger on nearly every world (it did on 55 % when each arm was divided by the
    spread of its selection alone); where it earns nothing more, on no more than the
    level's share."""
    static, challenger = table(b=10, c=20, threshold=5), table(b=20, c=0, threshold=15)
    policy = RolloutPolicy(horizon=1)
    passed, concentrated = 0, 0
    for seed in range(40):
        world = market_world(250, seed, edge)
        evidence = compare(world, challenger, static, world["session"].min(), policy)
        passed += evidence["p_not_better"] <= evidence["needed"]
        mine, theirs = session_pnl(world, challenger, 1), session_pnl(world, static, 1)
        concentrated += bool(mine["pnl"].std() > 1.5 * theirs["pnl"].std()
                             and mine["book"].std() < 1.1 * theirs["book"].std())
    assert concentrated == 40  # the premise: a narrower selection in the same book risk
    assert at_least <= passed / 40 <= at_most


def test_a_book_of_picks_earns_their_mean():
    """The picks of a session share one book (decision 016)."""
    data = excess(small_frame(2), 1)
    pnl = Book.of(data, table(), 1).pnl(Rule.of(table()))
    # C only (20 >= 15): two picks of 0.005 excess each, with their noise (−, then +)
    assert pnl.tolist() == pytest.approx([0.004, 0.006])
