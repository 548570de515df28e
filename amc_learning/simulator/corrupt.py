"""Broken variants of valid payloads, the kind real producers occasionally send."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from amc_learning.schemas.common import Event


def _truncated(raw: bytes, rng: random.Random) -> bytes:
    return raw[: rng.randrange(1, len(raw) - 1)]


def _not_utf8(raw: bytes, _rng: random.Random) -> bytes:
    return b"\xff\xfe" + raw


def _wrong_type(raw: bytes, _rng: random.Random) -> bytes:
    body = json.loads(raw)
    body["symbol"] = 12345
    return json.dumps(body).encode()


def _unknown_type(raw: bytes, _rng: random.Random) -> bytes:
    body = json.loads(raw)
    body["event_type"] = "something_else"
    return json.dumps(body).encode()


def _missing_field(raw: bytes, _rng: random.Random) -> bytes:
    body = json.loads(raw)
    body.pop("occurred_at", None)
    return json.dumps(body).encode()


def _bad_symbol(raw: bytes, _rng: random.Random) -> bytes:
    body = json.loads(raw)
    body["symbol"] = "not a ticker!"
    return json.dumps(body).encode()


def _nan(raw: bytes, _rng: random.Random) -> bytes:
    return raw.replace(b'"producer"', b'"nan_field":NaN,"producer"', 1)


CORRUPTIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncated": _truncated,
    "not_utf8": _not_utf8,
    "wrong_type": _wrong_type,
    "unknown_type": _unknown_type,
    "missing_field": _missing_field,
    "bad_symbol": _bad_symbol,
    "nan": _nan,
}


def corrupt(event: Event, rng: random.Random) -> tuple[str, bytes]:
    """(kind, bytes) of a randomly broken copy of `event`; never a valid event."""
    kind = rng.choice(sorted(CORRUPTIONS))
    return kind, CORRUPTIONS[kind](event.model_dump_json().encode(), rng)
