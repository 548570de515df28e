"""A learned points table as AMC-Trader's `scanner_weights.json`: held to the vendored
file — the same keys at every level, the same value types, only tier values changed and
within the declared bounds, penalties still negative — and read by plain Python as the
scanner's loader reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

from amc_learning.adapters.scanner_weights import (
    Learned,
    declared_file,
    scanner_weights,
    structure_differs,
)
from amc_learning.schemas.models import TieredModel, shipped
from amc_learning.schemas.params import TieredParams

VENDORED = (Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader" / "data"
            / "scanner_weights.json")
SCANNER = next(m for m in shipped() if (m.name, m.version) == ("amc-scanner", "3.3.1"))
assert isinstance(SCANNER, TieredModel)


def learned_table() -> TieredParams:
    table = TieredParams.declared(SCANNER)
    table.tables["chase_risk"]["high_moved"] = 0  # a penalty learned away (decisively)
    table.tables["chase_risk"]["extreme_moved"] = -45
    table.tables["entry_timing"]["pre_market"] = 18
    table.tables["gap"]["huge"] = -15  # a table the scanner's code does not read yet
    table.tables["gap"]["flat"] = 3  # a tier written in code, not in the file
    return table


NOTES = [{"factor": "chase_risk", "tier": "extreme_moved", "n": 1234, "effect": -0.012,
          "low": -0.018, "high": -0.006, "q": 0.002}]


def leaves(tree: object, path: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items()
                for k, v in leaves(sub, f"{path}.{key}" if path else key).items()}
    return {path: tree}


def test_the_export_is_the_vendored_file_with_only_learned_tiers_changed():
    base = json.loads(VENDORED.read_text())
    out = scanner_weights(learned_table(), SCANNER, [Learned(7, date(2026, 11, 20), NOTES)],
                          base)
    assert structure_differs(base, out) is None  # same keys at every level, same types
    assert structure_differs(base, json.loads(json.dumps(out))) is None
    before, after = leaves(base), leaves(out)
    changed = {k for k in before if before[k] != after[k]
               and k not in ("version", "last_updated", "update_history")}
    assert changed == {"chase_risk.high_moved", "chase_risk.extreme_moved",
                       "entry_timing.pre_market", "gap.huge"}
    span = SCANNER.scale.high - SCANNER.scale.low
    for key in changed:
        assert type(after[key]) is int and abs(after[key]) <= span
        if before[key] < 0:  # a penalty stays a penalty
            assert after[key] < 0, key
    assert after["chase_risk.high_moved"] == -1 and after["chase_risk.extreme_moved"] == -45
    assert out["version"] == "3.3.1+learned.7" and out["last_updated"] == "2026-11-20"
    assert out["update_history"][:-1] == base["update_history"]
    entry = out["update_history"][-1]
    assert entry["version"] == "3.3.1 \u2192 3.3.1+learned.7"
    assert entry["trigger"] == "learning engine, params version 7, live since 2026-11-20"
    assert any(c.startswith("chase_risk.extreme_moved: -35 \u2192 -45 (n 1,234")
               and "q 0.002" in c for c in entry["changes"])
    assert "chase_risk.high_moved: -25 \u2192 -1 (learned 0: kept a penalty)" in entry["changes"]
    assert entry["read_by_scanner"] == SCANNER.read_by_producer
    assert "4 of 18 tables are read" in entry["note"] and "1 of 4 learned" in entry["note"]


def test_nothing_learned_is_the_file_unchanged():
    base = json.loads(VENDORED.read_text())
    assert scanner_weights(TieredParams.declared(SCANNER), SCANNER, [], base) == base


def test_without_a_base_the_file_is_the_declarations():
    declared = declared_file(SCANNER)
    base = json.loads(VENDORED.read_text())
    assert structure_differs(base, {**declared, "last_updated": "x"}) is None
    assert {k: v for k, v in declared.items() if isinstance(v, dict | int)
            and k != "version"} == {k: v for k, v in base.items() if isinstance(v, dict | int)}


def test_a_structure_that_changed_is_named():
    base = json.loads(VENDORED.read_text())
    assert "chase_risk.high_moved: int became str" in structure_differs(
        base, {**base, "chase_risk": {**base["chase_risk"], "high_moved": "-25"}})
    gone = {k: v for k, v in base.items() if k != "breakout"}
    assert "missing breakout" in structure_differs(base, gone)


LOADER = """
import json, sys
weights = json.load(open(sys.argv[1]))  # as load_dynamic_weights() reads it
print(weights["last_updated"])
for factor in ("chase_risk", "dead_cat_pattern", "coil_spring", "entry_timing"):
    for tier, points in (weights or {}).get(factor, {}).items():
        assert isinstance(points, int), (factor, tier, points)
print((weights or {}).get("chase_risk", {}).get("high_moved", -25))
"""


def test_plain_python_reads_it_as_the_scanner_does(tmp_path):
    path = tmp_path / "scanner_weights.json"
    path.write_text(json.dumps(scanner_weights(
        learned_table(), SCANNER, [Learned(7, date(2026, 11, 20), NOTES)],
        json.loads(VENDORED.read_text())), indent=2, ensure_ascii=False))
    run = subprocess.run([sys.executable, "-I", "-c", LOADER, str(path)], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["2026-11-20", "-1"]
