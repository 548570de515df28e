"""A component model's weights and threshold, learned on a world with planted effects:
weight moves to the component that earns, away from the one that costs, in bounded
steps, only with out-of-sample evidence; noise changes nothing."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from amc_learning.intelligence.book import Book, Rule
from amc_learning.intelligence.components import ComponentGuardrails, fit_components
from amc_learning.schemas.common import ScoringModel
from amc_learning.schemas.models import COMPONENT
from amc_learning.schemas.params import ComponentParams
from amc_learning.simulator.research import forward, persistent, sessions_calendar

NAMES = ("momentum", "squeeze", "catalyst", "options")
CURRENT = ComponentParams(model=ScoringModel(name="stack", version="1"),
                          weights={c: 0.25 for c in NAMES}, threshold=60.0)


def world(seed: int, alpha: tuple[float, ...], sessions: int = 400,
          symbols: int = 80) -> pl.DataFrame:
    """Components on 0-100 (persistent, so a stock keeps its score for days) and the
    7-session return; a component's daily alpha is `alpha` per point above 50."""
    rng = np.random.default_rng(seed)
    latent = persistent(rng, sessions, (symbols, len(NAMES)), 0.9)
    values = np.clip(50 + 20 * latent, 0, 100)
    daily = np.zeros((sessions, symbols))
    daily[1:] = (0.0003 + 0.01 * rng.standard_normal((sessions - 1, 1))
                 + ((values[:-1] - 50) * np.array(alpha)).sum(axis=2)
                 + 0.02 * rng.standard_normal((sessions - 1, symbols)))
    cum = np.vstack([np.zeros((1, symbols)), np.cumsum(daily, axis=0)])
    calendar = np.array(sessions_calendar(date(2016, 1, 4), sessions), dtype="datetime64[D]")
    return pl.DataFrame({
        "session": np.repeat(calendar, symbols),
        **{COMPONENT.format(c): values[:, :, k].ravel() for k, c in enumerate(NAMES)},
        "return_7d": forward(cum, 7).ravel(),
    }).with_columns(pl.col("session").cast(pl.Date),
                    pl.col("return_7d").fill_nan(None)).drop_nulls("return_7d")


def test_weight_moves_to_what_earns_in_bounded_steps_and_the_new_rule_earns_more():
    # 160 symbols: a session's picks share one book, so its P&L is their mean (decision 016)
    data = world(1, alpha=(0.0002, 0.0, -0.0002, 0.00005), symbols=160)
    learned, evidence = fit_components(data, CURRENT, scale=(0, 100))
    assert evidence["judged"]["accepted"], evidence
    w = learned.weights
    assert w["momentum"] > 0.25 > w["catalyst"] and abs(sum(w.values()) - 1) < 1e-6
    assert max(abs(w[c] - 0.25) for c in NAMES) <= ComponentGuardrails().max_weight_step + 1e-9
    assert evidence["ic_t"]["momentum"] > 2 and evidence["ic_t"]["catalyst"] < -2
    assert abs(learned.threshold - 60) <= ComponentGuardrails().max_threshold_step
    # on a later world of the same truth, never seen by the fit, it earns more
    later = world(2, alpha=(0.0002, 0.0, -0.0002, 0.00005))
    book_new, book_old = (Book.of(later, p, 7) for p in (learned, CURRENT))
    assert book_new.pnl(Rule.of(learned)).mean() > book_old.pnl(Rule.of(CURRENT)).mean()


@pytest.mark.parametrize("seed", [3, 4])
def test_noise_changes_nothing(seed):
    learned, evidence = fit_components(world(seed, alpha=(0.0,) * 4), CURRENT,
                                       scale=(0, 100))
    assert learned == CURRENT and not evidence["judged"]["accepted"], evidence


def test_too_little_history_keeps_the_current_params():
    learned, evidence = fit_components(world(5, (0.0002, 0, 0, 0), sessions=20, symbols=10),
                                       CURRENT, scale=(0, 100))
    assert learned == CURRENT and evidence["why"] == "too little history"
