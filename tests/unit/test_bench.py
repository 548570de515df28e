"""The benchmark's own parts that could silently mislead: its workload and its results."""

from __future__ import annotations

import json
from collections import Counter

from amc_learning.schemas.registry import decode_event
from bench.__main__ import Results
from bench.workload import records


def test_workload_events_are_valid_distinct_and_mixed_as_documented():
    batch = records(2_000)
    events = [decode_event(r.value) for r in batch]
    assert len({e.event_id for e in events}) == 2_000
    keys = Counter(e.event_type for e in events)
    assert keys == {"candidate_scored": 1_100, "thesis_decided": 600, "trade_filled": 300}
    # every event must become a new row: the idempotency keys of each kind are distinct
    candidates = {(e.run_id, e.symbol) for e in events if e.event_type == "candidate_scored"}
    assert len(candidates) == 1_100
    assert len({e.decision_id for e in events if e.event_type == "thesis_decided"}) == 600
    assert len({e.fill_id for e in events if e.event_type == "trade_filled"}) == 300
    mean = sum(len(r.value) for r in batch) / len(batch)
    assert 600 < mean < 900, mean
    assert all(r.key == e.symbol.encode() for r, e in zip(batch, events, strict=True))


def test_results_nest_dotted_keys_with_a_spread_beside_each_median():
    results = Results()
    assert results.add("cycle.1m.seconds", [3.0, 1.0, 2.0]) == 2.0
    results.add("ingest.ratio", [0.5, 0.7, 0.6])
    data = json.loads(json.dumps(results.data))
    assert data["cycle"]["1m"]["seconds"] == 2.0
    assert data["cycle"]["1m"]["seconds_spread"] == {"min": 1.0, "max": 3.0, "runs": 3}
    assert data["ingest"]["ratio"] == 0.6
    results.add("publish.max_us", [4000.0, 4100.0, 5000.0])
    lines = {line.split()[0]: line for line in results.table().splitlines()[1:]}
    assert lines["ingest.ratio"].endswith(">= 0.6 ok")
    assert lines["cycle.1m.seconds"].endswith("<= 60 ok")
    assert lines["publish.max_us"].endswith("<= 1000 MISSED")
