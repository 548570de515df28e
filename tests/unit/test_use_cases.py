"""The use cases on a fake database and broker (`tests/fakes.py`): the learning cycle, the
price sync's plan, collect. No Kafka, no PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from amc_learning.intelligence.prices import Tracked
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.schemas.models import TieredModel, shipped
from amc_learning.schemas.params import AdaptiveParams, ParamsPublished, TieredParams
from amc_learning.schemas.signing import Signature
from amc_learning.service import cycle
from amc_learning.service.collect import NotAcknowledged, collect
from amc_learning.service.deps import Deps
from amc_learning.service.prices import plan
from amc_learning.settings import Settings
from amc_learning.simulator.research import ExperimentConfig, simulate_candidates
from amc_learning.simulator.tiered import TieredConfig, simulate_tiered
from amc_learning.streams.params import ParamsReader, verifier_of
from tests import factories
from tests.fakes import FakeDatabase, FakeKafka, ParamsHistory, State

SCANNER = next(m for m in shipped() if (m.name, m.version) == ("amc-scanner", "3.3.1"))
assert isinstance(SCANNER, TieredModel)
OLDER = SCANNER.model_copy(update={"version": "3.2.0"})
SETTINGS = factories.keyed(Settings(kafka_bootstrap="fake:9092", database_url="fake",
                                    topic_prefix="t."))


def decisions(world: pl.DataFrame) -> pl.DataFrame:
    """The planted-truth candidates as `Frames.decisions` gives them (never decided on)."""
    return world.with_columns(
        pl.lit("BUY").alias("decision_type"), pl.lit("discovery").alias("decision_source"),
        pl.lit(True).alias("is_synthetic"), pl.lit("native").alias("scoring_model"),
        pl.col("return_7d").alias("side_return_7d"),
        *[pl.col(c).alias(f"score_{c}") for c in ("volume_momentum", "squeeze", "catalyst",
                                                   "options", "technical", "sentiment")],
    ).with_columns((pl.col("return_7d") > 0).alias("win"))


@pytest.fixture(scope="module")
def world() -> pl.DataFrame:
    return decisions(simulate_candidates(ExperimentConfig(seed=0, sessions=260)))


def deps_over(world: pl.DataFrame, upto: int) -> tuple[Deps, FakeDatabase, FakeKafka]:
    days = world["session"].unique().sort().to_list()
    db, kafka = FakeDatabase(State(decisions=world, sessions=days[:upto])), FakeKafka("t.")
    deps = Deps(SETTINGS, db, kafka, clock=lambda: datetime.combine(  # type: ignore[arg-type]
        max(db.state.sessions), datetime.min.time(), UTC) + timedelta(hours=22))
    return deps, db, kafka


def sent_params(kafka: FakeKafka) -> list[ParamsPublished]:
    """What reached the params topic, each verified as a reader would."""
    verifier = verifier_of(factories.reading(SETTINGS))
    out = []
    for s in kafka.sent:
        if s.topic == "t.learning.params.v1":
            assert verifier.check(s.value, Signature.from_headers(s.headers)) is None
            out.append(ParamsPublished.model_validate_json(s.value))
    return out


def test_a_version_goes_shadow_then_canary_then_live_through_the_daily_cycles(world):
    deps, db, kafka = deps_over(world, 80)
    days = world["session"].unique().sort().to_list()
    # promotes whatever it judges, after a few sessions: this test is about the use case
    # (what is recorded, signed and sent), not the statistics (test_rollout, test_points)
    eager = RolloutPolicy(horizon=deps.settings.learning_horizon, min_sessions=3,
                          canary_sessions=3, promote_at=0.0, reject_at=-1.0)
    modes = []
    for upto in range(80, 200):
        db.state.sessions = days[:upto]
        summary = cycle.run_cycle(deps, "daily", policy=eager, report=False)
        assert summary["ran"] and summary["analysis"].startswith("skipped")  # no index
        modes += [(c["version"], c["mode"]) for c in summary["changes"]]
        if (1, "live") in modes:
            break
    assert modes[:3] == [(1, "shadow"), (1, "canary"), (1, "live")], modes
    published = [(m.version, m.mode) for m in sent_params(kafka)]
    assert published == [v for v in modes if v[1] in ("shadow", "canary", "live")]
    assert all(r["sent"] for r in db.state.history if r["publish"])
    # one producer per cycle that had something to send, the insight with the messages
    insights = [s for s in kafka.sent if s.topic == "t.learning.insights.v1"]
    assert len(insights) == len(db.state.cycles) == kafka.started
    # a rerun of the same as-of changes nothing and sends nothing
    before = (len(kafka.sent), copy_of(db.state.history))
    again = cycle.run_cycle(deps, "daily", policy=eager, report=False)
    assert again["ran"] is False and (len(kafka.sent), db.state.history) == before


def copy_of(rows: list[dict]) -> list[dict]:
    return [dict(r) for r in rows]


def test_a_cycle_whose_write_fails_leaves_nothing_behind_and_the_next_one_runs(world):
    deps, db, kafka = deps_over(world, 60)
    ParamsHistory.fail_after_history = True
    try:
        with pytest.raises(RuntimeError, match="refused the cycle's row"):
            cycle.run_cycle(deps, "daily", report=False)
    finally:
        ParamsHistory.fail_after_history = False
    assert db.rolled_back == 1
    assert db.state.history == [] and db.state.cycles == {} and kafka.sent == []
    summary = cycle.run_cycle(deps, "daily", report=False)
    assert summary["ran"] and [c["mode"] for c in summary["changes"]] == ["shadow"]
    assert [m.mode for m in sent_params(kafka)] == ["shadow"]


def test_an_unsent_message_goes_first_and_a_broker_that_is_down_keeps_it_unsent(world):
    deps, db, kafka = deps_over(world, 60)
    kafka.down = True
    with pytest.raises(ConnectionError):
        cycle.run_cycle(deps, "daily", report=False)  # recorded, then the send failed
    assert [(r["version"], r["mode"], r["sent"]) for r in db.state.history] == [
        (1, "shadow", False)]
    kafka.down = False
    assert cycle.send_unsent(deps) == 1
    assert [m.version for m in sent_params(kafka)] == [1]
    assert cycle.send_unsent(deps) == 0 and kafka.started == 1  # nothing left: no producer


def test_the_price_plan_asks_only_for_sessions_neither_stored_nor_noted():
    day = date(2026, 5, 1)
    state = State(tracked=[Tracked("AAA", day, False), Tracked("BBB", day, True)])
    now = datetime(2026, 6, 30, 22, tzinfo=UTC)
    db = FakeDatabase(state)
    settings = SETTINGS.with_overrides(index_symbol="SPY", vix_symbol="")
    with db.unit_of_work() as uow:
        first = plan(uow, settings, now)
    assert set(first.missing) == {"AAA", "BBB", "SPY"}
    # AAA: 20 baseline sessions before its entry, its entry and 30 after
    assert len(first.missing["AAA"]) == 51
    assert first.missing["BBB"][-1] == date(2026, 6, 30)  # an open position: to the last
    state.bars["AAA"] = set(first.missing["AAA"][:-1])
    state.notes[("AAA", first.missing["AAA"][-1])] = "no_bar"
    with db.unit_of_work() as uow:
        second, asked_again = plan(uow, settings, now), plan(uow, settings, now, again=True)
    assert "AAA" not in second.missing
    assert asked_again.missing["AAA"] == [first.missing["AAA"][-1]]


def test_collect_sends_all_valid_events_under_the_tokens_producer_or_none():
    sent: list[list[tuple[str, bytes, bytes]]] = []

    async def send(records: list[tuple[str, bytes, bytes]]) -> None:
        sent.append(records)

    good = json.loads(factories.thesis().model_dump_json())
    done = asyncio.run(collect(send, "thesis-decision", [good, good | {"symbol": "MSFT"}],
                               "amc-trader"))
    assert len(done.events) == 2 and not done.errors
    assert [json.loads(v)["producer"] for _, _, v in sent[0]] == ["amc-trader"] * 2
    bad = asyncio.run(collect(send, "thesis-decision", [good, {**good, "confidence_score": 7}],
                              "amc-trader"))
    assert [(e["loc"][0], e["loc"][-1]) for e in bad.errors] == [(1, "confidence_score")]
    wrong = asyncio.run(collect(send, "discovery-data", good, "amc-trader"))
    assert wrong.errors[0]["loc"] == ["event_type"]
    assert len(sent) == 1  # an invalid event anywhere: nothing sent

    async def down(records: list[tuple[str, bytes, bytes]]) -> None:
        raise TimeoutError

    with pytest.raises(NotAcknowledged, match="TimeoutError"):
        asyncio.run(collect(down, "thesis-decision", good, "amc-trader"))


def test_a_cycle_says_whether_its_scoring_model_is_declared(world):
    for model, declared in (("amc-scanner 3.3.1", True), ("amc-scanner 9.9", False)):
        relabelled = world.with_columns(pl.lit(model).alias("scoring_model"))
        deps, _, _ = deps_over(relabelled, 60)
        summary = cycle.run_cycle(deps, "daily", report=False)
        assert (summary["scoring_model"], summary["scoring_model_declared"]) == (model,
                                                                                  declared)


def test_an_insight_the_contract_refuses_costs_the_cycle_nothing(world, caplog):
    later = world.with_columns(pl.col("session").dt.offset_by("30y"))  # "in the future"
    _, db, kafka = deps_over(later, 60)
    deps = Deps(SETTINGS, db, kafka)  # type: ignore[arg-type]  # issued now, as of 2046
    summary = cycle.run_cycle(deps, "daily", report=False)
    assert summary["ran"] and [m.mode for m in sent_params(kafka)] == ["shadow"]
    assert not [s for s in kafka.sent if s.topic == "t.learning.insights.v1"]
    assert "insight was not published" in caplog.text and len(db.state.cycles) == 1


def test_two_scoring_models_learn_side_by_side_each_into_its_own_set(world):
    """The engine's own contract and AMC-Trader's scanner 3.3.1 in one store: one cycle
    learns both, each its own param set and history; a reader of either never gets the
    other's params, and a version of the scanner nothing was learned for gets its declared
    table."""
    days = world["session"].unique().sort().to_list()
    # a truth planted ten times the experiment's: this test is about the wiring
    tiered = simulate_tiered(TieredConfig(seed=3, sessions=len(days), symbols=120,
                                          return_per_point=0.0004))
    tiered = tiered.with_columns(  # as stored: the tier each candidate was sent with
        pl.col("session_index").replace_strict(dict(enumerate(days)),
                                               return_dtype=pl.Date).alias("session"),
        *[pl.col(c).alias(c.replace("tier:", "sent:")) for c in tiered.columns
          if c.startswith("tier:")]).drop([c for c in tiered.columns if c.startswith("tier:")])
    scanned = tiered.select("session", "symbol").with_columns(  # their decisions
        pl.lit("amc-scanner 3.3.1").alias("scoring_model"), pl.lit(True).alias("is_synthetic"),
        pl.lit("IGNORE").alias("decision_type"))
    both = pl.concat([world, scanned], how="diagonal_relaxed")
    deps, db, kafka = deps_over(both, 150)
    db.state.scored[("amc-scanner", "3.3.1")] = tiered
    eager = RolloutPolicy(horizon=deps.settings.learning_horizon, min_sessions=3,
                          canary_sessions=3, promote_at=0.0, reject_at=-1.0)
    for upto in range(150, len(days)):
        db.state.sessions = days[:upto]
        summary = cycle.run_cycle(deps, "daily", policy=eager, report=False)
        assert {s["name"] for s in summary["models"]} == {"default", "amc-scanner:3.3.1"}
        if any(r["name"] == "amc-scanner:3.3.1" and r["mode"] == "live"
               for r in db.state.history):
            break
    rows = {name: [r for r in db.state.history if r["name"] == name]
            for name in ("default", "amc-scanner:3.3.1")}
    assert rows["default"] and rows["amc-scanner:3.3.1"], "each model issued versions"
    assert all(isinstance(r["params"], AdaptiveParams) and r["scoring_model"] == "native"
               for r in rows["default"])
    assert all(isinstance(r["params"], TieredParams) and r["scoring_model"] ==
               "amc-scanner 3.3.1" for r in rows["amc-scanner:3.3.1"])
    live = next(r for r in rows["amc-scanner:3.3.1"] if r["mode"] == "live")
    assert live["params"] != TieredParams.declared(SCANNER)  # a learned table
    reader = ParamsReader(None, "t.learning.params.v1",
                          verifier_of(factories.reading(SETTINGS)),
                          clock=lambda: deps.clock(), models=(SCANNER, OLDER))
    refused = {reason.split(":")[0] for s in kafka.sent if s.topic == "t.learning.params.v1"
               if (reason := reader.offer(s.value, Signature.from_headers(s.headers)))}
    assert refused <= {"expired"}  # versions of weeks before: past their validity
    table = reader.table(SCANNER)
    assert (table.source, table.version, table.params) == ("published", live["version"],
                                                           live["params"])
    assert reader.get().params != table.params and isinstance(reader.get().params,
                                                               AdaptiveParams)
    older = reader.table(OLDER)
    assert older.source == "fallback" and older.params == TieredParams.declared(OLDER)
