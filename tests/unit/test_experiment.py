"""Decision 014's premise, held: the tiered experiment's universe is the smallest (in
steps of 150) on which the planted truth table itself beats the shipped one by a mean
z of 3 over the judged year, read as the judge reads P&L (one book: decision 016), on the
calibration seeds 0-9."""

from __future__ import annotations

import numpy as np

from amc_learning.entrypoints.experiment import perfect_fit_share, planted_power, planted_z
from amc_learning.simulator.tiered import TieredConfig


def test_the_experiments_universe_is_the_smallest_that_can_show_the_planted_truth():
    assert TieredConfig().symbols == 300
    means = {n: float(np.mean(planted_power(n))) for n in (150, 300)}
    assert means[300] >= 3.0, means
    assert means[150] < 3.0, means


def test_planted_z_reads_every_horizonth_session():
    gain = np.tile([1.0, 0, 0, 0, 0, 0, 0], 40)  # only every 7th session differs
    noise = np.random.default_rng(0).normal(0, 0.1, len(gain))
    assert planted_z(gain + noise, noise) > 10  # those sessions are the ones it reads
    assert planted_z(np.roll(gain, 1) + noise, noise) == 0.0  # the others are not read


def test_a_perfect_fit_is_judged_as_any_fit_is():
    """The perfect learner goes through the live judge: on seed 0 (300 symbols) its
    table passes shadow and canary within the first year, so it trades the whole judged
    year (71 % of it while the judge read risk as the selection's alone, decision 018);
    on seed 7, whose truth earns least over the first year (z 1.6 on the book's
    reading), the judge does not pass it within the year."""
    assert perfect_fit_share(300, range(1)) == [1.0]
    assert perfect_fit_share(300, range(7, 8)) == [0.0]
