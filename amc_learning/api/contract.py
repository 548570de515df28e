"""What the HTTP API answers, said on its OpenAPI page: every status a route can give with
its body, an example per operation, each collect route's body as the contract's event.

A property-based fuzzer reads the page and holds the server to it
(tests/integration/test_openapi.py): a status the page does not list is a failure.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, TypeAdapter

from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled
from amc_learning.service.collect import FORMATS, ROUTES

#: The collect routes, one per kind of event (`service.collect.ROUTES`).
CollectKind = Literal["discovery-data", "thesis-decision", "trade-outcome"]
EVENT_OF: dict[str, type[BaseModel]] = {"discovery-data": CandidateScored,
                                        "thesis-decision": ThesisDecided,
                                        "trade-outcome": TradeFilled}
assert set(get_args(CollectKind)) == set(ROUTES) == set(EVENT_OF)

#: A scoring model, "name version" as the registry names it, or the engine's "native".
ModelQuery = Annotated[str | None, Query(
    pattern=r"^(native|[A-Za-z0-9_.:\-]{1,128} [A-Za-z0-9_.:+\-]{1,64})$", max_length=200,
    description='a scoring model, "name version" (e.g. "amc-scanner 3.3.1"), or "native"')]
#: A param set's name, as the params topic keys it.
SetQuery = Annotated[str, Query(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$",
                                description="the param set (default: LEARNING_PARAMS_NAME)")]


class Problem(BaseModel):
    """A refusal, and why."""

    detail: str


class FieldError(BaseModel):
    """One field that is wrong: where (`loc`, from the body or the query) and what."""

    model_config = ConfigDict(extra="allow")
    loc: list[str | int]
    msg: str
    type: str | None = None


class Invalid(BaseModel):
    """Every field error of the request (nothing of it was sent)."""

    detail: list[FieldError]


class Collected(BaseModel):
    accepted: int
    producer: str
    event_ids: list[str]


class ParamsAnswer(BaseModel):
    """The params in force for a set or a scoring model, or the fallback and why; with
    published params, the signed record to verify, and with `format`, the file."""

    name: str
    source: str
    reason: str
    version: int | None
    mode: str | None
    params: dict[str, Any]
    record: str | None = None
    algorithm: str | None = None
    signature: str | None = None
    key_id: str | None = None
    file: dict[str, Any] | None = None


class Health(BaseModel):
    process: str
    status: str
    broker: str


def problem(description: str, example: str, *, retry: bool = False,
             authenticate: bool = False) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if retry:
        headers["Retry-After"] = {"description": "seconds to wait before a retry",
                                  "schema": {"type": "integer"}}
    if authenticate:
        headers["WWW-Authenticate"] = {"schema": {"type": "string"}}
    return {"model": Problem, "description": description, "headers": headers,
            "content": {"application/json": {"example": {"detail": example}}}}


def _invalid(example: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": Invalid, "description": "a field is wrong: every field error, where and "
            "what (nothing was sent)",
            "content": {"application/json": {"example": {"detail": example}}}}


#: What every route behind a token can answer besides its own.
GUARDED: dict[int | str, dict[str, Any]] = {
    401: problem("no known bearer token", "a known bearer token is required "
                  "(Authorization: Bearer <token>)", authenticate=True),
    403: problem("the token lacks the route's scope",
                  "this token (scanner) lacks the 'read' scope"),
    429: problem("over the token's rate (LEARNING_API_RATE_PER_S)", "scanner: over 100 "
                  "requests a second (LEARNING_API_RATE_PER_S)", retry=True),
    503: problem("load shed (over LEARNING_API_MAX_IN_FLIGHT requests in flight), or the "
                  "broker or the database did not answer in time: retry after Retry-After",
                  "over 12 requests in flight (LEARNING_API_MAX_IN_FLIGHT): retry after 1 s",
                  retry=True),
}
QUERY_INVALID: dict[int | str, dict[str, Any]] = {422: _invalid([
    {"loc": ["query", "limit"], "msg": "Input should be less than or equal to 1000",
     "type": "less_than_equal"}])}


def collect_responses(kind: str) -> dict[int | str, dict[str, Any]]:
    example = {"accepted": 1, "producer": "scanner",
               "event_ids": ["6f1c7e6e-1111-4c1d-9a1e-00000000abcd"]}
    return {
        200: {"model": Collected, "description": "the broker acknowledged every event",
              "content": {"application/json": {"example": example}}},
        400: problem("`format` is not one this route takes",
                      f"format 'alpaca-order' is not taken by /learning/collect/{kind}: ..."),
        413: problem("the body or the batch is too large (LEARNING_API_MAX_BODY_BYTES, "
                      "LEARNING_API_MAX_BATCH)", "1001 events in one request: at most 1000 "
                      "(LEARNING_API_MAX_BATCH)"),
        422: _invalid([{"loc": [0, "price"], "msg": "Input should be greater than 0",
                        "type": "greater_than"}]),
        **GUARDED,
    }


def collect_body(kind: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the request body of a collect route, the schemas it refers to): the route's
    contract event or a list of them; with `?format=`, a producer's own records."""
    model = EVENT_OF[kind]
    schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    # as collected: the token names the producer, the route the event type
    schema["properties"]["producer"] = {"description": "ignored: the token names the "
                                                       "producer"}
    schema["required"] = [f for f in schema.get("required", []) if f != "producer"]
    name = f"{model.__name__}Collected"
    defs[name] = schema
    ref = {"$ref": f"#/components/schemas/{name}"}
    formats = [f for f, (route, _) in FORMATS.items() if route == kind]
    body = {
        "required": True,
        "description": f"one {ROUTES[kind]} event (contract v1 or v2) or a list of them"
                       + (f"; with ?format= ({', '.join(formats)}), that producer's record "
                          "or a list of them" if formats else ""),
        "content": {"application/json": {
            "schema": {"anyOf": [ref, {"type": "array", "items": ref, "maxItems": 1000}]
                       + ([{"type": "object", "description": "a producer's record "
                            "(?format=)"}] if formats else [])},
            "example": EXAMPLES[kind]}}}
    return body, defs


