"""The composition root: every command gets the same embedded defaults (the pair `infra up`
runs, the data folder's signing key), a configured deployment brings its own key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from amc_learning.entrypoints.bootstrap import NotConfigured, bootstrap, resolve
from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.streams.kafka import Kafka


def running_infra(data_dir: Path) -> None:
    """What `infra up` leaves behind, for a pair that is alive (this process stands in)."""
    pgdata = data_dir / "pg"
    pgdata.mkdir(parents=True)
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n")
    (data_dir / "infra.json").write_text(json.dumps({
        "broker_pid": os.getpid(), "kafka_bootstrap": "127.0.0.1:19092",
        "pgdata": str(pgdata), "database_url": "postgresql://postgres@127.0.0.1:15432/x"}))


def test_an_embedded_setup_gives_every_command_the_same_key_made_once(tmp_path):
    running_infra(tmp_path)
    first = resolve(Settings(data_dir=tmp_path))
    assert first.kafka_bootstrap == "127.0.0.1:19092"
    assert first.database_url == "postgresql://postgres@127.0.0.1:15432/x"
    assert first.params_signing_key is not None
    again = bootstrap(Settings(data_dir=tmp_path))  # another command, later
    assert again.settings.params_signing_key == first.params_signing_key
    assert (tmp_path / "params-signing.key").stat().st_mode & 0o777 == 0o600
    assert isinstance(again.db, Database) and isinstance(again.kafka, Kafka)
    assert again.db.opened == 0  # built, not connected: nothing connects before it is used


def test_a_configured_deployment_brings_its_own_key(tmp_path):
    running_infra(tmp_path)
    configured = resolve(Settings(data_dir=tmp_path, kafka_bootstrap="kafka:9092",
                                  database_url="postgresql://learning@db/learning"))
    assert configured.params_signing_key is None
    assert configured.database_url == "postgresql://learning@db/learning"
    assert not (tmp_path / "params-signing.key").exists()


def test_nothing_configured_and_nothing_running_says_what_to_do(tmp_path):
    with pytest.raises(NotConfigured, match="infra up"):
        bootstrap(Settings(data_dir=tmp_path))
    with pytest.raises(NotConfigured, match="no PostgreSQL configured"):
        bootstrap(Settings(data_dir=tmp_path, kafka_bootstrap="kafka:9092"), kafka=False)
