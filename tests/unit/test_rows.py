"""Planning a batch: rows for valid events, dead letters with a reason for the rest."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from amc_learning.consumers.outcomes import outcome_event
from amc_learning.schemas import topics
from amc_learning.schemas.outcomes import OutcomeUpdated
from amc_learning.store.rows import (
    BARS,
    CANDIDATES,
    DECISIONS,
    OUTCOMES,
    TRADES,
    dead_letter_row,
    plan_batch,
)
from tests import factories


@dataclass
class FakeRecord:
    topic: str
    value: bytes | None
    key: bytes | None = b"AMC"
    partition: int = 0
    offset: int = 0


def plan(*records, max_event_bytes=10_000):
    numbered = [FakeRecord(r.topic, r.value, r.key, r.partition, i) for i, r in enumerate(records)]
    return plan_batch(numbered, consumer="persist", max_event_bytes=max_event_bytes,
                      now=datetime(2024, 1, 1, tzinfo=UTC))


def rec(topic, event):
    return FakeRecord(topic, event.model_dump_json().encode())


def test_each_event_type_lands_in_its_table_with_its_values():
    t, c, f, b = factories.thesis(), factories.candidate(), factories.fill(), factories.bar()
    p = plan(rec(topics.THESIS, t), rec(topics.DISCOVERY, c), rec(topics.TRADES, f),
             rec(topics.PRICES, b))
    assert not p.dead_letters
    decision = dict(zip(DECISIONS.columns, p.rows[DECISIONS][0], strict=True))
    assert decision["decision_id"] == t.decision_id
    assert decision["recommendation_source"] == "thesis"
    assert json.loads(decision["market_conditions"])["regime"] == "bull_low_vol"
    assert json.loads(decision["decision_data"])["event_id"] == str(t.event_id)
    candidate = dict(zip(CANDIDATES.columns, p.rows[CANDIDATES][0], strict=True))
    assert candidate["score_catalyst"] == 0.8 and candidate["passed"] is True
    assert p.rows[TRADES][0][1] == f.fill_id
    assert p.rows[BARS][0][2] == b.session


@pytest.mark.parametrize("value,reason", [
    (b'{"event_id": ', "malformed_json"),
    (b"\xff\xfe\x00", "malformed_json"),
    (b"[1, 2]", "invalid_event"),
    (b'{"event_type": "rumour_heard"}', "unknown_event_type"),
    (b'{"event_type": "thesis_decided", "symbol": "AMC"}', "invalid_event"),
])
def test_bad_payloads_become_dead_letters_with_a_reason(value, reason):
    p = plan(FakeRecord(topics.THESIS, value))
    assert p.accepted == 0
    [letter] = p.dead_letters
    assert letter.reason == reason
    assert base64.b64decode(letter.raw_b64) == value
    assert letter.source_topic == topics.THESIS and letter.error


def test_an_event_on_the_wrong_topic_is_rejected():
    p = plan(rec(topics.PRICES, factories.thesis()))
    assert [d.reason for d in p.dead_letters] == ["wrong_topic"]


def test_oversized_records_are_rejected_without_decoding():
    p = plan(FakeRecord(topics.THESIS, b"x" * 5000), max_event_bytes=4096)
    [letter] = p.dead_letters
    assert letter.reason == "too_large" and letter.raw_size == 5000


def test_a_tombstone_is_dead_lettered_not_crashed_on():
    p = plan(FakeRecord(topics.THESIS, None))
    assert [d.reason for d in p.dead_letters] == ["malformed_json"]


def test_valid_events_survive_among_bad_ones_and_batch_duplicates_collapse():
    good = factories.bar()
    p = plan(rec(topics.PRICES, good), FakeRecord(topics.PRICES, b"{"), rec(topics.PRICES, good))
    assert p.accepted == 1 and len(p.dead_letters) == 1
    assert p.sources[BARS][0].offset == 0


def test_dead_letter_rows_carry_a_hash_that_tells_payloads_apart():
    a, b = plan(FakeRecord(topics.THESIS, b"{a"), FakeRecord(topics.THESIS, b"{b")).dead_letters
    assert dead_letter_row(a)[9] != dead_letter_row(b)[9]


def test_the_last_outcome_stays_even_when_it_repeats_an_earlier_one_word_for_word():
    """A tracker restarted after a crash re-publishes: matured, then an older open, then
    matured again (the same content, so the same event id). The last one is the truth."""
    def outcome(revision: int, kind: str) -> OutcomeUpdated:
        return outcome_event({"decision_id": "cand:run-1:AMC", "symbol": "AMC",
                              "decision_type": "IGNORE", "tracked_from": "candidate",
                              "is_counterfactual": True, "entry_price": 10.0,
                              "revision": revision, "outcome_type": kind,
                              "sessions_elapsed": revision - 26})
    matured, older = outcome(56, "matured"), outcome(53, "open")
    again = outcome(56, "matured")
    assert again.event_id == matured.event_id
    p = plan(*(rec(topics.OUTCOMES, o) for o in (matured, older, again)))
    [row] = p.rows[OUTCOMES]
    assert (row[OUTCOMES.columns.index("revision")],
            row[OUTCOMES.columns.index("outcome_type")]) == (56, "matured")
    # and a duplicate of an insert-only event still collapses
    bar = factories.bar()
    assert len(plan(rec(topics.PRICES, bar), rec(topics.PRICES, bar)).rows[BARS]) == 1
