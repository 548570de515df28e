"""The real commands as separate processes: `run`, and `consume persist` under SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amc_learning.entrypoints.supervise import settings_env
from tests import factories
from tests.integration.helpers import publish, rows

pytestmark = pytest.mark.integration


def cli(settings, *args, timeout=300):
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run([sys.executable, "-m", "amc_learning.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_run_accounts_for_every_event_and_a_second_run_adds_to_the_first(settings):
    first = cli(settings, "run", "--days", "3", "--symbols", "15", "--bad-rate", "0.05")
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert set(summary) == {"produced", "stored", "rejected", "outcomes", "params"}
    assert sum(summary["params"]["decisions_by_params"].values()) == summary["stored"][
        "learning_decisions"]
    outcomes = summary["outcomes"]
    assert outcomes["tracked"] > 0 and outcomes["waiting_for_decision"] == 0
    assert outcomes["started_without_row"] == 0 and outcomes["matured_not_marked"] == 0
    produced = sum(summary["produced"].values())
    assert produced > 0 and summary["rejected"] > 0
    assert produced == sum(summary["stored"].values()) + summary["rejected"]

    second = cli(settings, "run", "--days", "2", "--symbols", "15", "--bad-rate", "0")
    assert second.returncode == 0, second.stderr[-2000:]
    later = json.loads(second.stdout.strip().splitlines()[-1])
    assert later["rejected"] == 0 and later["stored"]["price_bars"] == 2 * 17
    [(bars,)] = rows(settings.database_url, "SELECT count(*) FROM price_bars")
    assert bars == summary["stored"]["price_bars"] + later["stored"]["price_bars"]
    [(sessions,)] = rows(settings.database_url, "SELECT count(DISTINCT session) FROM price_bars")
    assert sessions == 5


def test_run_with_two_workers_of_each_consumer_accounts_for_every_event(settings):
    ran = cli(settings, "run", "--days", "12", "--symbols", "30", "--workers", "2")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stderr.count("persist-") == 2 and ran.stderr.count("outcomes-") == 2
    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    produced = sum(summary["produced"].values())
    assert produced == sum(summary["stored"].values()) + summary["rejected"]
    outcomes = summary["outcomes"]
    assert outcomes["tracked"] > 0 and outcomes["waiting_for_decision"] == 0
    assert outcomes["started_without_row"] == 0 and outcomes["matured_not_marked"] == 0
    logs = settings.data_dir / "logs"
    assert all((logs / f"{kind}-{i}.log").exists() for kind in ("persist", "outcomes")
               for i in (1, 2))


def test_consume_drains_and_exits_cleanly_on_sigterm(settings):
    env = {**os.environ, **settings_env(settings)}
    proc = subprocess.Popen([sys.executable, "-m", "amc_learning.cli", "consume", "persist"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        publish(settings, [factories.bar(symbol=s) for s in ("AMC", "GME", "BB", "NOK")])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if rows(settings.database_url, "SELECT count(*) FROM price_bars") == [(4,)]:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out[-2000:]
    assert b"persist stopped: consumed=4" in out


def test_user_mistakes_get_one_line_not_a_traceback(settings):
    result = cli(settings, "run", "--days", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --days must be at least 1")
    assert "Traceback" not in result.stderr


def test_help_explains_the_environment(settings):
    result = cli(settings, "run", "--help")
    assert result.returncode == 0
    assert "LEARNING_KAFKA_BOOTSTRAP" in result.stdout and "--days" in result.stdout


def test_schema_export_writes_files(settings, tmp_path):
    result = cli(settings, "schemas", "export", str(tmp_path / "out"))
    assert result.returncode == 0
    assert (tmp_path / "out" / "thesis_decided.v1.json").exists()


def test_analyze_learns_from_what_run_stored_and_rerunning_it_adds_nothing(settings):
    # unpaced: the learner's own passes would add rows as of earlier sessions
    ran = cli(settings, "run", "--days", "25", "--symbols", "20", "--bad-rate", "0",
              "--no-learning")
    assert ran.returncode == 0, ran.stderr[-2000:]
    wrong = cli(settings, "analyze", "--signature", "astrology")
    assert wrong.returncode == 2 and "no feature named astrology" in wrong.stderr
    assert "Traceback" not in wrong.stderr and "relative_volume" in wrong.stderr

    first = cli(settings, "analyze")
    assert first.returncode == 0, first.stderr[-2000:]
    stored = json.loads(first.stdout.strip().splitlines()[-1])["stored"]
    assert stored["pattern_performance"] > 0 and stored["calibration_snapshots"] > 0
    assert cli(settings, "analyze").returncode == 0
    [(patterns, as_of)] = rows(settings.database_url,
                               "SELECT count(*), max(as_of) FROM pattern_performance")
    assert patterns == stored["pattern_performance"]
    assert str(as_of) == json.loads(first.stdout.strip().splitlines()[-1])["as_of"]

    # the horizon judged is the middle of LEARNING_OUTCOME_HORIZONS, and only those exist
    unknown = cli(settings, "analyze", "--horizon", "3")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "--horizon: the horizon 3 is not one the outcome tracker measures" in unknown.stderr
    assert "1,7,30" in unknown.stderr
    judged = {}
    for horizons, args in (("1,7,30", ()), ("1,5,30", ()), ("1,7,30", ("--horizon", "1"))):
        out = cli(settings.with_overrides(outcome_horizons=horizons), "analyze", *args)
        assert out.returncode == 0, out.stderr[-2000:]
        judged[(horizons, args)] = json.loads(out.stdout.strip().splitlines()[-1])["horizon"]
    assert list(judged.values()) == [7, 5, 1]

    # one scoring model at a time: the simulator's decisions are the engine's own (v1)
    other = cli(settings, "analyze", "--scoring-model", "amc-scanner 3.3.1")
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert ("--scoring-model: no decisions of the scoring model 'amc-scanner 3.3.1' are "
            "stored (there are: native)") in other.stderr
    assert "of the scoring model native" in first.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def headless(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's Chromium, headless, offline, with a profile of its own in `folder`."""
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={folder / 'chromium'}", "--enable-logging=stderr",
         "--v=0", "--window-size=1200,4000", *args],
        capture_output=True, text=True, timeout=120, check=False)


