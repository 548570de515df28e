"""Ed25519 over the exact record bytes: who can sign, what a reader refuses and why."""

from __future__ import annotations

import base64
import hashlib

import pytest

from amc_learning.schemas.signing import (
    BadKey,
    Signature,
    Signer,
    Verifier,
    new_private_key,
    public_pem,
)

VALUE = b'{"name":"default","version":3}'


def test_a_signature_verifies_only_the_exact_bytes_by_the_key_it_names():
    ours, theirs = Signer(new_private_key()), Signer(new_private_key())
    verifier = Verifier([ours.public_key])
    signature = ours.sign(VALUE)
    assert verifier.check(VALUE, signature) is None
    assert ours.sign(VALUE) == signature  # deterministic: a republish is the same record
    refused = {
        "tampered": verifier.check(VALUE.replace(b"3", b"4"), signature),
        "whitespace": verifier.check(VALUE + b" ", signature),
        "foreign": verifier.check(VALUE, theirs.sign(VALUE)),
        "posing": verifier.check(VALUE, Signature(theirs.sign(VALUE).value, ours.key_id)),
        "garbage": verifier.check(VALUE, Signature("%%%", ours.key_id)),
        "none": verifier.check(VALUE, None),
    }
    assert {k: v.split(":")[0] for k, v in refused.items()} == {
        "tampered": "bad_signature", "whitespace": "bad_signature", "foreign": "unknown_key",
        "posing": "bad_signature", "garbage": "bad_signature", "none": "unsigned"}


def test_rotation_readers_hold_several_public_keys_and_key_ids_anyone_can_compute():
    old, new = Signer(new_private_key()), Signer(new_private_key())
    verifier = Verifier([old.public_key, new.public_key])
    assert verifier.check(VALUE, old.sign(VALUE)) is None
    assert verifier.check(VALUE, new.sign(VALUE)) is None
    raw = base64.b64decode(new.public_key)
    assert new.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert verifier.key_ids == sorted([old.key_id, new.key_id])
    assert not Verifier([])


def test_headers_round_trip_and_incomplete_headers_are_no_signature():
    signature = Signer(new_private_key()).sign(VALUE)
    assert Signature.from_headers(signature.headers()) == signature
    assert Signature.from_headers([("learning-signature", b"x")]) is None
    assert Signature.from_headers(None) is None
    assert Signature.from_headers([("learning-signature", b"\xff"),
                                   ("learning-key-id", b"ab")]) is None


def test_keys_that_are_not_32_bytes_are_a_clear_error_and_the_pem_is_standard():
    with pytest.raises(BadKey, match="base64 of 32 bytes"):
        Verifier(["c2hvcnQ="])
    with pytest.raises(BadKey, match="base64 of 32 bytes"):
        Signer("not base64 at all")
    signer = Signer(new_private_key())
    pem = public_pem(signer.public_key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    der = base64.b64decode("".join(pem.strip().splitlines()[1:-1]))
    # SubjectPublicKeyInfo of Ed25519 (RFC 8410): a fixed 12-byte prefix, then the raw key
    assert der == bytes.fromhex("302a300506032b6570032100") + base64.b64decode(
        signer.public_key)
