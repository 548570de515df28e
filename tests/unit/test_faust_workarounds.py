"""SeekFirstRecovery: the stream partitions are sought to their committed offsets before
they are resumed (faust-streaming #596 resumes first, and the running fetcher races the
seek). Both orders are checked against the same fake worker, so the day a faust release
fixes its own order, the second test says the workaround can go. And the worker's
/healthz, answered from another thread, leaves faust's services on the worker's loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from faust.tables.recovery import Recovery
from faust.types import TP

from amc_learning.consumers.faust_workarounds import CONTINUITY, SeekFirstRecovery
from amc_learning.consumers.outcomes import build_app, health_of
from amc_learning.settings import Settings

STREAM, CHANGELOG = TP("in", 0), TP("app-state-changelog", 0)


async def _noop(*_: Any, **__: Any) -> None:
    return None


def recovery(cls: type[Recovery], calls: list[str]) -> Recovery:
    """A recovery object of `cls` wired to a fake app that records the consumer's calls."""

    class Consumer:
        def __init__(self) -> None:
            self._committed_offset = {STREAM: 5}

        def assignment(self) -> set[TP]:
            return {STREAM, CHANGELOG}

        async def perform_seek(self) -> None:
            calls.append("seek")

        def resume_partitions(self, tps: set[TP]) -> None:
            calls.append(f"resume {sorted(tp.topic for tp in tps)}")

        def resume_flow(self) -> None:
            calls.append("resume_flow")

    app = SimpleNamespace(
        consumer=Consumer(), on_rebalance_complete=SimpleNamespace(send=_noop),
        consumer_generation_id=0, conf=SimpleNamespace(broker_request_timeout=5, id="test"),
        flow_control=SimpleNamespace(resume=lambda: None),
        _fetcher=SimpleNamespace(maybe_start=_noop),
        assignor=SimpleNamespace(assigned_standbys=lambda: []), on_rebalance_end=lambda: None)
    tables = SimpleNamespace(values=lambda: [], on_actives_ready=lambda: None,
                             on_standbys_ready=lambda: None)
    r = object.__new__(cls)
    r.__dict__.update(
        app=app, tables=tables, actives_for_table={}, standbys_for_table={},
        completed=asyncio.Event(), log=SimpleNamespace(info=print, warning=print, dev=print),
        _set_recovery_ended=lambda: None, _is_changelog_tp=lambda tp: tp == CHANGELOG,
        _wait=lambda coro, timeout: coro)
    return r


def test_the_workaround_seeks_the_stream_partitions_before_it_resumes_them():
    calls: list[str] = []
    asyncio.run(recovery(SeekFirstRecovery, calls).on_recovery_completed())
    assert calls == ["seek", "resume ['in']", "resume_flow"]
    assert CONTINUITY["test"].expected == {STREAM: 5}  # the guard knows where to resume


def test_faust_itself_still_resumes_before_it_seeks():
    calls: list[str] = []
    asyncio.run(recovery(Recovery, calls).on_recovery_completed())
    assert calls.index("resume ['in']") < calls.index("seek"), (
        "faust-streaming now seeks first: SeekFirstRecovery may be removed")


def test_a_health_probe_from_another_thread_leaves_the_tables_on_the_workers_loop(
        tmp_path: Path) -> None:
    """Made lazily by the first /healthz probe, faust's recovery service took the probe
    thread's event loop for the table manager, and the worker waited forever for tables
    registered on a loop that never runs (decision 001, 6)."""
    app = build_app(Settings(kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path))
    health = health_of(app, threading.Event())
    answers: list[tuple[str, str]] = []
    probe = threading.Thread(target=lambda: answers.append(health()))
    probe.start()
    probe.join()
    assert answers == [("down", "starting: joining the group and recovering the state table")]
    assert app.tables.loop is app.loop  # type: ignore[attr-defined]
    assert app.tables.recovery.loop is app.loop  # type: ignore[attr-defined]
