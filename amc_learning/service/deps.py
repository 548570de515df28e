"""What a use case is given: the settings, the process's one database, its way to Kafka,
and the clock.

Built once per process by the composition root (`entrypoints.bootstrap`), from settings
whose Kafka and PostgreSQL are resolved (configured, or the embedded ones); a unit test
builds one around a fake database (`tests/fakes.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.streams.kafka import Kafka


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    db: Database
    kafka: Kafka
    clock: Callable[[], datetime] = field(default=utc_now)

    def with_settings(self, settings: Settings) -> Deps:
        """The same database and clock, with other settings (and Kafka of theirs)."""
        return Deps(settings, self.db, Kafka(settings), self.clock)

    def close(self) -> None:
        self.db.close()
