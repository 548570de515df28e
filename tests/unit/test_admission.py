"""The API sheds load instead of queueing it: at most `limit` requests in flight, every
other one answered at once with 503 and Retry-After, health checks always admitted."""

from __future__ import annotations

import asyncio
import json

import pytest

from amc_learning.api.admission import SHED_RETRY_AFTER_S, Admission


class Held:
    """An app whose requests stay in flight until released; it counts them."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.served = 0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await self.release.wait()
        self.served += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def _request(app: Admission, path: str = "/learning/collect/discovery-data") -> dict:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "POST", "headers": []}, receive, send)
    start, body = sent
    return {"status": start["status"], "headers": dict(start.get("headers", [])),
            "body": body["body"]}


def test_requests_past_the_limit_are_answered_at_once_with_503_and_retry_after():
    async def scenario() -> None:
        inner = Held()
        app = Admission(inner, limit=3)
        admitted = [asyncio.create_task(_request(app)) for _ in range(3)]
        await asyncio.sleep(0)  # the three are in flight, held
        assert app.in_flight == 3
        shed = await asyncio.wait_for(_request(app), 1.0)  # answered without waiting
        assert shed["status"] == 503
        assert shed["headers"][b"retry-after"] == str(SHED_RETRY_AFTER_S).encode()
        assert "LEARNING_API_MAX_IN_FLIGHT" in json.loads(shed["body"])["detail"]
        # a health check is never shed
        health = asyncio.create_task(_request(app, "/healthz"))
        await asyncio.sleep(0)
        inner.release.set()
        assert [r["status"] for r in await asyncio.gather(*admitted)] == [200] * 3
        assert (await health)["status"] == 200
        assert app.in_flight == 0 and inner.served == 4
        # once they are done, the next is admitted again
        assert (await _request(app))["status"] == 200

    asyncio.run(scenario())


def test_a_request_that_fails_still_leaves_its_place():
    async def boom(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("a route failed")

    async def scenario() -> None:
        app = Admission(boom, limit=1)
        for _ in range(2):  # the second is admitted (and fails), not shed
            with pytest.raises(RuntimeError, match="a route failed"):
                await _request(app)
        assert app.in_flight == 0

    asyncio.run(scenario())
