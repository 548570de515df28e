"""An undeclared component model's declaration, read from the candidates it scored: the
weights that make its score from its components, the bar its passes imply, and a refusal
where the candidates do not say."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from amc_learning.intelligence.book import Book, Rule
from amc_learning.intelligence.inference import NotInferable, infer_component_model
from amc_learning.schemas.models import COMPONENT
from amc_learning.schemas.params import ComponentParams


def _candidates(seed: int, n: int = 2_000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"momentum": rng.uniform(0, 100, n), "volume": rng.uniform(0, 100, n),
            "news": rng.uniform(0, 100, n)}


def _passes_under(params: ComponentParams, values: dict[str, np.ndarray]) -> np.ndarray:
    """What the inferred rule passes, through the book every fit and the judge read."""
    frame = pl.DataFrame({"session": [0] * len(values["news"]), "return_7d": 0.0,
                          **{COMPONENT.format(c): v for c, v in values.items()}})
    book = Book.of(frame, params, 7)
    return book.score >= Rule.of(params).discovery_threshold


def test_a_weighted_score_gives_back_its_weights_and_its_bar():
    values = _candidates(1)
    raw = 0.5 * values["momentum"] + 0.3 * values["volume"] + 0.2 * values["news"]
    inferred = infer_component_model("my-scanner", "2.0", raw, (0, 100), values, raw >= 60)
    model = inferred.model
    assert {c.name: c.weight for c in model.components} == {
        "momentum": pytest.approx(0.5, abs=1e-6), "news": pytest.approx(0.2, abs=1e-6),
        "volume": pytest.approx(0.3, abs=1e-6)}
    assert (model.scale.low, model.scale.high) == pytest.approx((0, 100))
    assert 60 <= model.threshold <= raw[raw >= 60].min()
    assert inferred.r2 == pytest.approx(1.0) and inferred.agreement == 1.0
    # its rule passes exactly what the producer passed
    params = ComponentParams.declared(model)
    assert (_passes_under(params, values) == (raw >= 60)).all()
    assert "not declared" in inferred.note() and "2,000 of its candidates" in inferred.note()


def test_a_sum_of_points_is_a_weighted_score_on_a_scale_of_its_own():
    """Equal weights summing to 3: the declaration's weights sum to 1, its scale and bar
    are the producer's over 3, and its rule passes the same candidates."""
    values = _candidates(2)
    raw = values["momentum"] + values["volume"] + values["news"]
    inferred = infer_component_model("points", "1", raw, (0, 300), values, raw >= 180)
    model = inferred.model
    assert [c.weight for c in model.components] == [pytest.approx(1 / 3, abs=1e-6)] * 3
    assert (model.scale.low, model.scale.high) == pytest.approx((0, 100))
    assert (_passes_under(ComponentParams.declared(model), values) == (raw >= 180)).all()


def test_a_cap_on_passes_lowers_the_agreement_and_says_so():
    """A producer that passes only each session's 5 best of those over its bar (20 runs of
    100): no one threshold reproduces that, and the agreement says how far it is."""
    values = _candidates(3)
    raw = 0.6 * values["momentum"] + 0.4 * values["news"]
    passed = np.zeros(len(raw), dtype=bool)
    for run in range(20):
        mine = np.arange(run * 100, run * 100 + 100)
        passed[mine[np.argsort(-raw[mine])[:5]]] = True
    passed &= raw >= 50
    inferred = infer_component_model("capped", "1", raw, (0, 100), values, passed)
    assert 0.9 < inferred.agreement < 1.0
    assert f"{inferred.agreement:.1%} of their passes" in inferred.note()
    # "volume" plays no part in its score
    assert {c.name: c.weight for c in inferred.model.components}["volume"] == pytest.approx(
        0.0, abs=1e-6)


def test_candidates_that_do_not_say_what_the_model_is_are_refused_with_the_reason():
    values = _candidates(4)
    noise = np.random.default_rng(9).uniform(0, 100, len(values["news"]))
    with pytest.raises(NotInferable, match="not a weighted sum of its components"):
        infer_component_model("opaque", "1", noise, (0, 100), values, noise >= 50)
    raw = values["news"]
    with pytest.raises(NotInferable, match="every candidate passed"):
        infer_component_model("open", "1", raw, (0, 100), values, raw >= 0)
    few = {c: v[:10] for c, v in values.items()}
    with pytest.raises(NotInferable, match="10 candidates carry a score"):
        infer_component_model("few", "1", raw[:10], (0, 100), few, raw[:10] > 50)
    with pytest.raises(NotInferable, match="no components"):
        infer_component_model("bare", "1", raw, (0, 100), {}, raw > 50)
