"""Ed25519 signatures over the exact bytes of a params record.

The learner alone holds the private key; readers hold public keys (several during a key
rotation) and can verify but never sign. What is signed is the record value exactly as it
travels (the Kafka record's value, the HTTP response's `record` text in UTF-8): a reader in
any language verifies those bytes as they are, with no canonical form to re-create.

The signature travels beside the bytes, never inside them: in Kafka record headers
(`learning-signature`: base64 of the 64-byte signature; `learning-key-id`: which key) and
in the HTTP response's `signature` and `key_id` fields. A key id is the first 16 hex
digits of SHA-256 over the raw 32-byte public key, so anyone holding the key can compute
it. Keys are written as base64 of their raw 32 bytes (the private key: its seed), one line
that fits an environment variable; `public_pem` gives the PEM that `openssl` reads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ALGORITHM = "ed25519"
SIGNATURE_HEADER = "learning-signature"
KEY_ID_HEADER = "learning-key-id"


class BadKey(ValueError):
    """A key that is not base64 of 32 bytes."""


def _raw32(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise BadKey(f"{what} must be base64 of 32 bytes (as `amc-learning params-keys "
                        f"new` prints it), not {text.strip()[:12]!r}...")
    return raw


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def new_private_key() -> str:
    """A fresh private key, base64 of its 32-byte seed."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def public_pem(public_b64: str) -> str:
    """The SubjectPublicKeyInfo PEM of a public key (what `openssl pkeyutl -pubin` reads)."""
    key = Ed25519PublicKey.from_public_bytes(_raw32(public_b64, "a public key"))
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class Signature:
    """A signature (base64 of 64 bytes) and the id of the key that made it."""

    value: str
    key_id: str

    def headers(self) -> list[tuple[str, bytes]]:
        return [(SIGNATURE_HEADER, self.value.encode()), (KEY_ID_HEADER, self.key_id.encode())]

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes]] | None) -> Signature | None:
        found = {k: v for k, v in headers or () if v is not None}
        if SIGNATURE_HEADER not in found or KEY_ID_HEADER not in found:
            return None
        try:
            return cls(found[SIGNATURE_HEADER].decode(), found[KEY_ID_HEADER].decode())
        except UnicodeDecodeError:
            return None


class Signer:
    """The learner's side: signs record values with the private key."""

    def __init__(self, private_b64: str) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(_raw32(private_b64, "the private key"))
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw,
                                                  serialization.PublicFormat.Raw)
        self.public_key = base64.b64encode(raw).decode()
        self.key_id = key_id(raw)

    def sign(self, value: bytes) -> Signature:
        return Signature(base64.b64encode(self._key.sign(value)).decode(), self.key_id)


class Verifier:
    """A reader's side: the public keys it accepts, by key id."""

    def __init__(self, public_keys: Iterable[str]) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        #: key id -> the key as given (base64)
        self.public_keys: dict[str, str] = {}
        for text in public_keys:
            raw = _raw32(text, "a public key")
            self._keys[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)
            self.public_keys[key_id(raw)] = text.strip()

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def check(self, value: bytes, signature: Signature | None) -> str | None:
        """None when `signature` is a valid signature of `value` by one of our keys; else
        why not, starting with `unsigned`, `unknown_key` or `bad_signature`."""
        if signature is None:
            return "unsigned: no signature and key id"
        key = self._keys.get(signature.key_id)
        if key is None:
            return (f"unknown_key: signed by key {signature.key_id[:16]!r}, not one of "
                    f"{', '.join(self.key_ids) or 'no keys'}")
        try:
            key.verify(base64.b64decode(signature.value, validate=True), value)
        except (InvalidSignature, binascii.Error, ValueError):
            return "bad_signature: the bytes are not what the key signed (tampered)"
        return None
