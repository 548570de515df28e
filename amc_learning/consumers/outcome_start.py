"""What the outcomes worker does before faust starts: wait until the broker answers, and
rebuild the open state its broker lost (`service.rebuild`) in a process of its own."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import time
from typing import Any

from aiokafka import AIOKafkaProducer

from amc_learning.consumers.loop import LoopStats, start_clients
from amc_learning.consumers.metrics import OUTCOMES_REBUILT
from amc_learning.intelligence.tracking import TrackerConfig
from amc_learning.service.deps import Deps
from amc_learning.service.rebuild import rebuild_open_state
from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.streams.kafka import Kafka, producer_options

log = logging.getLogger(__name__)


def rebuild_apart(settings: Settings, cfg: TrackerConfig) -> None:
    """`service.rebuild` before the worker starts, in a process of its own (spawned): the
    worker then starts as it would without it, holding no database pool, event loop or
    client of the rebuild's (run in the worker's own process, it left faust unable to join
    its group after the fault suite had run on the same broker). Its counts come back over
    a pipe for the metric; a failure leaves the worker to start as it is."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_rebuild, args=(settings, cfg, send), name="outcomes-rebuild",
                            daemon=True)
    child.start()
    send.close()
    try:
        decisions, candidates = receive.recv()
    except (EOFError, OSError):
        decisions = candidates = 0
        log.warning("outcomes: the rebuild of lost open state ended without a word; "
                    "starting with the state the broker holds")
    child.join()
    OUTCOMES_REBUILT.labels("decision").inc(decisions)
    OUTCOMES_REBUILT.labels("candidate").inc(candidates)


def _rebuild(settings: Settings, cfg: TrackerConfig, answer: Any) -> None:
    """The rebuild's own process: what the state lost comes back through the input
    topics; (decisions, candidates) published again go back over `answer`."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    shown = [time.monotonic()]

    def progress(done: int, total: int) -> None:  # a line every 5 s on the worker's log
        if done == total or time.monotonic() - shown[0] >= 5.0:
            shown[0] = time.monotonic()
            log.info("outcomes: rebuilding lost open state: %d/%d symbols checked", done, total)

    deps = Deps(settings, Database(settings.database_url or ""), Kafka(settings))
    try:
        rebuilt = rebuild_open_state(deps, cfg, progress=progress)
    except (Exception, asyncio.CancelledError):  # aiokafka's own cancellations included
        log.warning("outcomes: could not rebuild lost open state from PostgreSQL; starting "
                    "with the state the broker holds", exc_info=True)
        answer.send((0, 0))
        return
    finally:
        deps.close()
    log.info("%s", rebuilt.summary())
    for decision_id, why in list(rebuilt.unreadable.items())[:10]:
        log.warning("outcomes: stored event of %s no longer valid, not rebuilt: %s",
                    decision_id, why)
    answer.send((rebuilt.decisions, rebuilt.candidates))


def broker_answers(settings: Settings, name: str) -> bool:
    """Wait until the broker answers, as persist does: faust gives up at the first
    connection error of its start. False when SIGTERM/SIGINT came first. Faults after
    this point (the broker lost while faust starts or runs) restart the worker in place."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)

    async def probe() -> bool:
        clients = await start_clients(lambda: (AIOKafkaProducer(**producer_options(settings)),),
                                      stop=stop, stats=LoopStats(name=name))
        for client in clients or ():
            await client.stop()
        return clients is not None

    try:
        return loop.run_until_complete(probe())
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)  # leaves the default (die on SIGTERM): restore
            signal.signal(sig, previous[sig])
        loop.close()
