"""The OpenAPI page's examples are what the API takes: each collect route's example is a
valid event of its kind, and a route's own kind is what it names when the event does not."""

from __future__ import annotations

import pytest

from amc_learning.api.contract import EVENT_OF, EXAMPLES
from amc_learning.service.collect import ROUTES, validated


@pytest.mark.parametrize("kind", sorted(ROUTES))
def test_each_collect_example_is_a_valid_event_of_its_route(kind):
    assert "event_type" not in EXAMPLES[kind] and "producer" not in EXAMPLES[kind]
    collected = validated(kind, EXAMPLES[kind], "scanner")
    assert collected.errors == []
    [event] = collected.events
    assert isinstance(event, EVENT_OF[kind]) and event.producer == "scanner"


def test_an_event_of_another_kind_is_refused_by_name():
    collected = validated("trade-outcome", {**EXAMPLES["discovery-data"],
                                            "event_type": "candidate_scored"}, "scanner")
    assert collected.errors == [{"loc": ["event_type"], "msg": "'candidate_scored' is not "
                                 "collected here: /learning/collect/trade-outcome takes "
                                 "'trade_filled'"}]


def test_records_under_a_format_must_be_objects():
    collected = validated("discovery-data", [[None], {"symbol": "AMC"}], "scanner",
                          "alphastack-4.1")
    assert collected.errors == [{"loc": [0], "msg": "a record is a JSON object",
                                 "type": "dict_type"}]
