"""SIGTERM to the consumer processes while the broker is blackholed, and right after it
returns: each drains and exits 0 within a bounded time, and nothing is lost."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.faults.conftest import ProxiedBroker, Tally
from tests.faults.pipeline import RESERVE_S, Budget, Feeder, Pipeline, run_calm, stream, tail
from tests.faults.test_broker_faults import tolerant_publisher
from tests.integration.helpers import outcome_rows

pytestmark = pytest.mark.integration

#: A stopped worker waits `stop_grace_s` (here 3 s) for its last commit and again for
#: leaving the group, then exits: well inside this, on one busy core too.
EXIT_WITHIN_S = 45.0
NAMES = ("persist", "outcomes")


def terminate(pipeline: Pipeline, when: str) -> list[tuple[str, str, int | None, float]]:
    """SIGTERM every worker at once; (when, name, exit code, seconds to exit) of each."""
    t0 = time.monotonic()
    for proc in pipeline.procs.values():
        proc.send_signal(signal.SIGTERM)
    exits = []
    for name, proc in pipeline.procs.items():
        try:
            code: int | None = proc.wait(timeout=max(0.1, EXIT_WITHIN_S - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            code = None
            proc.kill()
            proc.wait(10)
        exits.append((when, name, code, round(time.monotonic() - t0, 1)))
        if code != 0:
            log = pipeline.settings.data_dir / "logs" / f"{name}.log"
            raise AssertionError(f"{name} {when}: exit {code} after {exits[-1][3]} s "
                                 f"(bound {EXIT_WITHIN_S} s); its log ends:\n{tail(log)}")
    return exits


def test_sigterm_while_the_broker_is_blackholed_and_right_after_it_returns(
    proxied, proxied_broker: ProxiedBroker, more_settings, tally: Tally, budget: Budget
):
    events = stream(45, 30, 120)
    calm = more_settings()
    run_calm(calm, events, budget)
    proxy = proxied_broker.proxy
    settings = proxied.with_overrides(stop_grace_s=3.0)
    feeder = Feeder(settings, events, chunk=400, pause_s=0.4,
                    publisher=tolerant_publisher(settings))
    pipeline = Pipeline(settings).start()
    feeder.start()
    exits = []
    try:
        # 1. mid-stream, both workers busy, then a blackhole long enough for every client
        #    to be waiting on a request or retrying one
        pipeline.wait_for_progress(NAMES, timeout_s=budget.left(RESERVE_S + 120))
        proxy.blackhole()
        time.sleep(5)
        exits += terminate(pipeline, "blackholed")
        # 2. new workers started into the blackhole (and past their own start-up: on a
        #    loaded machine that alone took 4 s), stopped the moment it ends
        pipeline.start()
        pipeline.wait_until_serving(NAMES, timeout_s=budget.left(RESERVE_S + 120))
        time.sleep(3)
        proxy.heal()
        exits += terminate(pipeline, "just healed")
        # 3. new workers finish the stream: nothing was lost by the stops above
        pipeline.start()
        pipeline.settle(feeder.targets(budget.left(RESERVE_S)), budget)
        exits += terminate(pipeline, "after the stream")
    finally:
        pipeline.stop()
    tally.count(events, settings.database_url)
    tally.note = "; ".join(f"{name} {when}: exit {code} in {s} s"
                           for when, name, code, s in exits)
    assert tally.lost == 0 and tally.duplicated == 0
    got, expected = outcome_rows(settings), outcome_rows(calm)
    assert len(got) == len(expected) > 0
    assert got == expected
