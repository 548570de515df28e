"""What can be checked of the production stack without Docker (see README, "Production"):
the compose file, the Prometheus configuration and alert rules, the Grafana dashboard
and the Dockerfile parse, reference only files that exist, run only real commands and
settings, and use only metric names the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import amc_learning.consumers.metrics
import amc_learning.streams.params  # noqa: F401 - registers the reader's counters
from amc_learning.cli import parser as _parser
from amc_learning.consumers import ops  # noqa: F401 - registers the dependency gauges
from amc_learning.settings import Settings
from amc_learning.streams.kafka import KafkaConfig
from amc_learning.streams.metrics import COLLECTOR
from amc_learning.streams.params import ParamsReader
from amc_learning.streams.publisher import LearningPublisher

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
ALERTS = yaml.safe_load((ROOT / "ops/prometheus/alerts.yml").read_text())
DASHBOARD = json.loads((ROOT / "ops/grafana/dashboards/learning.json").read_text())


def exported_metrics() -> set[str]:
    """Every sample name the processes can export, including the scrape-time families."""
    publisher = LearningPublisher(KafkaConfig("127.0.0.1:1"))
    reader = ParamsReader(None, "learning.params.v1", b"k")
    names = {s.name for family in REGISTRY.collect() for s in family.samples}
    names |= {family.name for family in REGISTRY.collect()}
    names |= {f"{f.name}_total" for f in COLLECTOR.collect() if f.type == "counter"}
    del publisher, reader
    for family in REGISTRY.collect():  # labelled metrics without samples yet
        if family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names | {"up"}


def referenced_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b(learning_[a-z_]+|up)\b(?=\s*[{\[()\s=<>]|$)", expr))


def test_the_compose_file_runs_real_commands_with_real_settings():
    services = COMPOSE["services"]
    assert {"kafka", "postgres", "init", "persist", "outcomes", "learner", "prices", "serve",
            "prometheus", "grafana"} <= set(services)
    assert services["persist"]["deploy"]["replicas"] == 2
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    parser = _parser()
    fields = {f"LEARNING_{name.upper()}" for name in Settings.model_fields}
    for name in ("persist", "outcomes", "learner", "prices", "serve"):
        service = services[name]
        args = parser.parse_args(service["command"])  # exits on an unknown command
        assert (args.command, getattr(args, "name", name)) == (
            "serve" if name == "serve" else "consume", name)
        unknown = {k for k in service["environment"] if k.startswith("LEARNING_")} - fields
        assert not unknown, unknown
        assert service["healthcheck"]["test"][-1].count("/healthz") == 1
    init = services["init"]["command"][0]
    for command in re.findall(r"amc-learning ([a-z]+(?: [a-z]+)?)", init):
        parser.parse_args(command.split())
    # the image installs the wheel: the command is on PATH, as the Dockerfile's entrypoint
    assert set(re.findall(r"\S*amc-learning(?= )", init)) == {"amc-learning"}, init
    assert 'ENTRYPOINT ["amc-learning"]' in (ROOT / "Dockerfile").read_text()


def test_every_file_the_stack_mounts_or_builds_exists():
    for service in COMPOSE["services"].values():
        if service.get("build"):
            assert (ROOT / service["build"] / "Dockerfile").exists()
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), source
    for rule_file in PROMETHEUS["rule_files"]:
        mounted = [v for s in COMPOSE["services"].values() for v in s.get("volumes", [])
                   if v.split(":")[1] == rule_file]
        assert mounted, f"{rule_file} is not mounted into Prometheus"


def test_alert_rules_cover_the_issue_and_use_exported_metrics():
    rules = [r for group in ALERTS["groups"] for r in group["rules"]]
    names = {r["alert"] for r in rules}
    assert {"LearningConsumerLagHigh", "LearningDeadLetterRateHigh",
            "LearningParamsInFallback", "LearningCycleOverdue"} <= names
    exported = exported_metrics()
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "warn")
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        missing = referenced_metrics(rule["expr"]) - exported
        assert not missing, f"{rule['alert']} uses {missing}"


def test_the_dashboard_parses_and_every_panel_uses_exported_metrics():
    exported = exported_metrics()
    assert DASHBOARD["uid"] and len(DASHBOARD["panels"]) >= 10
    for panel in DASHBOARD["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = referenced_metrics(target["expr"])
            assert used and not used - exported, (panel["title"], used - exported)


def test_the_dockerfile_installs_the_wheel_with_runtime_dependencies_only():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN pip wheel --no-deps --wheel-dir /dist \.$", dockerfile, flags=re.M)
    assert re.search(r"^RUN pip install --no-cache-dir /dist/\*\.whl", dockerfile, flags=re.M)
    assert "[dev]" not in dockerfile and "make install" not in dockerfile
    for copied in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, flags=re.M):
        assert (ROOT / copied).exists(), copied
