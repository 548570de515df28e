"""Every event delivered twice, shuffled within a window of its key."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from tests.faults.conftest import Tally
from tests.faults.pipeline import Budget, run_calm, stream
from tests.integration.helpers import outcome_rows, stored_event_ids

pytestmark = pytest.mark.integration

WINDOW = 20  # events of one key (symbol) whose order is shuffled together
SEED = 5


def doubled_and_shuffled(events, rng: random.Random) -> list:  # type: ignore[no-untyped-def]
    """Each event twice; within each key, windows of WINDOW events shuffled in place (the
    keys stay interleaved as they were)."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, event in enumerate(events):
        by_key[event.key].append(i)
    slots: list[tuple[int, int, object]] = []
    for positions in by_key.values():
        for w in range(0, len(positions), WINDOW):
            window = positions[w:w + WINDOW]
            shuffled = [events[i] for i in window] * 2
            rng.shuffle(shuffled)
            places = sorted(window * 2)
            slots.extend((place, n, e) for n, (place, e) in enumerate(zip(places, shuffled,
                                                                           strict=True)))
    return [e for _, _, e in sorted(slots, key=lambda s: (s[0], s[1]))]


def test_each_event_twice_and_out_of_order_is_stored_once_with_the_same_outcomes(
    more_settings, tally: Tally, budget: Budget
):
    events = stream(29, 40, 120)
    hostile = doubled_and_shuffled(events, random.Random(SEED))
    results = {}
    for name, feed in (("calm", events), ("hostile", hostile)):
        s = more_settings()
        run_calm(s, feed, budget)
        results[name] = (stored_event_ids(s.database_url), outcome_rows(s))
    (calm_stored, calm_outcomes), (stored, got) = results["calm"], results["hostile"]
    tally.count(events, s.database_url, sent=len(hostile))
    tally.note = f"{len(events)} events, each twice, shuffled within {WINDOW} per symbol"
    assert sorted(hostile, key=lambda e: str(e.event_id))[::2] == sorted(
        events, key=lambda e: str(e.event_id))
    assert hostile != [e for e in events for _ in range(2)]  # the order really changed
    assert tally.lost == 0 and tally.duplicated == 0 and tally.stored == len(events)
    assert stored == calm_stored
    assert len(got) == len(calm_outcomes) > 100
    assert got == calm_outcomes
