"""Bearer tokens of the HTTP API: who a caller is, and what it may do.

`LEARNING_API_TOKENS` lists them as `producer:scope[+scope]:sha256hex`, comma-separated,
where the digest is SHA-256 of the token: the server never holds a token, only its hash
(`amc-learning api-token NAME` makes one and prints its line). The token decides the
events' `producer`, never the body. Scopes: `collect` (POST events), `read` (GET params
and intelligence).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

SCOPES = ("collect", "read")
_LINE = re.compile(r"^([a-z0-9][a-z0-9_.\-]{0,63}):([a-z+]+):([0-9a-f]{64})$")


@dataclass(frozen=True)
class Token:
    producer: str
    scopes: frozenset[str]
    digest: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse(text: str) -> list[Token]:
    """The tokens of a `LEARNING_API_TOKENS` value; ValueError naming the bad entry."""
    found = []
    for i, entry in enumerate(e.strip() for e in text.split(",") if e.strip()):
        match = _LINE.match(entry)
        if match is None:
            raise ValueError(f"LEARNING_API_TOKENS entry {i + 1} is not "
                             "producer:scope[+scope]:sha256hex (64 hex digits)")
        producer, scopes, hashed = match.groups()
        unknown = set(scopes.split("+")) - set(SCOPES)
        if unknown:
            raise ValueError(f"LEARNING_API_TOKENS entry {i + 1} ({producer}): unknown scope "
                             f"{', '.join(sorted(unknown))} (use {' or '.join(SCOPES)})")
        found.append(Token(producer, frozenset(scopes.split("+")), hashed))
    return found


def find(tokens: list[Token], presented: str) -> Token | None:
    """The token whose digest matches, compared in constant time."""
    given = digest(presented)
    match = None
    for token in tokens:
        if hmac.compare_digest(token.digest, given):
            match = token
    return match


def make(producer: str, scopes: tuple[str, ...]) -> tuple[str, str]:
    """A new token and its `LEARNING_API_TOKENS` entry."""
    token = secrets.token_urlsafe(32)
    entry = f"{producer}:{'+'.join(scopes)}:{digest(token)}"
    parse(entry)  # the same rules as the server's
    return token, entry
