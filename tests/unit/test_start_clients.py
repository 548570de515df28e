"""start_clients: a worker started before its broker waits for it, with fresh clients."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaConnectionError

from amc_learning.consumers.loop import Backoff, LoopStats, start_clients

FAST = Backoff(first_s=0.001, max_s=0.001)


class FakeClient:
    """Fails to start while the shared `down` counter is positive."""

    def __init__(self, down: list[int]) -> None:
        self.down, self.started, self.stopped = down, False, False

    async def start(self) -> None:
        if self.down[0] > 0:
            self.down[0] -= 1
            raise KafkaConnectionError("Unable to bootstrap")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


async def test_fresh_clients_are_made_until_the_broker_answers():
    down, made = [2], []

    def make() -> tuple[FakeClient, FakeClient]:
        made.append((FakeClient(down), FakeClient(down)))
        return made[-1]

    stats = LoopStats(name="persist")
    clients = await start_clients(make, stop=asyncio.Event(), stats=stats,
                                  backoff=FAST)
    assert clients is made[-1] and len(made) == 3
    assert all(c.started and not c.stopped for c in clients)
    assert all(c.stopped for pair in made[:-1] for c in pair)  # the failed ones were closed
    assert "cannot reach Kafka" in stats.last_error


async def test_a_stop_while_waiting_returns_none():
    stop = asyncio.Event()
    stop.set()
    result = await start_clients(lambda: (FakeClient([10**6]),), stop=stop,
                                 stats=LoopStats(), backoff=Backoff(first_s=60, max_s=60))
    assert result is None


class HangingClient:
    """A client whose start waits on a broker that never answers (a blackhole)."""

    def __init__(self) -> None:
        self.stopped = False

    async def start(self) -> None:
        await asyncio.sleep(3600)

    async def stop(self) -> None:
        self.stopped = True


async def test_a_stop_while_a_client_is_starting_ends_the_start_at_once():
    stop = asyncio.Event()
    made: list[HangingClient] = []

    def make() -> tuple[HangingClient]:
        made.append(HangingClient())
        return (made[-1],)

    asyncio.get_running_loop().call_later(0.05, stop.set)
    result = await asyncio.wait_for(start_clients(make, stop=stop, stats=LoopStats()), 5)
    assert result is None and made[0].stopped
