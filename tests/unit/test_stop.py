"""A worker told to stop stops: bounded waits on Kafka, and aiokafka's own cancellations."""

from __future__ import annotations

import asyncio

import pytest

from amc_learning.consumers.loop import Grace, until_stopped
from amc_learning.streams.kafka import stop_client


class Connections:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class CancelsItself:
    """Like aiokafka 0.14's consumer after a fetch retried on NodeNotReadyError: `stop()`
    cancels a background task and awaits it unguarded (aio-libs/aiokafka#647)."""

    def __init__(self) -> None:
        self._client = Connections()

    async def stop(self) -> None:
        task = asyncio.ensure_future(asyncio.sleep(3600))
        await asyncio.sleep(0)
        task.cancel()
        await task  # raises CancelledError into the caller


class NeverAnswers:
    def __init__(self) -> None:
        self._client = Connections()

    async def stop(self) -> None:
        await asyncio.sleep(3600)  # leaving the group through a blackhole


class Clean:
    async def stop(self) -> None:
        return None


async def test_stop_client_absorbs_aiokafkas_own_cancellation_and_closes_the_connections():
    client = CancelsItself()
    assert await stop_client(client, timeout_s=5) is False  # type: ignore[arg-type]
    assert client._client.closed


async def test_stop_client_gives_up_on_a_broker_that_does_not_answer():
    client = NeverAnswers()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await stop_client(client, timeout_s=0.1) is False  # type: ignore[arg-type]
    assert loop.time() - t0 < 2 and client._client.closed


async def test_stop_client_says_true_when_the_client_closed_cleanly():
    assert await stop_client(Clean(), timeout_s=1) is True  # type: ignore[arg-type]


async def test_a_cancellation_of_the_caller_itself_still_propagates():
    task = asyncio.ensure_future(stop_client(NeverAnswers(), timeout_s=60))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_until_stopped_waits_for_work_that_finishes():
    stop = asyncio.Event()
    assert await until_stopped(asyncio.sleep(0.01), stop, Grace(1)) is True


async def test_until_stopped_raises_the_works_own_error():
    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await until_stopped(fails(), asyncio.Event(), Grace(1))


async def test_until_stopped_gives_work_the_grace_after_a_stop_then_cuts_it_short():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, stop.set)
    t0 = loop.time()
    assert await until_stopped(asyncio.sleep(3600), stop, Grace(0.2)) is False
    assert 0.2 <= loop.time() - t0 < 2
    # work that finishes within the grace is waited for
    assert await until_stopped(asyncio.sleep(0.05), stop, Grace(1)) is True


async def test_one_grace_is_shared_by_every_wait_of_a_stop():
    stop, grace = asyncio.Event(), Grace(0.3)
    stop.set()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for _ in range(3):  # the dead letters, the commit, ...: 0.3 s for all, not each
        assert await until_stopped(asyncio.sleep(3600), stop, grace) is False
    assert 0.3 <= loop.time() - t0 < 0.6
    assert grace.left() == 0.0
