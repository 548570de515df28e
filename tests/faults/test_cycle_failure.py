"""A learning cycle that raises, or whose process dies, half way through."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import psycopg
import pytest

from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.entrypoints.supervise import settings_env
from amc_learning.schemas import topics
from amc_learning.schemas.params import FALLBACK_PARAMS, ParamsPublished
from amc_learning.service import cycle
from amc_learning.streams.params import ParamsReader
from tests import factories
from tests.faults.conftest import Tally
from tests.integration.helpers import read_topic, rows
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration

#: A cycle in a process of its own, its params sends replaced by a death (SIGKILL-like:
#: no cleanup, no handler) before or after the real send.
DIE = """
import os, sys
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.settings import Settings
from amc_learning.service import cycle
async def before(*args, **kwargs):
    os._exit(137)
async def after(*args, **kwargs):
    await cycle.publish_params(*args, **kwargs)
    os._exit(137)
die = {"before": before, "after": after}[sys.argv[1]]
cycle.run_cycle(bootstrap(Settings()), "daily", publish=die)
"""


def on_topic(settings) -> list[dict]:  # type: ignore[no-untyped-def]
    records = asyncio.run(read_topic(settings, topics.PARAMS, expected=10**6, timeout=5))
    return [json.loads(r.value) for r in records]


def history(settings) -> list[tuple]:  # type: ignore[no-untyped-def]
    return rows(settings.database_url, "SELECT version, mode, sent_at IS NOT NULL, message"
                " FROM params_history ORDER BY recorded_at, version")


def die(settings, where: str) -> int:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-c", DIE, where], capture_output=True,
                          env={**os.environ, **settings_env(settings)}, timeout=300,
                          check=False).returncode


def test_no_half_cycle_reaches_the_topic_and_the_next_cycle_succeeds(
    settings, monkeypatch, tally: Tally
):
    keyed = factories.keyed(settings)
    deps = bootstrap(keyed)
    # unpaced: the run's own learner publishes little, and the reset below starts clean
    ran = cli(keyed, "run", "--days", "40", "--symbols", "30", "--bad-rate", "0",
              "--no-learning")
    assert ran.returncode == 0, ran.stderr[-2000:]
    # start from a live version 1, as a promotion would have left it (recorded, not sent)
    with deps.db.unit_of_work() as uow:
        as_of = uow.frames.last_session(keyed.index_symbol)
    with psycopg.connect(keyed.database_url) as conn:
        conn.execute("DELETE FROM params_history")
        conn.execute("DELETE FROM learning_cycles")
        v1 = cycle.message(keyed.params_name, 1, "live", FALLBACK_PARAMS, as_of,
                           {"by": "test"}, keyed.params_ttl_days, datetime.now(UTC))
        conn.execute(
            "INSERT INTO params_history (name, version, mode, as_of, params, provenance,"
            " published, message, scoring_model)"
            " VALUES (%s, 1, 'live', %s, %s, '{}', true, %s, 'native')",
            (keyed.params_name, as_of, json.dumps(FALLBACK_PARAMS.model_dump()),
             v1.model_dump_json()))
    earlier = len(on_topic(keyed))  # what the run's own learner sent, before the reset
    assert cycle.send_unsent(deps) == 1
    reader = ParamsReader.from_settings(factories.reading(keyed)).start()
    try:
        assert reader.wait_for(lambda r: r.get().version == 1, 30), reader.status()
        sent_before = len(on_topic(keyed))

        # 1. the fit raises: nothing recorded, nothing sent
        def broken_fit(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("a bug in the fit")

        monkeypatch.setattr(cycle, "adapt", broken_fit)
        with pytest.raises(RuntimeError, match="a bug in the fit"):
            cycle.run_cycle(deps, "daily")
        monkeypatch.undo()
        assert len(history(keyed)) == 1 and len(on_topic(keyed)) == sent_before
        assert rows(keyed.database_url, "SELECT count(*) FROM learning_cycles") == [(0,)]

        # 2. the process dies after the record, before the send: recorded, unsent
        assert die(keyed, "before") == 137
        recorded = history(keyed)
        assert [(v, m, s) for v, m, s, _ in recorded] == [(1, "live", True),
                                                           (2, "shadow", False)]
        assert len(on_topic(keyed)) == sent_before

        # 3. the next process sends it and dies before stamping it
        assert die(keyed, "after") == 137
        assert [s for *_, s, _ in history(keyed)] == [True, False]
        assert len(on_topic(keyed)) == sent_before + 1

        # 4. the next cycle sends it again (identical), stamps it, and runs
        weekly = cycle.run_cycle(deps, "weekly")
        assert weekly["ran"] is True
        assert reader.wait_for(lambda r: r.status()["held"]["default"].get("shadow") == 2, 30)
        view, status = reader.get(), reader.status()
    finally:
        reader.close()
    final = history(keyed)
    messages = on_topic(keyed)[earlier:]
    recorded_messages = {(v, m): msg for v, m, _, msg in final if msg}
    tally.sent = len(messages)
    tally.stored = len(final)
    tally.duplicated = len(messages) - len({json.dumps(m, sort_keys=True) for m in messages})
    tally.note = "the duplicate is the resend of step 4, which readers ignore as identical"
    assert all(sent for _, _, sent, _ in final)
    # every message on the topic is a recorded one
    for message in messages:
        body = ParamsPublished.model_validate_json(json.dumps(message))
        recorded = recorded_messages[(message["version"], message["mode"])]
        assert body == ParamsPublished.model_validate_json(json.dumps(recorded)), \
            message["version"]
    assert (view.source, view.version, view.mode) == ("published", 1, "live")
    assert status["rejections"] == {}
