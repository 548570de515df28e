"""A small TCP fault proxy: put it between Kafka clients and the broker, then misbehave.

It runs its own event loop in a daemon thread, so sync and async tests drive it alike.
Faults, switchable at any time:

* `latency(s)`   — every chunk in both directions waits `s` seconds before it is forwarded;
* `blackhole()`  — connections stay open but nothing is forwarded either way (a partition
                   that swallows packets: clients only find out by timing out);
* `refuse()`     — new connections are closed at once and live ones are dropped;
* `drop()`       — close every live connection now (clients reconnect);
* `heal()`       — back to a transparent pipe; connections that lost bytes are dropped,
                   as a real partition would end them.

For clients to stay behind the proxy the broker must *advertise* the proxy's address
(`infra.start_broker(..., advertised_port=proxy.port)`), or the metadata response would
send them straight to the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

from amc_learning.entrypoints.infra import free_port


@dataclass(eq=False)  # hashed by identity: the proxy keeps a set of live links
class _Link:
    writers: list[asyncio.StreamWriter]
    tainted: bool = False  # bytes were swallowed: the stream is broken beyond repair

    def close(self) -> None:
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()


@dataclass
class ProxyStats:
    connections: int = 0
    refused: int = 0
    dropped: int = 0
    bytes_forwarded: int = 0
    bytes_swallowed: int = 0
    modes: list[str] = field(default_factory=list)


class FaultProxy:
    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.stats = ProxyStats()
        self._mode = "pass"
        self._latency_s = 0.0
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- control (any thread) -------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def close(self) -> None:
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def latency(self, seconds: float) -> None:
        self._set("latency", seconds)

    def blackhole(self) -> None:
        self._set("blackhole", self._latency_s)

    def refuse(self) -> None:
        self._set("refuse", 0.0)
        self.drop()

    def heal(self) -> None:
        self._set("pass", 0.0)
        self._call(lambda: self._drop_links(only_tainted=True))

    def drop(self) -> int:
        return self._call(lambda: self._drop_links(only_tainted=False))

    # -- the loop thread ------------------------------------------------------------------

    def _set(self, mode: str, latency_s: float) -> None:
        self._mode, self._latency_s = mode, latency_s
        self.stats.modes.append(mode)

    def _call(self, fn):  # type: ignore[no-untyped-def]
        if not self._thread.is_alive():
            return fn()
        done: asyncio.Future = asyncio.run_coroutine_threadsafe(_wrap(fn), self._loop)
        return done.result(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        self._drop_links(only_tainted=False)

    def _drop_links(self, only_tainted: bool) -> int:
        doomed = [link for link in self._links if link.tainted or not only_tainted]
        for link in doomed:
            link.close()
            self._links.discard(link)
        self.stats.dropped += len(doomed)
        return len(doomed)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode == "refuse":
            self.stats.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.stats.connections += 1
        link = _Link([writer, up_writer])
        self._links.add(link)
        await asyncio.gather(self._pump(reader, up_writer, link),
                             self._pump(up_reader, writer, link), return_exceptions=True)
        link.close()
        self._links.discard(link)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    link: _Link) -> None:
        try:
            while chunk := await src.read(65536):
                if self._mode in ("blackhole", "refuse"):
                    self.stats.bytes_swallowed += len(chunk)
                    link.tainted = True
                    continue
                if self._latency_s:
                    await asyncio.sleep(self._latency_s)
                dst.write(chunk)
                await dst.drain()
                self.stats.bytes_forwarded += len(chunk)
        finally:
            link.close()


async def _wrap(fn):  # type: ignore[no-untyped-def]
    return fn()
