"""publish -> broker -> persist consumer -> PostgreSQL, on the real embedded pair."""

from __future__ import annotations

import asyncio
import base64
import json

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from amc_learning.consumers.loop import LoopStats
from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.schemas import topics
from amc_learning.streams.offsets import committed_offsets
from tests import factories
from tests.integration.helpers import publish, read_topic, rows, send_raw

pytestmark = pytest.mark.integration


async def test_round_trip_stores_every_field_exactly(settings):
    t, c, f, b = factories.thesis(), factories.candidate(), factories.fill(), factories.bar()
    publish(settings, [t, c, f, b])
    stats = await run_persist(bootstrap(settings), max_records=4, idle_exit_s=15)
    assert stats.consumed == 4 and stats.dead_lettered == 0
    [d] = rows(settings.database_url,
               "SELECT event_id, decision_id, symbol, decision_type, recommendation_source,"
               " confidence_score, price_at_decision, position_size_pct, decided_at,"
               " discovery_features, thesis_data, market_conditions, discovery_scores"
               " FROM learning_decisions")
    assert d[:9] == (t.event_id, t.decision_id, "AMC", "BUY", "thesis", 0.72, 5.25, 2.5,
                     t.occurred_at)
    assert d[9] == {"rsi_14": 61.5, "relative_volume": 3.2}
    assert d[10]["target_price"] == 5.8 and d[10]["expected_catalyst"] == "earnings"
    assert d[11] == {"vix": 14.2, "sector": "consumer", "regime": "bull_low_vol"}
    assert d[12] == factories.SCORES
    [cand] = rows(settings.database_url,
                  "SELECT run_id, rank, composite_score, passed, score_volume_momentum, price"
                  " FROM discovery_candidates")
    assert cand == ("run-1", 1, 0.71, True, 0.9, 5.1)
    [fill] = rows(settings.database_url,
                  "SELECT fill_id, fill_type, side, quantity, price FROM learning_trades")
    assert fill == (f.fill_id, "ENTRY", "BUY", 100.0, 5.26)
    [bar] = rows(settings.database_url,
                 "SELECT symbol, session, open, high, low, close, volume FROM price_bars")
    assert bar == ("AMC", b.session, 5.2, 5.6, 5.0, 5.4, 1_250_000.0)


async def test_contract_v2_events_are_stored_with_their_model_label_and_mode(settings):
    candidate = factories.candidate(
        schema_version=2, passed=False, scores=None, threshold=None,
        composite_score=(40 + 75) / 380, raw_score={"value": 40, "low": -75, "high": 305},
        scoring_model={"name": "amc-scanner", "version": "3.3.1"},
        tiers={"float": {"tier": "ultra_low", "points": 50}}, flags=["chase_risk"],
        provenance={"composite_score": "raw_score on its declared scale"})
    decision = factories.thesis(schema_version=2, decision_type="SELL", label="TRIM_50",
                                size_change_pct=-50.0, confidence_score=None, thesis=None,
                                market_conditions=None, position_size_pct=0.0,
                                targets=[6.91, 8.2],
                                scoring_model={"name": "amc-scanner", "version": "3.3.1"})
    paper = factories.fill(schema_version=2, mode="paper", order_id="ord-1",
                           decision_id=decision.decision_id)
    publish(settings, [candidate, decision, paper, factories.thesis()])
    stats = await run_persist(bootstrap(settings), max_records=4, idle_exit_s=15)
    assert stats.consumed == 4 and stats.dead_lettered == 0
    [cand] = rows(settings.database_url,
                  "SELECT schema_version, scoring_model, scoring_version, raw_score, raw_low,"
                  " raw_high, composite_score, threshold, score_squeeze, detail"
                  " FROM discovery_candidates")
    assert cand[:9] == (2, "amc-scanner", "3.3.1", 40.0, -75.0, 305.0,
                        pytest.approx(115 / 380), None, None)
    assert cand[9]["tiers"] == {"float": {"tier": "ultra_low", "points": 50.0}}
    assert cand[9]["flags"] == ["chase_risk"] and "provenance" in cand[9]
    decided = rows(settings.database_url,
                   "SELECT decision_type, label, size_change_pct, confidence_score,"
                   " scoring_model, is_synthetic FROM learning_decisions ORDER BY label")
    assert ("SELL", "TRIM_50", -50.0, None, "amc-scanner", False) in decided
    assert ("IGNORE", None, None, pytest.approx(115 / 380), "amc-scanner", True) in decided
    assert ("BUY", None, None, 0.72, None, False) in decided  # a v1 decision, as before
    [trade] = rows(settings.database_url, "SELECT order_id, mode FROM learning_trades")
    assert trade == ("ord-1", "paper")


