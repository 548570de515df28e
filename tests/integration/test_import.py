"""An AMC-Trader history imported through the normal topics: persist stores rows that carry
the scoring model, the raw score and the normalised one; a second import stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amc_learning.consumers.persist import run_persist
from tests.integration.helpers import rows
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader"


async def test_an_amc_trader_history_is_stored_once_with_its_scoring_model(settings):
    first = cli(settings, "import", "amc-trader", str(FIXTURES))
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["published"] == summary["events"] == {
        "learning.discovery.v1": 729, "learning.thesis.v1": 7}
    stats = await run_persist(settings, max_records=736, idle_exit_s=20)
    assert stats.consumed == 736 and stats.dead_lettered == 0
    [(n, model, version, low, high)] = rows(
        settings.database_url,
        "SELECT count(*), min(scoring_model), min(scoring_version), min(raw_low),"
        " max(raw_high) FROM discovery_candidates")
    assert (n, model, version, low, high) == (729, "amc-scanner", "3.3.1", -75.0, 305.0)
    [(raw, composite)] = rows(settings.database_url,
                              "SELECT raw_score, composite_score FROM discovery_candidates"
                              " WHERE symbol = 'RIG' AND raw_score = 125")
    assert raw == 125.0 and composite == pytest.approx((125 + 75) / 380)
    decided = rows(settings.database_url,
                   "SELECT label, count(*) FROM learning_decisions GROUP BY label")
    assert dict(decided) == {"entered": 7, None: 721}  # the picks not entered: never decided

    again = cli(settings, "import", "amc-trader", str(FIXTURES / "data"))
    assert again.returncode == 0, again.stderr[-2000:]
    await run_persist(settings, max_records=736, idle_exit_s=20)
    assert rows(settings.database_url, "SELECT count(*) FROM discovery_candidates") == [(729,)]
    assert rows(settings.database_url, "SELECT count(*) FROM learning_decisions") == [(728,)]


def test_a_wrong_path_or_zone_is_a_clear_error(settings, tmp_path):
    missing = cli(settings, "import", "amc-trader", str(tmp_path / "nowhere"), "--dry-run")
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    zone = cli(settings, "import", "amc-trader", str(FIXTURES), "--dry-run", "--tz", "Mars/Base")
    assert zone.returncode == 2 and "--tz: unknown time zone 'Mars/Base'" in zone.stderr
    assert "Traceback" not in missing.stderr + zone.stderr
