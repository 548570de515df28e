"""The main job closes the feedback loop: the market is paced by the learner, the simulated
trading engine reads each version the learner publishes, and no decision is ever made on
params issued after its own session. Real broker, PostgreSQL and consumer processes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from amc_learning.adapters.scanner_weights import declared_file, structure_differs
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.entrypoints.run import run
from amc_learning.intelligence.points import PointsGuardrails
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.schemas.params import TieredParams
from amc_learning.service.backtest import backtest
from amc_learning.simulator.tiered import model
from amc_learning.store.report import models as report_models
from tests.integration.helpers import rows

pytestmark = pytest.mark.integration

#: Promotes whatever it judges, after a few sessions: this test is about the loop (pacing,
#: the reader, causality), not the statistics (tests/unit/test_rollout.py is).
EAGER = RolloutPolicy(min_sessions=3, canary_sessions=3, max_sessions=100, promote_at=0.0,
                      reject_at=-1.0)


def test_a_paced_run_trades_on_what_the_learner_publishes_never_on_params_from_its_future(
    settings,
):
    said: list[str] = []
    summary = run(bootstrap(settings), days=60, seed=3, symbols=40, bad_rate=0.0, start=None,
                  say=said.append, cycle_every=5, policy=EAGER)
    params = summary["params"]
    arms = params["decisions_by_params"]  # type: ignore[index]

    # the simulated trading engine's reader saw a version move and traded on it
    paths = {}
    for v in params["versions"]:  # type: ignore[index]
        paths.setdefault(v["version"], []).append(v["mode"])
    assert paths.get(1, [])[:3] == ["shadow", "canary", "live"], paths
    # (the canary arm gets a tenth of a few decisions a session: it may have none here)
    assert arms.get("fallback", 0) > 0 and arms.get("v1 live", 0) > 0, arms
    assert any("version 1 -> live" in line for line in said), said

    # causality: each decision's params entered their mode in a cycle as of an earlier
    # session; and before version 1 went canary, everything traded on the fallback
    entered = {(version, mode): as_of for version, mode, as_of in rows(
        settings.database_url,
        "SELECT version, mode, min(as_of) FROM params_history WHERE published"
        " GROUP BY version, mode")}
    decided = rows(settings.database_url,
                   "SELECT (decided_at AT TIME ZONE 'UTC')::date, params_version, params_mode"
                   " FROM learning_decisions WHERE NOT is_synthetic")
    canary_from: date = entered[(1, "canary")]
    assert canary_from < entered[(1, "live")]
    for session, version, mode in decided:
        if version is None:
            continue
        assert entered[(version, mode)] < session, (session, version, mode)
    assert all(version is None for session, version, _ in decided if session <= canary_from)
    assert sum(1 for _, version, _ in decided if version is not None) == sum(
        n for arm, n in arms.items() if arm.startswith("v"))

    # the ledger marks the learned sessions against the fallback on the same sessions
    pnl = params["pnl"]  # type: ignore[index]
    assert pnl["learned"]["sessions"] > 0 and pnl["learned"]["fallback_trades"] >= 0
    assert set(pnl["arms"]) >= {"fallback", "fallback (counterfactual)", "v1 live"}

    # the backtest of the stored history is this loop replayed: the same versions on the
    # same dates, and on every session trading made wholly under one arm (no canary share),
    # the same P&L as the ledger marked as one book
    deps = bootstrap(settings)
    replayed = backtest(deps, policy=EAGER, every=5)
    deps.close()
    last = max(date.fromisoformat(s) for s in replayed["daily"]["session"])
    stored = [(str(as_of), version, mode) for version, mode, as_of in rows(
        settings.database_url, "SELECT version, mode, as_of FROM params_history"
        " ORDER BY as_of, recorded_at") if as_of < last]
    assert [(v["date"], v["version"], v["mode"]) for v in replayed["versions"]
            if date.fromisoformat(v["date"]) < last] == stored
    book = pnl["book"]
    daily = dict(zip(replayed["daily"]["session"], replayed["daily"]["learned"], strict=True))
    whole = [s for s, b in book.items() if b["other_arms"] == 0 and s in daily]
    learned = [s for s in whole if book[s]["arm"] != "fallback"]
    assert len(whole) > 20 and len(learned) > 5, (len(whole), len(learned))
    assert [round(daily[s] * 100, 4) for s in whole] == [
        pytest.approx(book[s]["pct"], abs=1e-4) for s in whole]
    # sessions with no trade earn nothing in either
    assert all(daily[s] == 0 for s in daily if s not in book)


def test_a_run_in_amc_traders_shapes_reaches_the_learner_through_the_adapters(settings):
    """`run --producer amc-trader`: scan rows with points and tiers, learning_decisions
    rows with AMC-Trader's labels, Alpaca fill messages, all read back by the adapters."""
    # the simulated scanner is AMC-Trader's 3.3.1 in the tiered world: the points fit's
    # out-of-sample gate is lenient here, as the judge is (EAGER): this test is about the
    # wiring; the statistics are test_points' and the experiment's
    summary = run(bootstrap(settings), days=170, seed=3, symbols=30, bad_rate=0.002,
                  start=None, say=lambda _: None, cycle_every=5, policy=EAGER,
                  guardrails=PointsGuardrails(min_z=0.01, min_tier_n=50,
                                              prior_strength=200),
                  producer="amc-trader")
    shapes = summary["producer"]
    assert shapes["rejected"] == {} and shapes["records"] == shapes["events"] > 0
    produced, stored = summary["produced"], summary["stored"]
    assert sum(produced.values()) == sum(stored.values()) + summary["rejected"]

    url = settings.database_url
    assert rows(url, "SELECT DISTINCT scoring_model, scoring_version, raw_low, raw_high"
                     " FROM discovery_candidates") == [("amc-scanner", "3.3.1", -75.0, 305.0)]
    # each decision read back under the type its AMC-Trader label means (which types a
    # run makes depends on the params it learned: a recalibration once made IGNOREs)
    pairs = set(rows(url, "SELECT DISTINCT decision_type, label FROM learning_decisions"
                          " WHERE NOT is_synthetic"))
    assert pairs <= {("BUY", "BUY"), ("SELL", "SELL"), ("HOLD", "HOLD"),
                     ("IGNORE", "RESEARCH"), ("BUY", "BUY_MORE"), ("SELL", "TRIM_50")}
    assert ("BUY", "BUY_MORE") in pairs  # a BUY on a symbol held
    # every fill found its decision by the order's tag (but the exits of positions the
    # world opened before the run's first session: their decisions were never written)
    [(fills, linked)] = rows(url, "SELECT count(*), count(d.id) FROM learning_trades t"
                                  " LEFT JOIN learning_decisions d"
                                  " ON d.decision_id = t.decision_id WHERE t.trade_id IN"
                                  " (SELECT trade_id FROM learning_trades"
                                  "  WHERE fill_type = 'ENTRY')")
    assert fills > 0 and linked == fills
    models = {s["scoring_model"] for (s,) in rows(
        url, "SELECT summary FROM learning_cycles WHERE kind = 'daily'")}
    assert models == {"amc-scanner 3.3.1"}
    # the learner learned the scanner's points table, and its discovery used it
    arms = summary["params"]["decisions_by_params"]
    assert any(arm.startswith("v") for arm in arms), (arms, summary["params"]["versions"])
    # a decision names the table version that passed it, as AMC-Trader's rows carry it
    named = rows(url, "SELECT DISTINCT params_version FROM learning_decisions"
                      " WHERE NOT is_synthetic AND params_version IS NOT NULL")
    assert named and {int(arm.split()[0][1:]) for arm in arms if arm.startswith("v")} == {
        int(v) for (v,) in named}
    live = [p for (p,) in rows(url, "SELECT params FROM params_history"
                                    " WHERE name = 'amc-scanner:3.3.1' AND mode = 'live'")]
    assert live and all(p["kind"] == "tiered" and p["model"]["version"] == "3.3.1"
                        for p in live)
    declared = TieredParams.declared(model())
    assert any(p["tables"] != declared.tables or p["entry_threshold"] != 60 for p in live)
    assert rows(url, "SELECT count(*) FROM params_history WHERE name = 'default'") == [(0,)]
    # ... and wrote it as the scanner's own file
    exported = summary["params"]["export"]
    written = json.loads(Path(exported["path"]).read_text())
    assert structure_differs(declared_file(model()), written) is None
    newest = TieredParams.model_validate(live[-1])
    in_file = [(f.name, t.name) for f in model().factors for t in f.tiers if t.in_file]
    if any(newest.tables[f][t] != declared.tables[f][t] for f, t in in_file):
        assert written["version"].startswith("3.3.1+learned.")
    else:  # what it learned is not in the file: the notes say so
        assert written["version"] == "3.3.1", exported
        assert any("not in the file" in n or "0 learned changes" in n
                   for n in exported["notes"]), exported

    # the report's section for the scanner: what trading made under each table version
    deps = bootstrap(settings)
    [(last,)] = rows(url, "SELECT max((decided_at AT TIME ZONE 'UTC')::date)"
                          " FROM learning_decisions")
    with deps.db.unit_of_work() as uow:
        [scanner] = report_models(uow, last)
    deps.close()
    assert scanner.scoring_model == "amc-scanner 3.3.1"
    by_arm = dict(zip(scanner.arms["arm"], scanner.arms["decisions"], strict=True))
    [(decided,)] = rows(url, "SELECT count(*) FROM learning_decisions WHERE NOT is_synthetic")
    assert sum(by_arm.values()) == decided  # every decision of the scanner, once
    assert {int(a.split()[0][1:]) for a in by_arm if a.startswith("v")} == {
        int(v) for (v,) in named}
