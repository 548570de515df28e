"""The backtest is the live loop replayed: on a stored tiered history, its version path is
the one the learner's own daily cycles record, cycle by cycle, on the same store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.pages.backtest import render
from amc_learning.service import cycle
from amc_learning.service.backtest import NotEnoughToBacktest, backtest, needed_sessions
from amc_learning.service.deps import Deps
from amc_learning.settings import Settings
from amc_learning.simulator.tiered import TieredConfig, simulate_tiered
from tests import factories
from tests.fakes import FakeDatabase, FakeKafka, State

SETTINGS = factories.keyed(Settings(kafka_bootstrap="fake:9092", database_url="fake",
                                    topic_prefix="t."))
#: a judge that decides within weeks, on a truth planted ten times the experiment's
POLICY = RolloutPolicy(horizon=7, min_sessions=5, canary_sessions=5, futile_after=30,
                       max_sessions=60)
#: a cycle every 5 sessions, as `run` learns
EVERY = 5


def _store(sessions: int) -> tuple[FakeDatabase, list]:
    tiered = simulate_tiered(TieredConfig(seed=3, sessions=sessions, symbols=120,
                                          return_per_point=0.0004))
    days = tiered["session"].unique().sort().to_list()
    stored = tiered.with_columns(  # as stored: the tier each candidate was sent with
        *[pl.col(c).alias(c.replace("tier:", "sent:")) for c in tiered.columns
          if c.startswith("tier:")]).drop([c for c in tiered.columns if c.startswith("tier:")])
    decisions = stored.select("session", "symbol").with_columns(  # never decided on
        pl.lit("amc-scanner 3.3.1").alias("scoring_model"), pl.lit(True).alias("is_synthetic"),
        pl.lit("IGNORE").alias("decision_type"), pl.lit(0.5).alias("confidence"),
        pl.lit(False).alias("win"))
    db = FakeDatabase(State(decisions=decisions, sessions=days))
    db.state.scored[("amc-scanner", "3.3.1")] = stored
    return db, days


def _deps(db: FakeDatabase) -> Deps:
    return Deps(SETTINGS, db, FakeKafka("t."),  # type: ignore[arg-type]
                clock=lambda: datetime.combine(max(db.state.sessions), datetime.min.time(),
                                               UTC) + timedelta(hours=22))


def test_the_backtest_path_is_the_one_the_learners_own_cycles_record():
    db, days = _store(200)
    replayed = backtest(_deps(db), policy=POLICY, every=EVERY)
    assert replayed["scoring_model"] == "amc-scanner 3.3.1"
    live_db, _ = _store(200)
    deps = _deps(live_db)
    for upto in range(EVERY, len(days) + 1, EVERY):  # a cycle after every 5th close
        live_db.state.sessions = days[:upto]
        cycle.run_cycle(deps, "daily", policy=POLICY, report=False)
    recorded = [(str(r["as_of"]), r["version"], r["mode"]) for r in live_db.state.history]
    walked = [(s["date"], s["version"], s["mode"]) for s in replayed["versions"]]
    modes = {m for _, _, m in recorded}
    assert {"shadow", "canary", "live"} <= modes, recorded  # the test shows something
    # the walk's last cycle is as of the session before the last: the live loop's one more
    assert walked == [r for r in recorded if r[0] < str(days[-1])], (walked, recorded)
    assert replayed["learned_sessions"] > 0
    # every candidate is stored here, so the two arms trade apart under a learned table
    assert replayed["same_candidates_sessions"] < replayed["learned_sessions"] / 2
    page = render(replayed)  # --html: both arms and the version path on one chart
    changes = sum(1 for _, _, m in walked if m != "shadow")
    assert page.count("<polyline") == 3 and page.count('class="rule"') == 2 * changes
    assert replayed["difference"]["total_pnl"] == pytest.approx(
        replayed["learned"]["total_pnl"] - replayed["static"]["total_pnl"], abs=1e-3)


def test_too_little_history_says_how_much_it_needs():
    db, _ = _store(40)
    with pytest.raises(NotEnoughToBacktest, match=rf"needs at least {needed_sessions(POLICY)}"):
        backtest(_deps(db), policy=POLICY)
