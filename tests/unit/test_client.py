"""The stdlib client: it runs on Python 3.9, imports nothing from outside the standard
library (cryptography only if it is there), shares the seed's fallback, and its breaker
closes again."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import amc_learning_client
import pytest
from amc_learning_client import FALLBACK, Breaker

from amc_learning.schemas.params import FALLBACK_PARAMS

PACKAGE = Path(amc_learning_client.__file__).parent


def test_it_runs_on_python_3_9_by_a_static_check():
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    if vermin is None:
        pytest.skip("vermin is not installed (pip install vermin)")
    result = subprocess.run([vermin, "--target=3.9-", "--violations", "--no-tips",
                             "--eval-annotations", str(PACKAGE)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list(PACKAGE.glob("*.py"))) >= 2  # it saw the real files


def test_it_imports_the_standard_library_only_and_cryptography_only_if_present():
    outside = []
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        optional = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try)
                    and any(getattr(h.type, "id", "") == "ImportError" for h in t.handlers)
                    for n in ast.walk(t)}
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("amc_learning_client",
                                                             "__future__"):
                    continue
                if top == "cryptography" and id(node) in optional:
                    continue
                outside.append(f"{path.name}: {name}")
    assert not outside, outside


def test_its_fallback_is_the_engines():
    assert FALLBACK_PARAMS.model_dump(mode="json") == FALLBACK


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_lets_one_trial_through_and_closes_again():
    clock = Clock()
    breaker = Breaker(threshold=3, cooldown_s=1.0, max_cooldown_s=4.0, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow() and breaker.wait() == 1.0
    clock.now += 1.0
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.failure()  # the trial failed: open again, for twice as long
    assert breaker.state == "open" and breaker.wait() == 2.0
    clock.now += 2.0
    assert breaker.allow()
    breaker.failure()
    clock.now += 4.0  # capped at max_cooldown_s
    assert breaker.wait() == 0.0 and breaker.allow()
    breaker.success()  # a trial that works closes it, and the cool-down starts over
    assert breaker.state == "closed" and breaker.allow() and breaker.cooldown == 1.0


def test_its_structure_check_is_the_engines():
    from amc_learning_client.client import structure_differs as client_check

    from amc_learning.adapters.scanner_weights import structure_differs

    old = {"a": {"x": 1, "y": -2}, "b": 3, "version": "1", "update_history": [{"d": 1}]}
    cases = [old, {**old, "b": 3.0}, {**old, "a": {"x": 1}}, {**old, "a": {"x": "1", "y": -2}},
             {**old, "c": 1}, {**old, "update_history": []}, {**old, "b": True},
             {**old, "a": [1, 2]}]
    for new in cases:
        assert bool(client_check(old, new)) == bool(structure_differs(old, new)), new
    assert sum(bool(structure_differs(old, new)) for new in cases) == 6


def test_the_cron_line_leaves_the_file_and_says_why_when_the_engine_is_down(tmp_path):
    path = tmp_path / "scanner_weights.json"
    path.write_text('{"chase_risk": {"high_moved": -25}, "version": "3.3.1"}')
    before = path.read_bytes()
    run = subprocess.run(
        [sys.executable, "-m", "amc_learning_client", "write-scanner-weights", str(path),
         "--url", "http://127.0.0.1:9", "--timeout", "2"],
        capture_output=True, text=True, check=False,
        env={"AMC_LEARNING_TOKEN": "t", "PATH": "", "PYTHONPATH": str(PACKAGE.parent)})
    assert run.returncode == 1, run.stderr
    assert "the engine did not answer" in run.stdout and "left as it was" in run.stdout
    assert path.read_bytes() == before
    no_token = subprocess.run(
        [sys.executable, "-m", "amc_learning_client", "write-scanner-weights", str(path),
         "--url", "http://127.0.0.1:9"], capture_output=True, text=True, check=False,
        env={"PATH": "", "PYTHONPATH": str(PACKAGE.parent)})
    assert no_token.returncode == 2 and "AMC_LEARNING_TOKEN" in no_token.stderr
