"""Scoring models as data: the shipped declarations, the tiers their boundaries give."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from amc_learning.intelligence.points import tier_columns
from amc_learning.schemas.models import (
    SENT,
    TIER,
    TieredModel,
    parse,
    shipped,
    tier_of,
    tiers_of,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader" / "data"


def scanner() -> TieredModel:
    (model,) = [m for m in shipped() if m.name == "amc-scanner"]
    assert isinstance(model, TieredModel)
    return model


def test_the_scanners_declaration_holds_the_points_of_its_shipped_file():
    weights = json.loads((FIXTURES / "scanner_weights.json").read_text())
    model = scanner()
    assert model.version == weights["version"] == "3.3.1"
    for factor in model.factors:
        in_file = {t.name: t.points for t in factor.tiers if t.in_file}
        assert in_file == weights[factor.name], factor.name
    for bonus, points in model.bonuses.items():
        assert weights[bonus] == points
    tables = {k for k, v in weights.items() if isinstance(v, dict | int)
              and k not in ("version",)}
    assert tables == {f.name for f in model.factors} | set(model.bonuses)  # all 18
    assert model.read_by_producer == ["chase_risk", "dead_cat_pattern", "coil_spring",
                                      "entry_timing"]
    assert (model.entry_threshold, model.bands) == (60, [100, 150, 200])


#: The boundaries scanner-tiers.md lists, as cases of our own: (factor, measurement, tier).
CASES = [
    ("float", 5_000_000, "ultra_tiny"), ("float", 5_000_001, "ultra_low"),
    ("float", 30_000_000, "low"), ("float", 50_000_000, "moderate"),
    ("float", 50_000_001, "large"),
    ("momentum", -1.0, "perfect"), ("momentum", 3.0, "perfect"), ("momentum", 3.01, "early"),
    ("momentum", 5.0, "early"), ("momentum", 8.0, "moving"), ("momentum", 8.5, "late"),
    ("momentum", -1.5, "falling"),
    ("squeeze", 10.0, "extreme"), ("squeeze", 7.0, "high"), ("squeeze", 4.9, "low"),
    ("squeeze", 2.9, "minimal"),
    ("gap", 15.0, "huge"), ("gap", 9.9, "moderate"), ("gap", -10.0, "deep_dip"),
    ("gap", -5.0, "dip"), ("gap", 2.0, "flat"),
    ("multiday", 3, "ideal"), ("multiday", 1, "building"), ("multiday", 0, "none"),
    ("market_cap", 750e6, "ideal"), ("market_cap", 100e6, "micro"),
    ("market_cap", 99e6, "nano"), ("market_cap", 20e6, "below_nano"),
    ("chase_risk", 4, "extreme_moved"), ("chase_risk", 2, "high_moved"),
    ("chase_risk", 1, "moderate_moved"), ("chase_risk", 0, "early_mover"),
    ("coil_spring", 80, "perfect"), ("coil_spring", 79.9, "strong"),
    ("coil_spring", 0.5, "weak"), ("coil_spring", 0, None),
    ("entry_timing", "PRE-MARKET", "pre_market"), ("entry_timing", "MIDDAY", "afternoon"),
    ("entry_timing", "POWER HOUR", None), ("catalyst", "bearish", "bearish"),
]


@pytest.mark.parametrize(("name", "value", "tier"), CASES)
def test_a_measurement_falls_in_the_tier_the_scanners_code_gives_it(name, value, tier):
    factor = scanner().factor(name)
    assert tier_of(factor, {factor.measurement: value}) == tier


def test_a_missing_measurement_is_no_tier_never_the_lowest():
    model = scanner()
    assert all(tier_of(f, {}) is None for f in model.factors)
    assert tier_of(model.factor("float"), {"float_shares": None}) is None


def test_alphastacks_weights_and_threshold():
    (model,) = [m for m in shipped() if m.name == "alphastack"]
    assert model.kind == "component" and model.threshold == 75
    assert {c.name: c.weight for c in model.components} == {
        "volume_momentum": 0.30, "squeeze": 0.25, "catalyst": 0.20, "sentiment": 0.10,
        "options": 0.08, "technical": 0.07}


@pytest.mark.parametrize(("change", "says"), [
    ({"threshold": 120}, "outside the scale"),
    ({"components": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.4}]},
     "sum to 1"),
    ({"components": [{"name": "a", "weight": 0.5}, {"name": "a", "weight": 0.5}]},
     "declared twice"),
    ({"kind": "points"}, "tiered"),
    ({"scale": {"low": 10, "high": 0}}, "low must be below high"),
])
def test_a_declaration_that_cannot_be_is_refused_with_the_reason(change, says):
    base = {"kind": "component", "name": "x", "version": "1", "scale": {"low": 0, "high": 100},
            "threshold": 50, "components": [{"name": "a", "weight": 1.0}]}
    with pytest.raises(ValidationError, match=says):
        parse(json.dumps({**base, **change}))


def test_a_whole_frame_gets_the_tiers_one_candidate_at_a_time_would():
    """`points.tier_expr` (the learner's reading of stored candidates) agrees with
    `tiers_of` on every row: sent tiers and labels (known or not), measurements on and
    around every declared boundary, missing ones."""
    model = scanner()
    rng = random.Random(7)
    rows: list[tuple[dict[str, str], dict[str, float | None]]] = []
    for _ in range(3_000):
        sent: dict[str, str] = {}
        measured: dict[str, float | None] = {}
        for f in model.factors:
            labels = [t.name for t in f.tiers] + [lb for t in f.tiers for lb in t.labels]
            if rng.random() < 0.3:
                sent[f.name] = rng.choice([*labels, "not-a-tier"])
            edges = [b for t in f.tiers if t.bounds is not None
                     for b in t.bounds.model_dump().values() if b is not None]
            if edges and rng.random() < 0.8:
                measured[f.measurement] = rng.choice(edges) + rng.choice([-0.5, 0.0, 0.5])
        rows.append((sent, measured))
    columns: dict[str, list[object]] = {}
    for f in model.factors:
        columns[SENT.format(f.name)] = [s.get(f.name) for s, _ in rows]
        if any(t.bounds is not None for t in f.tiers):
            columns[f.measurement] = [m.get(f.measurement) for _, m in rows]
    frame = pl.DataFrame(columns, schema={
        c: pl.Utf8 if c.startswith("sent:") else pl.Float64 for c in columns})
    got = tier_columns(model, frame)
    for i, (sent, measured) in enumerate(rows):
        expected = tiers_of(model, sent, measured)
        assert {f: got[TIER.format(f)][i] for f in expected} == expected, (sent, measured)
    assert got[TIER.format("gap")].drop_nulls().n_unique() >= 5  # the cases were varied
