"""Load shed, never queued: `serve` handles a bounded number of requests at once (decision
019 says why here and not by uvicorn's own limit)."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import Counter

#: a shed request's Retry-After: the overload is measured in requests in flight, so a
#: second later is another world
SHED_RETRY_AFTER_S = 1
SHED = Counter("learning_api_shed", "requests answered 503 at once: over "
               "LEARNING_API_MAX_IN_FLIGHT in flight")


class Admission:
    """At most `limit` requests in flight; every other one is answered at once with 503
    and `Retry-After` (its body says why), never queued: under overload the requests
    admitted keep their latency and a caller's back-off takes the rest. `/healthz` is
    always admitted. Pure ASGI, outermost: a shed request costs no routing or parsing."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit, self.in_flight = app, limit, 0
        self.body = json.dumps({"detail": f"over {limit} requests in flight "
                                          "(LEARNING_API_MAX_IN_FLIGHT): retry after "
                                          f"{SHED_RETRY_AFTER_S} s"}).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            SHED.inc()
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self.body)).encode()),
                (b"retry-after", str(SHED_RETRY_AFTER_S).encode())]})
            await send({"type": "http.response.body", "body": self.body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
