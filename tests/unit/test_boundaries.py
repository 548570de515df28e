"""The layers import only downward, SQL stays in the store, the functional core does no
IO; settings list every variable for --help."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from amc_learning.settings import Settings, describe_environment

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "amc_learning"

#: What each layer may import of ours, bottom to top. A module imports only from its own
#: layer and those listed; the shell (`entrypoints`, and `cli` above it) may import all.
ALLOWED: dict[str, set[str]] = {
    "settings": set(),
    "schemas": set(),
    "intelligence": {"schemas"},
    "streams": {"schemas", "settings"},
    "store": {"schemas", "intelligence", "settings"},
    "simulator": {"schemas", "streams", "settings"},
    "pages": {"schemas", "intelligence"},
    "adapters": {"schemas"},
    "market": {"schemas", "intelligence", "settings"},
    "service": {"schemas", "intelligence", "store", "streams", "pages", "adapters",
                "market", "settings"},
    "consumers": {"schemas", "intelligence", "store", "streams", "service", "market",
                  "settings"},
    "api": {"schemas", "streams", "consumers", "adapters", "store", "service", "settings"},
}
ALLOWED["entrypoints"] = set(ALLOWED)
ALLOWED["cli"] = set(ALLOWED)
#: Libraries that do IO: none of them in the functional core.
IO = {"psycopg", "sqlalchemy", "aiokafka", "faust", "mode", "socket", "urllib", "http",
      "subprocess", "requests", "prometheus_client"}


def imports(path: Path) -> set[str]:
    """Every module `path` imports (absolute names, functions' own imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def layer(module: str) -> str | None:
    """The layer of an `amc_learning...` module name (None: not one of ours)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def modules() -> dict[Path, str]:
    return {p: ".".join(p.relative_to(ROOT).with_suffix("").parts)
            for p in PACKAGE.rglob("*.py")}


def test_the_layout_is_what_the_boundaries_below_describe():
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} \
        == set(ALLOWED) - {"settings"}
    assert {p.name for p in PACKAGE.glob("*.py")} == {"__init__.py", "settings.py"}
    assert len(modules()) > 50  # the tests below see the real code, not an empty glob


def test_every_module_is_in_a_layer():
    outside = [name for name in modules().values()
               if layer(name) is None
               and name not in ("amc_learning.__init__", "amc_learning.settings")]
    assert not outside, outside


def test_no_module_imports_from_a_layer_above_it():
    wrong = []
    for path, name in modules().items():
        mine = layer(name)
        if mine is None:
            continue
        for target in imports(path):
            theirs = layer(target) if target.startswith("amc_learning.") else None
            if target == "amc_learning.settings":
                theirs = "settings"
            if theirs not in (None, mine) and theirs not in ALLOWED[mine]:
                wrong.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(sorted(wrong))


def test_nothing_imports_our_packages_by_bare_top_level_names():
    bare = {"schemas", "streams", "consumers", "simulator", "intelligence", "store", "service",
            "pages", "adapters"}
    wrong = [f"{name}: {t}" for path, name in modules().items() for t in imports(path)
             if t.split(".")[0] in bare]
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]:
        wrong += [f"{path.relative_to(ROOT)}: {t}" for t in imports(path)
                  if t.split(".")[0] in bare]
    assert not wrong, wrong


def test_tests_and_benchmarks_use_only_public_names():
    wrong = []
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("amc_learning"):
                wrong += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_")]
    assert not wrong, wrong


def test_only_the_database_module_connects():
    wrong = [name for path, name in modules().items()
             if "psycopg.connect(" in path.read_text() and name != "amc_learning.store.database"]
    assert not wrong, wrong


def test_psycopg_is_spoken_only_in_the_store():
    wrong = [name for path, name in modules().items()
             if any(t.split(".")[0] == "psycopg" for t in imports(path))
             and layer(name) != "store"]
    assert not wrong, wrong


def test_the_functional_core_does_no_io():
    wrong = [f"{name}: {t}" for path, name in modules().items()
             if layer(name) in ("intelligence", "schemas", "adapters")
             for t in imports(path) if t.split(".")[0] in IO]
    assert not wrong, wrong


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


def test_the_learning_horizon_is_the_middle_of_the_tracked_horizons(monkeypatch):
    assert Settings().learning_horizon == 7
    monkeypatch.setenv("LEARNING_OUTCOME_HORIZONS", "1,5,20")
    assert Settings().horizons == (1, 5, 20) and Settings().learning_horizon == 5
    monkeypatch.setenv("LEARNING_OUTCOME_HORIZONS", "7,1,30")
    with pytest.raises(ValueError, match="three increasing numbers of sessions"):
        Settings()
