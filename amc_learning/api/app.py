"""The HTTP API (`amc-learning serve`): FastAPI on uvicorn.

* `POST /learning/collect/{discovery-data,thesis-decision,trade-outcome}`: one event or a
  list of them (contract v1 or v2). Every event is validated before any is sent: one
  invalid event is a 422 listing every field error (`loc` starts with the event's index
  in a batch), and nothing is sent. The token decides each event's `producer`. A 200
  means the broker acknowledged every event; a broker that does not within
  `LEARNING_API_ACK_TIMEOUT_S` is a 503 with `Retry-After`. Events are idempotent by
  `event_id`, so a retry after a 503 stores each event once, whatever part of the batch
  the broker took before it failed.
* `GET /learning/intelligence/adaptive-params?name=` (or `?model=name version`, a declared
  scoring model's set): what a `ParamsReader` holds for the param set: the version and
  mode in force and its params, or the fallback (for a model: the producer's own declared
  parameters) and why; a model no declaration names is a 404 that says how to register it. With
  published params come `record` (the params record's exact text), `signature` and
  `key_id`: a caller that holds the public keys verifies `record` as UTF-8 bytes itself.
  `/pattern-insights`, `/regime`, `/calibration`: what the newest learning pass stored.
* `/healthz` on the API's port, and `/metrics` with `/healthz` on the metrics port as in
  every process (`amc-learning status` finds it); `/docs`: the generated OpenAPI page.

With `?format=` a collect route takes a producer's own shape instead (`FORMATS`:
AlphaStack 4.1 candidates, AMC-Trader's scan rows and `learning_decisions` rows, Alpaca's
`trade_updates` messages and orders), read by the same adapters as `import`; a record they
cannot map is a 422 with its reason.

Auth: `Authorization: Bearer <token>` (`api.tokens`); 401 without a known token, 403
without the scope, 429 with `Retry-After` over the token's rate (a bucket per producer:
`LEARNING_API_RATE_PER_S`, `LEARNING_API_BURST`). Bodies over
`LEARNING_API_MAX_BODY_BYTES` and batches over `LEARNING_API_MAX_BATCH` are a 413.
Over `LEARNING_API_MAX_IN_FLIGHT` requests at once, the rest are a 503 with
`Retry-After` at once (`Admission`): load is shed, never queued.
"""


import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter, Histogram

from amc_learning.api import contract
from amc_learning.api import tokens as token_rules
from amc_learning.api.admission import Admission
from amc_learning.schemas.models import ComponentModel, TieredModel, shipped
from amc_learning.schemas.params import (
    FALLBACK_PARAMS,
    ComponentParams,
    TieredParams,
    declared_params,
)
from amc_learning.schemas.registry import TOPIC_OF_EVENT
from amc_learning.schemas.signing import ALGORITHM
from amc_learning.service.collect import FORMATS, ROUTES, NotAcknowledged
from amc_learning.service.collect import collect as collect_events
from amc_learning.service.deliver import FORMATS as EXPORTS
from amc_learning.service.deliver import Held, NotExportable, export
from amc_learning.service.models import find
from amc_learning.settings import Settings
from amc_learning.store import Unavailable
from amc_learning.store.database import Database
from amc_learning.store.insights import Insights
from amc_learning.streams.kafka import Kafka, stop_client
from amc_learning.streams.params import ParamsReader, ParamsView

RETRY_AFTER_S = 5

REQUESTS = Counter("learning_api_requests", "HTTP API requests by route and status",
                   ["route", "status"])
COLLECTED = Counter("learning_api_events_collected", "events the broker acknowledged for a "
                    "collect request", ["producer", "topic"])
