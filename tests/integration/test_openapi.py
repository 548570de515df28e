"""The OpenAPI page says everything the API answers: an independent property-based fuzzer
(schemathesis) reads the page of a real `serve` on the embedded broker and PostgreSQL and
holds every answer to it, every check on, for a bounded time. A status the page does not
list, a body that is not the one documented, a server error, a valid request refused or
an invalid one accepted is a failure; the report gives the curl that reproduces it.
What JSON Schema cannot express is said in tests/integration/schemathesis.toml."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from amc_learning.api import tokens
from tests.integration.test_api import _free_port, _serve

pytestmark = pytest.mark.integration
BOTH, BOTH_ENTRY = tokens.make("fuzzer", ("collect", "read"))

#: seconds of fuzzing: every operation gets its examples, the coverage phase and a share
#: of random cases in this time on this machine
FUZZ_S = 60
CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.timeout(FUZZ_S + 240)
def test_every_answer_of_the_api_is_one_its_openapi_page_lists(settings, tmp_path):
    if not SCHEMATHESIS.exists():
        pytest.skip(f"schemathesis is not installed beside {sys.executable} (make install)")
    port = _free_port()
    # one token with both scopes: the fuzzer sends one Authorization header to every route
    proc = _serve(settings, port, LEARNING_API_TOKENS=BOTH_ENTRY)
    base = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as answer:
            page = json.loads(answer.read())
        # the page this test holds the server to: every route, the kinds as routes
        assert set(page["paths"]) == {
            "/learning/collect/discovery-data", "/learning/collect/thesis-decision",
            "/learning/collect/trade-outcome", "/learning/intelligence/adaptive-params",
            "/learning/intelligence/pattern-insights", "/learning/intelligence/regime",
            "/learning/intelligence/calibration", "/healthz"}
        for path, operations in page["paths"].items():
            for method, operation in operations.items():
                content = operation["responses"]["200"]["content"]["application/json"]
                assert "example" in content or "requestBody" in operation, (method, path)
        ran = subprocess.run(
            [str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{base}/openapi.json",
             "--checks", "all", "--max-time", str(FUZZ_S), "--seed", "35",
             "-H", f"Authorization: Bearer {BOTH}", "--no-color", "--output-truncate", "true",
             "--report", "junit", "--report-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=FUZZ_S + 180, check=False)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    report = ran.stdout[-15000:]
    assert ran.returncode == 0, f"the fuzzer found answers the page does not say:\n{report}"
    [summary] = [line for line in report.splitlines() if " generated," in line]
    assert int(summary.split()[0]) >= 500, summary  # it really tried

