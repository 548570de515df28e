"""`amc-learning models`: register a declaration from a file, list and show what the
registry knows; a changed declaration under a registered version, or a wrong field, is a
one-line error without a traceback and changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import rows
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration

SCANNER = {
    "kind": "tiered", "name": "my-scanner", "version": "1.0",
    "scale": {"low": -20, "high": 100}, "entry_threshold": 40,
    "factors": [
        {"name": "float", "measurement": "float_shares", "read_from_file": True, "tiers": [
            {"name": "tiny", "points": 50, "bounds": {"at_most": 10_000_000}},
            {"name": "large", "points": 0, "bounds": {}}]},
        {"name": "chase", "measurement": "chase_signals", "tiers": [
            {"name": "chased", "points": -20, "bounds": {"at_least": 2}},
            {"name": "calm", "points": 0, "bounds": {}}]}],
}


def test_a_declaration_is_registered_once_listed_shown_and_never_changed(settings, tmp_path):
    path = tmp_path / "my-scanner-1.0.json"
    path.write_text(json.dumps(SCANNER))
    first = cli(settings, "models", "register", str(path))
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout.splitlines()[-1])["new"] is True
    assert "reads 1 of 2 tables from its file" in first.stderr
    again = cli(settings, "models", "register", str(path))
    assert again.returncode == 0 and json.loads(again.stdout.splitlines()[-1])["new"] is False

    listed = json.loads(cli(settings, "models", "list").stdout.splitlines()[-1])
    assert {(m["name"], m["version"], m["source"]) for m in listed} == {
        ("alphastack", "4.1", "shipped"), ("amc-scanner", "3.3.1", "shipped"),
        ("my-scanner", "1.0", "registered")}
    shown = cli(settings, "models", "show", "my-scanner", "1.0")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert json.loads(shown.stdout)["factors"][1]["tiers"][0]["points"] == -20

    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({**SCANNER, "entry_threshold": 45}))
    refused = cli(settings, "models", "register", str(changed))
    assert refused.returncode == 2 and "a changed model is a new version" in refused.stderr
    shipped = tmp_path / "shipped.json"
    shipped.write_text(json.dumps({**SCANNER, "name": "amc-scanner", "version": "3.3.1"}))
    assert "ships with the engine" in cli(settings, "models", "register", str(shipped)).stderr
    stored = rows(settings.database_url, "SELECT declaration FROM scoring_models")
    assert [d["entry_threshold"] for (d,) in stored] == [40]

    wrong = tmp_path / "wrong.json"
    broken = json.loads(json.dumps(SCANNER))
    broken["factors"][0]["tiers"][0]["points"] = "fifty"
    wrong.write_text(json.dumps(broken))
    said = cli(settings, "models", "register", str(wrong))
    assert said.returncode == 2 and "factors.0.tiers.0.points" in said.stderr
    unknown = cli(settings, "models", "show", "nobody", "9")
    assert unknown.returncode == 2 and "amc-scanner 3.3.1" in unknown.stderr  # the hint
    for answer in (refused, said, unknown):
        assert "Traceback" not in answer.stderr