LATENCY = Histogram("learning_api_request_seconds", "HTTP API request time", ["route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10))


class Broker:
    """The API's producer: started lazily and again after a failure, every wait bounded."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kafka = Kafka(settings)
        self.producer: AIOKafkaProducer | None = None
        self.lock = asyncio.Lock()
        self.stopping: set[asyncio.Task[bool]] = set()

    async def send(self, records: list[tuple[str, bytes, bytes]]) -> None:
        """Send (topic, key, value) and wait until the broker acknowledged each; raises
        TimeoutError or a Kafka error when it does not within the ack timeout."""
        async def all_acked() -> None:
            producer = await self._started()
            futures = [await producer.send(self.kafka.topic(topic), value, key=key)
                       for topic, key, value in records]
            await asyncio.gather(*futures)
        try:
            await asyncio.wait_for(all_acked(), self.settings.api_ack_timeout_s)
        except Exception:
            # a producer that failed may hold a dead connection: the next request starts
            # another, and this one stops in the background (its stop may wait on the
            # broker too; the caller's 503 must not)
            producer, self.producer = self.producer, None
            if producer is not None:
                task = asyncio.create_task(stop_client(producer, 5.0))
                self.stopping.add(task)
                task.add_done_callback(self.stopping.discard)
            raise

    async def _started(self) -> AIOKafkaProducer:
        async with self.lock:
            if self.producer is None:
                # linger 0: each caller waits for its acknowledgement, and requests that
                # arrive together still share a batch while one is in flight
                producer = self.kafka.producer(linger_ms=0)
                try:
                    await producer.start()
                except BaseException:
                    await stop_client(producer, 2.0)
                    raise
                self.producer = producer
            return self.producer

    async def close(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            await stop_client(producer, 5.0)


class RateLimit:
    """A token bucket per producer: `rate` requests a second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.buckets: dict[str, tuple[float, float]] = {}  # producer -> (tokens, at)

    def wait(self, producer: str, now: float) -> float:
        """0 when the request may go (and takes a token), else the seconds until it may."""
        tokens, at = self.buckets.get(producer, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self.buckets[producer] = (tokens - 1.0, now)
            return 0.0
        self.buckets[producer] = (tokens, now)
        return (1.0 - tokens) / self.rate


def create_app(settings: Settings, db: Database, reader: ParamsReader | None = None) -> FastAPI:
    """The app; `reader` follows the params topic (started and closed by the caller)."""
    known = token_rules.parse(settings.api_tokens)
    broker = Broker(settings)
    limit = RateLimit(settings.api_rate_per_s, settings.api_burst)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await broker.close()

    app = FastAPI(title="AMC-Trader learning engine", lifespan=lifespan,
                  description="Collect what the trading side decides; read what it learned.",
                  dependencies=[Depends(contract.single_valued)])

    def scope(needed: str) -> Callable[[Request], token_rules.Token]:
        def check(request: Request) -> token_rules.Token:
            given = request.headers.get("authorization", "")
            kind, _, secret = given.partition(" ")
            token = token_rules.find(known, secret.strip()) if kind.lower() == "bearer" \
                else None
            if token is None:
                raise HTTPException(401, "a known bearer token is required "
                                         "(Authorization: Bearer <token>)",
                                    headers={"WWW-Authenticate": "Bearer"})
            if needed not in token.scopes:
                raise HTTPException(403, f"this token ({token.producer}) lacks the "
                                         f"{needed!r} scope")
            if (wait := limit.wait(token.producer, time.monotonic())) > 0:
                raise HTTPException(429, f"{token.producer}: over {settings.api_rate_per_s:g} "
                                         "requests a second (LEARNING_API_RATE_PER_S)",
                                    headers={"Retry-After": str(math.ceil(wait))})
            return token
        return check

    collector = Annotated[token_rules.Token, Depends(scope("collect"))]
    reading = Annotated[token_rules.Token, Depends(scope("read"))]

    @app.middleware("http")
    async def measured(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        # the route's template, never the raw path: a label per made-up URL would grow forever
        route = getattr(request.scope.get("route"), "path", "unmatched")
        LATENCY.labels(route).observe(time.perf_counter() - started)
        REQUESTS.labels(route, str(response.status_code)).inc()
        return response

    def collect_route(kind: str) -> None:
        formats = [f for f, (route, _) in FORMATS.items() if route == kind]
        body, defs = contract.collect_body(kind)
        bodies.update(defs)

        async def collect(request: Request, token: collector,
                          format: Annotated[str | None, Query(
                              description="a producer's own shape instead of the contract's "
                                          f"events: {', '.join(formats) or 'none here'}",
                              json_schema_extra={"enum": formats or [""]})] = None,
                          ) -> JSONResponse:
            if format is not None and format not in formats:
                raise HTTPException(400, f"format {format!r} is not taken by /learning/"
                                         f"collect/{kind}: {', '.join(formats) or 'none'}")
            raw = await _body(request, settings.api_max_body_bytes)
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                return _invalid([{"loc": ["body"], "msg": f"not JSON: {exc}",
                                  "type": "json_invalid"}])
            size = len(data) if isinstance(data, list) else 1
            if size > settings.api_max_batch:
                raise HTTPException(413, f"{size} events in one request: at most "
                                         f"{settings.api_max_batch} (LEARNING_API_MAX_BATCH)")
            try:
                collected = await collect_events(broker.send, kind, data, token.producer,
                                                 format)
            except NotAcknowledged as exc:  # the caller retries
                return JSONResponse(
                    {"detail": f"the broker did not acknowledge within "
                               f"{settings.api_ack_timeout_s:g} s ({exc}); retry: "
                               "events are idempotent by event_id"},
                    status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
            if collected.errors:
                return _invalid(collected.errors)
            events = collected.events
            for e in events:
                COLLECTED.labels(token.producer, TOPIC_OF_EVENT[e.event_type]).inc()
            return JSONResponse({"accepted": len(events), "producer": token.producer,
                                 "event_ids": [str(e.event_id) for e in events]})

        app.post(f"/learning/collect/{kind}", name=f"collect {ROUTES[kind]}",
                 summary=f"collect {ROUTES[kind]} events",
                 responses=contract.collect_responses(kind),
                 openapi_extra={"requestBody": body})(collect)

    bodies: dict[str, Any] = {}
    for kind in ROUTES:
        collect_route(kind)

    @app.get("/learning/intelligence/adaptive-params", responses={
        200: {"model": contract.ParamsAnswer, "description": "the params in force",
              "content": {"application/json": {"example": {
                  "name": "default", "source": "fallback", "reason": "no params published "
                  "yet", "version": None, "mode": None, "params": {"discovery_threshold":
                                                                    0.66}}}}},
        404: contract.problem("`model` names no declared scoring model", "model: no "
                               "declaration of 'my-scanner 1.0' ..."),
        **contract.QUERY_INVALID, **contract.GUARDED})
    async def adaptive_params(
            _: reading, name: contract.SetQuery = settings.params_name,
            model: contract.ModelQuery = None,
            format: Annotated[str | None, Query(
                description="with model=: the params as that scanner's own file",
                json_schema_extra={"enum": list(EXPORTS)})] = None) -> JSONResponse:
        """The params in force for the param set `name`, or for the scoring model `model`
        ("name version"): the version and mode, or the fallback and why. With
        `format=amc-scanner-weights`, also `file`: those params as the scanner's own file
        (`params export`), whose tier values are the signed record's."""
        if format is not None and (model is None or format not in EXPORTS):
            raise HTTPException(422, [{"loc": ["query", "format"], "type": "value_error",
                                       "msg": f"{format!r} needs model= and is one of "
                                              f"{', '.join(EXPORTS)}"}])
        unverified = ("this server has no LEARNING_PARAMS_PUBLIC_KEYS to verify published "
                      "params with: the fallback")
        view: ParamsView[Any]
        if model is not None:
            declared = await asyncio.to_thread(declaration, model)
            view = reader.table(declared) if reader is not None else ParamsView(
                declared_params(declared), "fallback", unverified, declared.name)
        else:
            view = reader.get(name) if reader is not None else ParamsView(
                FALLBACK_PARAMS, "fallback", unverified, name)
        body = {"name": view.name, "source": view.source, "reason": view.reason,
                "version": view.version, "mode": view.mode,
                "params": view.params.model_dump(mode="json")}
        if view.record is not None and view.signature is not None:  # verify it yourself
            body.update(record=view.record.decode(), algorithm=ALGORITHM,
                        signature=view.signature.value, key_id=view.signature.key_id)
        if format is not None and model is not None:
            body["file"] = await asyncio.to_thread(exported, model, format, view)
        return JSONResponse(body)

    def exported(model: str, fmt: str, view: ParamsView[Any]) -> dict[str, Any]:
        """The file of the params `view` holds, their evidence from the history."""
        held = None
        if view.source == "published" and isinstance(view.params,
                                                     TieredParams | ComponentParams):
            issued = json.loads(view.record or b"{}").get("issued_at", "")[:10]
            held = Held(view.version or 0, view.params, view.mode or "live",
                        date.fromisoformat(issued))
        try:
            with db.unit_of_work(snapshot=True) as uow:
                return export(uow, model, fmt, held=held).body
        except NotExportable as exc:
            raise HTTPException(422, [{"loc": ["query", "format"], "msg": str(exc),
                                       "type": "value_error"}]) from None
        except Unavailable as exc:
            raise HTTPException(503, f"the database did not answer ({type(exc).__name__})",
                                headers={"Retry-After": str(RETRY_AFTER_S)}) from None

    def declaration(model: str) -> TieredModel | ComponentModel:
        """The declaration "name version" names (404 with how to add one)."""
        name, _, version = model.strip().partition(" ")
        ship = next((m for m in shipped() if (m.name, m.version) == (name, version)), None)
        if ship is not None:  # no database asked: the reader needs none
            return ship
        try:
            with db.unit_of_work() as uow:
                found = find(uow, name, version)
        except Unavailable as exc:
            raise HTTPException(503, f"the database did not answer ({type(exc).__name__})",
                                headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        if found is None:
            raise HTTPException(404, f"model: no declaration of {model!r} (\"name "
                                     "version\", e.g. \"amc-scanner 3.3.1\"); register one "
                                     "with `amc-learning models register FILE`")
        return found.model

    async def stored(read: Callable[[Insights], list[dict[str, Any]]]) -> JSONResponse:
        def in_unit() -> list[dict[str, Any]]:
            with db.unit_of_work() as uow:
                return read(uow.insights)

        try:
            found = await asyncio.to_thread(in_unit)
        except Unavailable as exc:
            raise HTTPException(503, f"the database did not answer ({type(exc).__name__})",
                                headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        return JSONResponse(json.loads(json.dumps(found, default=str)))

    def stored_answers(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
        return {200: {"description": "what the newest learning pass stored",
                      "model": list[dict[str, Any]],
                      "content": {"application/json": {"example": [example]}}},
                **contract.QUERY_INVALID, **contract.GUARDED}

    @app.get("/learning/intelligence/pattern-insights", responses=stored_answers(
        {"pattern": "catalyst_strength:high", "scoring_model": "native", "n": 412,
         "win_rate": 0.58, "win_rate_low": 0.53, "win_rate_high": 0.63, "p": 0.001,
         "q": 0.01}))
    async def pattern_insights(_: reading, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                               model: contract.ModelQuery = None) -> JSONResponse:
        """The newest learning pass's patterns: win rate with its interval, shrunk win
        rate, expectancy, p and q (Benjamini-Hochberg), most significant first; of the
        scoring model `model` ("name version", or "native"), else the newest pass's."""
        return await stored(lambda found: found.patterns(limit, model))

    @app.get("/learning/intelligence/regime", responses=stored_answers(
        {"session": "2026-12-04", "regime": "bull_low_vol", "trend": "bull",
         "volatility": "low"}))
    async def regime(_: reading,
                     sessions: Annotated[int, Query(ge=1, le=500)] = 20) -> JSONResponse:
        """The regime (trend and volatility) of the last sessions, newest first."""
        return await stored(lambda found: found.regimes(sessions))

    @app.get("/learning/intelligence/calibration", responses=stored_answers(
        {"as_of": "2026-12-04", "scoring_model": "native", "group": "all",
         "knots": [[0.5, 0.47], [0.7, 0.58], [0.9, 0.66]], "ece": 0.04}))
    async def calibration(_: reading, model: contract.ModelQuery = None) -> JSONResponse:
        """The newest calibration maps: knots [[confidence, probability], ...] per group;
        of the scoring model `model`, else the newest pass's."""
        return await stored(lambda found: found.calibration(model))

    @app.get("/healthz", responses={200: {"model": contract.Health, "content": {
        "application/json": {"example": {"process": "serve", "status": "ready",
                                         "broker": "connected"}}}}, **contract.QUERY_INVALID})
    async def healthz() -> JSONResponse:
        return JSONResponse({"process": "serve", "status": "ready",
                             "broker": "connected" if broker.producer else "not connected"})

    def openapi() -> dict[str, Any]:
        """The generated page, with the contract's events the collect bodies refer to."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(bodies)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(Admission, limit=settings.api_max_in_flight)  # outermost
    return app


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the body is {declared} bytes: at most {limit} "
                                 "(LEARNING_API_MAX_BODY_BYTES)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body passes {limit} bytes "
                                     "(LEARNING_API_MAX_BODY_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=422)
