"""A local market-data server of ours that answers as Alpaca Market Data v2
(`GET /v2/stocks/bars`) and Polygon (`GET /v2/aggs/ticker/{t}/range/1/day/{from}/{to}`)
document their answers: pages (`next_page_token`, `next_url`), 401/403, 429 with
`Retry-After`, a 500, split-adjusted and traded bars, and sessions with no bar.

The tests plant the truth: bars as traded per symbol and session, the splits, and the
faults; the server counts what it was asked.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
KEY_ID, SECRET, POLYGON_KEY = "stub-key-id", "stub-secret", "stub-polygon-key"


@dataclass
class Market:
    """The planted truth and the faults."""

    #: symbol -> session -> (open, high, low, close, volume), as traded
    bars: dict[str, dict[date, tuple[float, float, float, float, float]]] = field(
        default_factory=dict)
    #: symbol -> session -> new shares per old, effective at that session's open
    splits: dict[str, dict[date, float]] = field(default_factory=dict)
    page_size: int = 4
    #: answer 429 (Retry-After: `retry_after`) to every other request
    throttle: bool = False
    retry_after: str = "1"
    #: symbols whose first request is a 500
    fail_once: set[str] = field(default_factory=set)
    #: symbols the provider does not know (a 4xx, final)
    unknown: set[str] = field(default_factory=set)
    asked: Counter[str] = field(default_factory=Counter)  # symbol -> bar requests answered
    throttled: int = 0
    requests: int = 0  # every request, refused or not

    def series(self, symbol: str, start: date, end: date, adjusted: bool) -> list[Any]:
        out = []
        for day in sorted(self.bars.get(symbol, {})):
            if start <= day <= end:
                o, h, lo, c, v = self.bars[symbol][day]
                factor = 1.0
                if adjusted:  # in today's shares: divided by every split after the bar
                    for at, ratio in self.splits.get(symbol, {}).items():
                        if at > day:
                            factor *= ratio
                out.append((day, o / factor, h / factor, lo / factor, c / factor, v * factor))
        return out


def _stamp(day: date) -> datetime:
    return datetime.combine(day, time(0), NEW_YORK)


class _Handler(BaseHTTPRequestHandler):
    market: Market
    lock: threading.Lock

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, symbol: str) -> bool:
        """Answer a planted fault instead of the bars; True when it did."""
        m = self.market
        with self.lock:
            if m.throttle and m.requests % 2 == 1:
                m.throttled += 1
                self._json(429, {"message": "too many requests."},
                           {"Retry-After": m.retry_after})
                return True
            if symbol in m.fail_once:
                m.fail_once.discard(symbol)
                self._json(500, {"message": "internal server error"})
                return True
            m.asked[symbol] += 1
        return False

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.market.requests += 1
        if url.path == "/v2/stocks/bars":
            self._alpaca(query)
        elif url.path.startswith("/v2/aggs/ticker/"):
            self._polygon(url.path, query)
        else:
            self._json(404, {"message": "not found"})

    def _alpaca(self, q: dict[str, str]) -> None:
        if (self.headers.get("APCA-API-KEY-ID"), self.headers.get("APCA-API-SECRET-KEY")) != (
                KEY_ID, SECRET):
            self._json(401, {"message": "unauthorized."})
            return
        symbol = q["symbols"]
        if self._fault(symbol):
            return
        if symbol in self.market.unknown:
            self._json(400, {"message": f"invalid symbol: {symbol}"})
            return
        start = datetime.fromisoformat(q["start"].replace("Z", "+00:00")).astimezone(
            NEW_YORK).date()
        end = datetime.fromisoformat(q["end"].replace("Z", "+00:00")).astimezone(
            NEW_YORK).date()
        rows = self.market.series(symbol, start, end, q.get("adjustment", "raw") != "raw")
        at = int(q.get("page_token") or 0)
        page = rows[at:at + self.market.page_size]
        more = at + self.market.page_size < len(rows)
        self._json(200, {
            "bars": {symbol: [{"t": _stamp(d).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "o": o, "h": h, "l": lo, "c": c, "v": v, "n": 100, "vw": c}
                              for d, o, h, lo, c, v in page]} if page else {},
            "next_page_token": str(at + self.market.page_size) if more else None})

    def _polygon(self, path: str, q: dict[str, str]) -> None:
        if self.headers.get("Authorization") != f"Bearer {POLYGON_KEY}":
            self._json(401, {"status": "ERROR", "request_id": "stub",
                             "error": "API Key was not provided"})
            return
        parts = path.split("/")  # /v2/aggs/ticker/T/range/1/day/FROM/TO
        ticker, start, end = parts[4], date.fromisoformat(parts[8]), date.fromisoformat(
            parts[9])
        symbol = ticker.removeprefix("I:")
        if self._fault(symbol):
            return
        if ticker.startswith("I:") or symbol in self.market.unknown:
            self._json(403, {"status": "NOT_AUTHORIZED", "request_id": "stub",
                             "message": "You are not entitled to this data."})
            return
        rows = self.market.series(symbol, start, end, q.get("adjusted", "true") == "true")
        at = int(q.get("cursor") or 0)
        page = rows[at:at + self.market.page_size]
        body: dict[str, Any] = {
            "ticker": ticker, "adjusted": q.get("adjusted", "true") == "true",
            "queryCount": len(page), "resultsCount": len(page), "status": "OK",
            "request_id": "stub",
            "results": [{"o": o, "h": h, "l": lo, "c": c, "v": v, "vw": c, "n": 100,
                         "t": int(_stamp(d).timestamp() * 1000)}
                        for d, o, h, lo, c, v in page]}
        if at + self.market.page_size < len(rows):
            host = self.headers.get("Host")
            body["next_url"] = (f"http://{host}{path}?" + urlencode(
                {**q, "cursor": at + self.market.page_size}))
        self._json(200, body)


@contextmanager
def serving(market: Market) -> Iterator[str]:
    """The stub on a free loopback port: its base URL."""
    handler = type("Handler", (_Handler,), {"market": market, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def walk(symbol: str, sessions: list[date], start: float, drift: float = 0.01,
         volume: float = 1e6) -> dict[date, tuple[float, float, float, float, float]]:
    """A plain path: the close moves by `drift` a session."""
    out, close = {}, start
    for day in sessions:
        o = close
        close = round(close * (1 + drift), 4)
        out[day] = (o, max(o, close) * 1.01, min(o, close) * 0.99, close, volume)
    return out


def with_split(path: dict[date, tuple[float, float, float, float, float]], at: date,
               ratio: float) -> dict[date, tuple[float, float, float, float, float]]:
    """The same path as traded when a `ratio` split took effect at `at`'s open."""
    return {d: ((o / ratio, h / ratio, lo / ratio, c / ratio, v * ratio) if d >= at
                else (o, h, lo, c, v)) for d, (o, h, lo, c, v) in path.items()}


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
