"""The circuit breaker opens on consecutive failures and always closes again."""

from __future__ import annotations

import pytest

from amc_learning.streams.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_consecutive_failures_only():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=clock)
    b.record_failure()
    b.record_failure()
    b.record_success()  # resets the count
    b.record_failure()
    b.record_failure()
    assert b.state == "closed" and b.allow()
    b.record_failure()
    assert b.state == "open" and not b.allow()


def test_half_open_after_cooldown_then_closes_on_success():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=clock)
    b.record_failure()
    clock.now = 9.9
    assert b.state == "open"
    clock.now = 10.0
    assert b.state == "half_open" and b.allow()
    b.record_success()
    assert b.state == "closed"
    assert b.times_opened == 1


def test_a_failed_trial_reopens_for_another_cooldown():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=2, cooldown_s=5, clock=clock)
    b.record_failure()
    b.record_failure()
    clock.now = 5.0
    b.record_failure()  # the half-open trial failed
    assert b.state == "open"
    clock.now = 9.9
    assert b.state == "open"
    clock.now = 10.0
    assert b.state == "half_open"
    assert b.times_opened == 2


def test_rejects_nonsense_configuration():
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
