"""What a use case is given: the settings, the process's one database, and the clock.

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


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    db: Database
    clock: Callable[[], datetime] = field(default=utc_now)

    def close(self) -> None:
        self.db.close()
