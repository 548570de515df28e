"""The test session says once, clearly, that its PostgreSQL went away."""

from __future__ import annotations

from pathlib import Path

import pytest

from amc_learning.entrypoints.infra import free_port
from tests.conftest import Backend


def test_a_gone_postgresql_ends_the_session_with_its_pid_and_log(tmp_path: Path):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    (pgdata / "postmaster.pid").write_text("999999999\n/tmp/pg\n")
    (pgdata / "log").write_text("LOG:  database system is ready\nFATAL:  terminating connection "
                                "due to administrator command\n")
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # nobody listens there
    backend = Backend("127.0.0.1:1", url, pgdata)
    with pytest.raises(pytest.exit.Exception) as ended:
        backend.connect()
    said = str(ended.value)
    assert "the test session's PostgreSQL went away" in said
    assert "postmaster 999999999: not running" in said
    assert "terminating connection due to administrator command" in said
    assert ended.value.returncode == 3