def single_valued(request: Request) -> None:
    """A query parameter given twice is refused (the page says each is one value)."""
    twice = sorted({k for k in request.query_params if len(request.query_params.getlist(k)) > 1})
    if twice:
        raise HTTPException(422, [{"loc": ["query", k], "msg": "given more than once: one "
                                   "value only", "type": "value_error"} for k in twice])


EXAMPLES: dict[str, dict[str, Any]] = {
    "discovery-data": {
        "event_id": "6f1c7e6e-1111-4c1d-9a1e-00000000abcd", "schema_version": 2,
        "occurred_at": "2026-12-04T13:30:00Z",
        "run_id": "scan-2026-12-04", "symbol": "AMC", "rank": 1, "passed": True,
        "composite_score": 0.389474, "price": 4.12,
        "scoring_model": {"name": "amc-scanner", "version": "3.3.1"},
        "raw_score": {"value": 73.0, "low": -75.0, "high": 305.0}},
    "thesis-decision": {
        "event_id": "6f1c7e6e-2222-4c1d-9a1e-00000000abcd", "schema_version": 2,
        "occurred_at": "2026-12-04T14:35:00Z",
        "decision_id": "dec-AMC-2026-12-04", "symbol": "AMC", "decision_type": "BUY",
        "decision_source": "thesis", "confidence_score": 0.72, "entry_price": 4.15,
        "position_size_pct": 2.0, "discovery_run_id": "scan-2026-12-04"},
    "trade-outcome": {
        "event_id": "6f1c7e6e-3333-4c1d-9a1e-00000000abcd", "schema_version": 2,
        "occurred_at": "2026-12-04T14:36:02Z",
        "fill_id": "fill-1", "trade_id": "trd-AMC-2026-12-04",
        "decision_id": "dec-AMC-2026-12-04", "symbol": "AMC", "fill_type": "ENTRY",
        "side": "BUY", "quantity": 480, "price": 4.16, "position_size_pct": 2.0},
}
