"""Dead letters: rejected input with where it came from, why, and its raw bytes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from amc_learning.schemas.common import Contract, UtcTime

RejectionReason = Literal[
    "too_large", "malformed_json", "invalid_event", "unknown_event_type", "wrong_topic",
    "store_rejected",
]


class DeadLetter(Contract):
    """What a consumer could not accept. `raw` is base64 of the original value (capped)."""

    consumer: str
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    key_b64: str | None
    reason: RejectionReason
    error: str
    raw_b64: str
    raw_size: int = Field(ge=0)
    raw_truncated: bool
    #: SHA-256 of the whole original value, so truncated payloads stay distinguishable.
    raw_sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    failed_at: UtcTime