async def test_duplicates_and_producer_retries_are_stored_once(settings):
    t, b = factories.thesis(), factories.bar()
    retry = factories.thesis(decision_id=t.decision_id)  # same decision, new event id
    publish(settings, [t, b, t, b, retry])
    stats = await run_persist(bootstrap(settings), max_records=5, idle_exit_s=15)
    assert stats.consumed == 5
    assert rows(settings.database_url, "SELECT count(*) FROM learning_decisions") == [(1,)]
    assert rows(settings.database_url, "SELECT count(*) FROM price_bars") == [(1,)]
    # a second consumer group re-reading everything changes nothing either
    again = settings.with_overrides(persist_group=settings.persist_group + "-again")
    await run_persist(bootstrap(again), max_records=5, idle_exit_s=15)
    assert rows(settings.database_url, "SELECT count(*) FROM learning_decisions") == [(1,)]


async def test_bad_events_are_dead_lettered_and_the_consumer_carries_on(settings):
    good_before, good_after = factories.bar(), factories.bar(symbol="GME")
    bad = [b'{"event_id": ', b"\xff\xfe not utf-8",
           json.dumps({"event_type": "rumour_heard"}).encode(),
           factories.thesis().model_dump_json().replace('"AMC"', '"amc"').encode(),
           factories.thesis().model_dump_json().encode()]  # valid, but on the prices topic
    publish(settings, [good_before])
    await send_raw(settings, topics.PRICES, bad)
    publish(settings, [good_after])
    stats = await run_persist(bootstrap(settings), max_records=7, idle_exit_s=15)
    assert stats.consumed == 7 and stats.dead_lettered == 5
    assert rows(settings.database_url, "SELECT symbol FROM price_bars ORDER BY symbol") == [
        ("AMC",), ("GME",)]
    stored = rows(settings.database_url,
                  "SELECT reason, raw, source_offset FROM dead_letters ORDER BY source_offset")
    assert [r[0] for r in stored] == ["malformed_json", "malformed_json", "unknown_event_type",
                                      "invalid_event", "wrong_topic"]
    assert [bytes(r[1]) for r in stored] == bad
    letters = await read_topic(settings, topics.DLQ, expected=5)
    bodies = [json.loads(r.value) for r in letters]
    assert sorted(base64.b64decode(b["raw_b64"]) for b in bodies) == sorted(bad)
    assert {b["source_topic"] for b in bodies} == {settings.topic_prefix + topics.PRICES}
    assert all(b["error"] for b in bodies)


async def test_offsets_stay_uncommitted_while_the_database_is_down(settings, backend):
    dbname = conninfo_to_dict(settings.database_url)["dbname"]
    with psycopg.connect(backend.admin_database_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
    events = [factories.bar(symbol=s) for s in ("AMC", "GME", "BB", "NOK")]
    publish(settings, events)
    stats = LoopStats()
    stop = asyncio.Event()
    task = asyncio.create_task(run_persist(bootstrap(settings), stop=stop, stats=stats))
    try:
        for _ in range(300):
            if stats.retries >= 2:
                break
            await asyncio.sleep(0.1)
        assert stats.retries >= 2 and stats.health == "degraded"
        assert stats.consumed == 0
        partitions = [(settings.topic_prefix + topics.PRICES, p) for p in range(3)]
        assert set((await committed_offsets(settings, settings.persist_group,
                                            partitions)).values()) == {0}
        with psycopg.connect(backend.admin_database_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        for _ in range(300):
            if stats.consumed >= 4:
                break
            await asyncio.sleep(0.1)
        assert stats.health == "ready"
    finally:
        stop.set()
        await task
    assert rows(settings.database_url, "SELECT count(*) FROM price_bars") == [(4,)]
    after = await committed_offsets(settings, settings.persist_group, partitions)
    assert sum(after.values()) == 4
