"""The composition root: `Settings -> Deps`, in this one place for every process.

Kafka and PostgreSQL are what is configured (LEARNING_KAFKA_BOOTSTRAP,
LEARNING_DATABASE_URL), else the embedded pair `amc-learning infra up` runs; with neither,
`NotConfigured` says what to do. An embedded setup also gets the params signing key kept
in the data folder (made once), so `run`, `cycle` and `make bench` behave alike there; a
configured deployment must bring its own key (`amc-learning params-keys new`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pydantic import SecretStr

from amc_learning.entrypoints import infra
from amc_learning.schemas.signing import new_private_key
from amc_learning.service.deps import Deps
from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.streams.kafka import Kafka


class NotConfigured(Exception):
    """No Kafka or PostgreSQL configured, and no embedded ones running."""


def resolve(settings: Settings, *, kafka: bool = True) -> Settings:
    """Settings with Kafka (unless `kafka` is False) and PostgreSQL filled in from what
    `infra up` runs, and, on an embedded setup, the data folder's signing key."""
    state = infra.read_state(settings)
    bootstrap = settings.kafka_bootstrap or (state and state.kafka_bootstrap) or None
    database_url = settings.database_url or (state and state.database_url) or None
    if kafka and (database_url is None or bootstrap is None):
        raise NotConfigured("no Kafka/PostgreSQL configured and no embedded ones running\n"
                            "hint: `amc-learning infra up`, or set LEARNING_KAFKA_BOOTSTRAP "
                            "and LEARNING_DATABASE_URL")
    if database_url is None:
        raise NotConfigured("no PostgreSQL configured and no embedded one running\n"
                            "hint: `amc-learning infra up`, or set LEARNING_DATABASE_URL")
    return _embedded_defaults(settings, settings.with_overrides(
        kafka_bootstrap=bootstrap, database_url=database_url))


def bootstrap(settings: Settings, *, kafka: bool = True) -> Deps:
    """The dependencies of a process (`resolve`, then the one `Database`)."""
    return _deps(resolve(settings, kafka=kafka))


@contextlib.contextmanager
def provisioned(settings: Settings) -> Iterator[Deps]:
    """The dependencies of the main job: Kafka and PostgreSQL as configured, else what
    `infra up` runs, else an embedded pair started now and stopped on exit
    (`infra.provisioned`); the database closed on exit."""
    with infra.provisioned(settings) as ready:
        deps = _deps(_embedded_defaults(settings, ready))
        try:
            yield deps
        finally:
            deps.close()


def _embedded_defaults(configured: Settings, resolved: Settings) -> Settings:
    """An embedded database (none configured) comes with the data folder's signing key."""
    return with_signing_key(resolved) if configured.database_url is None else resolved


def _deps(resolved: Settings) -> Deps:
    if resolved.database_url is None:  # resolve() and infra.provisioned() fill it in
        raise NotConfigured("no PostgreSQL: set LEARNING_DATABASE_URL")
    return Deps(resolved, Database(resolved.database_url), Kafka(resolved))


def with_signing_key(settings: Settings) -> Settings:
    """Settings with a params signing key: LEARNING_PARAMS_SIGNING_KEY, else a key made
    once into the data dir (embedded setups, so `make run` needs no configuration; the
    processes it starts verify with the key's public half)."""
    if settings.params_signing_key is not None:
        return settings
    path = settings.data_dir / "params-signing.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(0o600)
        path.write_text(new_private_key())
    return settings.with_overrides(params_signing_key=SecretStr(path.read_text().strip()))
