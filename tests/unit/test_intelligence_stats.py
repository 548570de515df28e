"""The small-sample statistics, against hand-computed values."""

import numpy as np
import pytest

from amc_learning.intelligence.stats import (
    benjamini_hochberg,
    beta_binomial_shrink,
    newey_west_t,
    wilson_interval,
)


def test_wilson_interval_matches_the_formula_and_handles_no_trials():
    lower, upper = wilson_interval(np.array([8, 0]), np.array([10, 0]))
    # p = 0.8, n = 10: centre 0.99208/1.38416, half 1.96*sqrt(0.016 + 0.009604)/1.38416
    assert lower[0] == pytest.approx(0.4902, abs=1e-4)
    assert upper[0] == pytest.approx(0.9433, abs=1e-4)
    assert (lower[1], upper[1]) == (0.0, 1.0)


def test_benjamini_hochberg_q_values():
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    assert q == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])


def test_shrinkage_pulls_small_groups_to_the_pool_and_leaves_big_ones():
    wins = np.array([2, 600, 400, 500])
    n = np.array([2, 1000, 1000, 1000])
    shrunk = beta_binomial_shrink(wins, n)
    assert shrunk[0] < 0.7  # 2 of 2 is not a 100 % pattern
    assert shrunk[1] == pytest.approx(0.6, abs=0.01)
    assert shrunk[2] == pytest.approx(0.4, abs=0.01)


def test_newey_west_deflates_the_t_of_overlapping_sums():
    rng = np.random.default_rng(0)
    daily = rng.normal(0.05, 1.0, 5000)
    overlapping = np.convolve(daily, np.ones(7), mode="valid")  # 7-day sums sampled daily
    plain = overlapping.mean() / (overlapping.std(ddof=1) / np.sqrt(len(overlapping)))
    hac = newey_west_t(overlapping, lags=7)
    iid = newey_west_t(daily, lags=0)
    assert iid == pytest.approx(daily.mean() / (daily.std() / np.sqrt(len(daily))), rel=1e-3)
    assert hac < plain / 2  # about sqrt(7) smaller
    assert hac == pytest.approx(iid, rel=0.25)