def test_the_report_of_a_run_opens_in_headless_chromium(settings, tmp_path):
    ran = cli(settings, "run", "--days", "40", "--symbols", "20", "--bad-rate", "0.01")
    assert ran.returncode == 0, ran.stderr[-2000:]
    [(as_of, analysis)] = rows(settings.database_url,
                               "SELECT as_of, summary->'analysis' FROM learning_cycles"
                               " WHERE kind = 'daily' ORDER BY as_of DESC LIMIT 1")
    assert isinstance(analysis, dict) and analysis["pattern_performance"] > 0, analysis
    daily = settings.data_dir / "reports"
    assert (daily / f"report-{as_of}.html").read_text() == (daily / "latest.html").read_text()

    out = tmp_path / "report.html"
    made = cli(settings, "report", "--out", str(out))
    assert made.returncode == 0, made.stderr[-2000:]
    page = out.read_text()
    assert f"Learning intelligence report · {as_of}" in page
    assert page.count("<svg") == 6 and ("Out of sample" in page or "In-sample" in page)
    wrong = cli(settings, "report", "--out", str(tmp_path))
    assert wrong.returncode == 2 and "is a directory" in wrong.stderr
    assert "Traceback" not in wrong.stderr

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed: `apt-get install chromium` to render the "
                    "report headless (its HTML was checked above)")
    shot = tmp_path / "report.png"
    browser = headless(tmp_path, f"--screenshot={shot}", out.as_uri())
    assert browser.returncode == 0, browser.stderr[-2000:]
    console = [line for line in browser.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console  # no script error, no failed load
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1200, 4000) and len(png) > 100_000  # a page, not a blank
