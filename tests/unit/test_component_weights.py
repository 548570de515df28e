"""A component model's learned weights in its producer's own shape: AlphaStack 4.1's
`BASE_WEIGHTS` (S1..S6) and trade-ready bar, with a history entry per learned change."""

from __future__ import annotations

import json
from datetime import date

from amc_learning.adapters.component_weights import component_weights, declared_weights
from amc_learning.adapters.scanner_weights import Learned, structure_differs
from amc_learning.schemas.models import ComponentModel, shipped
from amc_learning.schemas.params import ComponentParams

ALPHASTACK = next(m for m in shipped() if (m.name, m.version) == ("alphastack", "4.1"))
assert isinstance(ALPHASTACK, ComponentModel)


def test_the_declared_weights_are_alphastacks_base_weights_by_its_own_keys():
    file = declared_weights(ALPHASTACK)
    # ScoringEngine.BASE_WEIGHTS in backend/src/agents/alphastack_v4.py, and its 75 bar
    assert file["BASE_WEIGHTS"] == {"S1": 0.30, "S2": 0.25, "S3": 0.20, "S4": 0.10,
                                    "S5": 0.08, "S6": 0.07}
    assert file["TRADE_READY_SCORE"] == 75.0
    assert file["components"]["S1"] == "volume_momentum" and file["update_history"] == []
    same = component_weights(ComponentParams.declared(ALPHASTACK), ALPHASTACK,
                             [Learned(3, date(2026, 11, 2))])
    assert same == file  # nothing changed: no history entry, no new version


def test_learned_weights_replace_the_base_ones_with_their_evidence():
    learned = ComponentParams.declared(ALPHASTACK)
    weights = dict(learned.weights, catalyst=0.30, technical=0.0, options=0.05)
    learned = learned.model_copy(update={"weights": weights, "threshold": 70.0})
    base = declared_weights(ALPHASTACK)
    notes = [{"component": "catalyst", "ic_t": 3.41}, {"component": "technical", "ic_t": -2.2}]
    out = component_weights(learned, ALPHASTACK, [Learned(3, date(2026, 11, 2), notes)], base)
    assert structure_differs(base, out) is None  # the same keys and types
    assert out["BASE_WEIGHTS"]["S3"] == 0.30 and out["BASE_WEIGHTS"]["S6"] == 0.0
    assert abs(sum(out["BASE_WEIGHTS"].values()) - 1.0) < 1e-9
    assert out["TRADE_READY_SCORE"] == 70.0
    assert out["version"] == "4.1+learned.3" and out["last_updated"] == "2026-11-02"
    entry = out["update_history"][-1]
    assert "S3 (catalyst): 0.2 \u2192 0.3 (IC t +3.41)" in entry["changes"]
    assert "TRADE_READY_SCORE: 75 \u2192 70" in entry["changes"]
    assert "reads no file of them yet" in entry["note"]
    assert json.loads(json.dumps(out)) == out  # plain JSON
    again = component_weights(learned, ALPHASTACK, [Learned(4, date(2026, 12, 1))], out)
    assert again == out  # a version that changed nothing adds no entry
