"""The simulator is deterministic, continues itself, and carries the planted effects."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from pydantic import ValidationError

from amc_learning.schemas.registry import decode_event
from amc_learning.simulator.corrupt import CORRUPTIONS, corrupt
from amc_learning.simulator.market import load_history
from amc_learning.simulator.world import DEFAULT_START, PlantedEffects, SimConfig, World, simulate


def test_same_seed_same_events():
    a = list(simulate(SimConfig(symbols=20, days=5)))
    b = list(simulate(SimConfig(symbols=20, days=5)))
    assert [e.model_dump() for day in a for e in day] == [e.model_dump() for day in b for e in day]


def test_a_later_start_continues_the_same_world():
    history = load_history()
    whole = list(simulate(SimConfig(symbols=20, days=12)))
    tenth = history.sessions[history.index_of(DEFAULT_START) + 10]
    tail = list(simulate(SimConfig(symbols=20, days=2, start=tenth)))
    assert [e.model_dump() for e in tail[0]] == [e.model_dump() for e in whole[10]]


def test_every_session_has_all_event_families_and_index_bars():
    [day] = list(simulate(SimConfig(symbols=30, days=1)))
    kinds = Counter(e.event_type for e in day)
    assert kinds["price_bar_closed"] == 32  # 30 symbols + ^IXIC + ^VIX
    assert kinds["candidate_scored"] == 30
    assert {e.symbol for e in day if e.event_type == "price_bar_closed"} >= {"^IXIC", "^VIX"}


def test_planted_alpha_is_in_the_returns():
    """Regressing excess returns on scores recovers the planted coefficients."""
    effects = PlantedEffects()
    world = World(SimConfig(symbols=300, effects=effects))
    xs, ys = [], []
    for _ in range(120):
        world.step(emit=False)
        index_ret = np.log(world.hist.close[world.t - 1] / world.hist.close[world.t - 2])
        xs.append(world.scores() - 0.5)
        ys.append(world.returns[-1] - world.beta * index_ret)
    x, y = np.vstack(xs), np.concatenate(ys)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    catalyst, sentiment = coef[2], coef[5]
    assert catalyst == pytest.approx(effects.component_alpha["catalyst"], abs=0.0015)
    assert abs(sentiment) < 0.0015


def test_days_beyond_the_history_are_a_clear_error():
    with pytest.raises(ValueError, match=r"only \d+ sessions"):
        list(simulate(SimConfig(symbols=5, days=100_000)))


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_every_corruption_is_rejected_by_the_contract(kind):
    [day] = list(simulate(SimConfig(symbols=5, days=1)))
    rng = random.Random(1)
    for event in day[:10]:
        broken = CORRUPTIONS[kind](event.model_dump_json().encode(), rng)
        with pytest.raises(ValidationError):
            decode_event(broken)
    assert corrupt(day[0], rng)[0] in CORRUPTIONS


def test_catalysts_follow_the_catalyst_score_and_match_the_expected_kind():
    days = list(simulate(SimConfig(symbols=60, days=40)))
    events = [e for day in days for e in day]
    catalysts = [e for e in events if e.event_type == "catalyst_observed"]
    assert catalysts, "the simulator must emit catalyst events"
    strong = [c.magnitude for c in catalysts]
    assert np.mean(strong) > 0.6  # catalysts happen mostly where the catalyst score is high
    kinds = {c.symbol: c.kind for c in catalysts}
    expected = [e for e in events if e.event_type == "thesis_decided"
                and e.thesis.expected_catalyst and e.symbol in kinds]
    assert expected and all(e.thesis.expected_catalyst == kinds[e.symbol] for e in expected)
