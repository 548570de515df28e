"""The contract depends on nothing of ours; settings list every variable for --help."""

from __future__ import annotations

import ast
from pathlib import Path

from amc_learning.settings import Settings, describe_environment

ROOT = Path(__file__).resolve().parents[2]
OURS = {"amc_learning", "schemas", "streams", "consumers", "simulator", "intelligence"}


def imports_of(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    return found & OURS


def test_schemas_import_nothing_of_ours_but_schemas():
    assert imports_of("schemas") <= {"schemas"}


def test_streams_do_not_reach_into_consumers_or_the_simulator():
    assert imports_of("streams") <= {"streams", "schemas", "amc_learning"}


def test_help_lists_every_setting():
    text = describe_environment()
    for name in Settings.model_fields:
        assert f"LEARNING_{name.upper()}" in text


def test_settings_come_from_learning_variables(monkeypatch):
    monkeypatch.setenv("LEARNING_BATCH_MAX_RECORDS", "123")
    monkeypatch.setenv("LEARNING_KAFKA_SASL_PASSWORD", "s3cret")
    s = Settings()
    assert s.batch_max_records == 123
    assert "s3cret" not in repr(s)
