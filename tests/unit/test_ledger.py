"""The simulated trading's ledger: what each params arm earned, beside the fallback params'
own trades on the same sessions — computed exactly as the real trading decides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from amc_learning.schemas.params import FALLBACK_PARAMS, ParamsPublished
from amc_learning.schemas.signing import Signature, Signer, Verifier, new_private_key
from amc_learning.simulator.ledger import COUNTERFACTUAL, Entry, Ledger
from amc_learning.simulator.world import SimConfig, World, simulate
from amc_learning.streams.params import ParamsReader, Record

SIGNER = Signer(new_private_key())


def test_an_entry_is_marked_at_its_horizon_and_open_until_then():
    ledger = Ledger(horizon=3)
    buy = Entry(10, date(2014, 1, 2), "v1 live", 0, 1.0, 2.0, 100.0)
    sell = Entry(10, date(2014, 1, 2), COUNTERFACTUAL, 1, -1.0, 1.5, 50.0)
    ledger.add(buy)
    ledger.add(sell)
    ledger.live[10] = "v1 live"
    ledger.close(10, np.array([101.0, 49.0]))
    assert ledger.pnl_pct(buy) is None  # two sessions short of the horizon
    ledger.close(12, np.array([110.0, 45.0]))
    assert ledger.pnl_pct(buy) == pytest.approx(2.0 * 0.10)
    assert ledger.pnl_pct(sell) == pytest.approx(-1.0 * 1.5 * -0.10)
    summary = ledger.summary()
    assert summary["arms"]["v1 live"]["fallback_same_sessions"]["pnl_pct"] == pytest.approx(0.15)
    assert summary["learned"] == {"sessions": 1, "trades": 1, "pnl_pct": pytest.approx(0.2),
                                  "fallback_trades": 1, "fallback_pnl_pct": pytest.approx(0.15),
                                  "per_session": [pytest.approx(0.05)]}  # 0.2 - 0.15
    # as the learner's one book: the session's trades' mean return over the horizon, on a
    # 1/horizon slice of equity (the counterfactual is not trading's)
    assert summary["book"] == {"2014-01-02": {"arm": "v1 live", "trades": 1, "other_arms": 0,
                                              "pct": pytest.approx(0.10 / 3 * 100)}}


def _live(version: int, **params) -> tuple[bytes, Signature]:
    now = datetime.now(UTC)
    body = FALLBACK_PARAMS.model_copy(update=params)
    message = ParamsPublished(name="default", version=version, issued_at=now,
                              valid_until=now + timedelta(days=1), mode="live",
                              regime="unknown", params=body)
    record = Record.signed(message, SIGNER)
    return record.value, record.signature


def test_the_counterfactual_fallback_is_exactly_what_trading_on_the_fallback_makes():
    """Before any version, the real trading runs on the fallback: its arm and the
    counterfactual must be the same trades, to the cent. Then a live version takes over
    and its sessions are compared with the fallback's on the same sessions."""
    # offered messages, no broker
    reader = ParamsReader(None, "learning.params.v1", Verifier([SIGNER.public_key]))
    config = SimConfig(seed=11, symbols=60, days=40)
    world = World(config, params=reader)
    for day, _ in enumerate(simulate(config, world=world), start=1):
        if day == 20:  # a looser version: more candidates pass, bolder thresholds
            assert reader.offer(*_live(1, discovery_threshold=0.6, buy_threshold=0.6)) is None
    summary = world.ledger.summary()
    fallback = summary["arms"]["fallback"]
    assert fallback["marked"] >= 5
    assert fallback["fallback_same_sessions"]["trades"] == fallback["marked"]
    assert fallback["fallback_same_sessions"]["pnl_pct"] == pytest.approx(fallback["pnl_pct"])
    learned = summary["arms"]["v1 live"]
    assert world.params_used["v1 live"] > 0 and learned["marked"] > learned["sessions"] > 0
    assert summary["learned"]["sessions"] == 20 - world.ledger.horizon + 1
    # what the learned arm traded differs from what the fallback would have
    assert learned["marked"] != learned["fallback_same_sessions"]["trades"]


def test_learned_minus_fallback_gets_an_interval_only_over_two_blocks_of_sessions():
    from amc_learning.entrypoints.run import with_interval

    gaps = list(np.random.default_rng(1).normal(0.05, 0.2, 30))
    pnl = {"horizon_sessions": 7, "arms": {}, "learned": {"sessions": 30, "per_session": gaps}}
    d = with_interval(pnl)["learned"]["difference"]
    assert d["total"] == pytest.approx(sum(gaps), abs=1e-4) and d["low"] < d["total"] < d["high"]
    assert "per_session" not in with_interval(pnl)["learned"]
    short = {**pnl, "learned": {"sessions": 10, "per_session": gaps[:10]}}
    assert "difference" not in with_interval(short)["learned"]
