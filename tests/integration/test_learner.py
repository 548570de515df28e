"""The learner's cycle on the real PostgreSQL and broker: history, idempotence, the wire."""

from __future__ import annotations

import json

import pytest

from amc_learning.consumers.learner import due
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.service.cycle import run_cycle
from tests import factories
from tests.integration.test_cli import cli, rows

pytestmark = pytest.mark.integration


def test_a_cycle_issues_a_shadow_version_a_reader_elsewhere_holds_and_a_rerun_adds_nothing(
    settings,
):
    keyed = factories.keyed(settings)
    ran = cli(keyed, "run", "--days", "40", "--symbols", "30", "--bad-rate", "0")
    assert ran.returncode == 0, ran.stderr[-2000:]
    unkeyed = cli(settings, "cycle", "daily")
    assert unkeyed.returncode == 2 and "LEARNING_PARAMS_SIGNING_KEY" in unkeyed.stderr
    assert "Traceback" not in unkeyed.stderr

    history = rows(keyed.database_url,
                   "SELECT version, mode, published, provenance FROM params_history"
                   " ORDER BY recorded_at")
    assert history, "the run's learner issued no version"
    first, mode, published, provenance = history[0]
    assert (first, mode, published) == (1, "shadow", True)
    assert provenance["decisions"] > 0 and provenance["parent"] == "fallback"
    assert set(provenance["window"]) and provenance["fit"]

    # a reader in another process holds the shadow version but trades the fallback
    seen = cli(factories.reading(keyed), "params", "--timeout", "30")
    assert seen.returncode == 0, seen.stderr[-2000:]
    view = json.loads(seen.stdout.strip().splitlines()[-1])
    assert view["reader"]["held"]["default"].get("shadow") == max(v for v, *_ in history)
    assert view["source"] == "fallback" and view["reader"]["rejections"] == {}

    # the same as-of again: nothing new, on the topic or in the history
    again = cli(keyed, "cycle", "daily")
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["ran"] is False
    assert len(rows(keyed.database_url, "SELECT 1 FROM params_history")) == len(history)
    # another key: the reader rejects what the learner signed
    other = factories.reading(settings, factories.OTHER_KEY)
    foreign = json.loads(cli(other, "params", "--timeout", "30").stdout.splitlines()[-1])
    assert foreign["reader"]["rejections"].get("unknown_key", 0) >= 1

    # a whole daily cycle (reads, writes, sends, the report) on one process's database:
    # at most two connections; the idle learner's polls open none
    deps = bootstrap(keyed)
    sessions = [d for (d,) in rows(keyed.database_url, "SELECT DISTINCT session FROM"
                                   " price_bars WHERE symbol = '^IXIC' ORDER BY 1")]
    cycled = {d for (d,) in rows(keyed.database_url, "SELECT as_of FROM learning_cycles")}
    as_of = max(d for d in sessions[:-1] if d not in cycled)
    summary = run_cycle(deps, "daily", as_of)
    assert summary["ran"] and (keyed.data_dir / "reports" / f"report-{as_of}.html").exists()
    assert 1 <= deps.db.opened <= 2, deps.db.opened
    opened = deps.db.opened
    for _ in range(5):
        assert due(deps, last=sessions[-1]) is None  # its cycle ran: nothing due
    assert deps.db.opened == opened
    deps.close()
