"""The learner's cycle on the real PostgreSQL and broker: history, idempotence, the wire."""

from __future__ import annotations

import json

import pytest

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
