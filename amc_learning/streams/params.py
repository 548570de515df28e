"""The params edge: the learner publishes signed parameter sets, the trading engine reads them.

`ParamsReader` is the only piece of this project a trading engine embeds. Its promises:

* `get()` never blocks and never raises: it is one read of an immutable snapshot that a
  background thread replaces whole (no lock is taken on the read path).
* It only ever returns parameters whose record bytes carry a valid Ed25519 signature by
  one of the public keys it holds (`schemas.signing`; it holds no key that can sign), that
  are within the hard bounds of `schemas.params`, newer than what it holds (a higher
  version, or the same version promoted to a higher mode), and not expired; otherwise the
  fallback, saying `source="fallback"` and why.
* One param set per scoring model (`schemas.params.param_set`). `get()` reads the
  engine's own six-weight set, falling back to the seed's conservative
  `FALLBACK_PARAMS`; `table(model)` reads a declared model's own parameters (a tiered
  model's points table, a component model's weights and threshold), falling back to the
  producer's own declared ones. Neither ever returns another model's parameters: a
  model's are taken only under its set name, for a model the reader holds the
  declaration of (so their bounds can be checked), and read back only for that model.
* A broker outage changes nothing it holds: the last valid params stay until they expire.
  Connection attempts go through a circuit breaker, so a dead broker costs a retry per
  cool-down, not a busy loop.
* Canary versions apply to a deterministic share of decisions: the same decision key
  always lands in the same arm (a hash, not a random draw). Shadow versions are held for
  the learner's comparisons and never returned to trading.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, overload

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import Counter
from pydantic import ValidationError

from amc_learning.schemas import topics
from amc_learning.schemas.models import ComponentModel, TieredModel, shipped
from amc_learning.schemas.params import (
    FALLBACK_PARAMS,
    AdaptiveParams,
    ComponentParams,
    ParamsPublished,
    TieredParams,
    declared_params,
    model_out_of_bounds,
    out_of_bounds,
    param_set,
)
from amc_learning.schemas.signing import Signature, Signer, Verifier
from amc_learning.settings import Settings
from amc_learning.streams.breaker import CircuitBreaker
from amc_learning.streams.kafka import KafkaConfig, producer_options
from amc_learning.streams.metrics import track_reader
from amc_learning.streams.topics import TopicNames

log = logging.getLogger(__name__)

#: In the embedding process's default registry, so the trading engine's /metrics shows them.
REJECTED = Counter("learning_params_rejected_total",
                   "Params messages the reader refused, by reason", ["reason"])
ACCEPTED = Counter("learning_params_accepted_total",
                   "Params versions the reader took, by mode", ["mode"])


P = TypeVar("P", AdaptiveParams, TieredParams, ComponentParams)


@dataclass(frozen=True)
class ParamsView(Generic[P]):
    """What the trading engine gets: the params, where they came from, and why."""

    params: P
    source: str  # "published" | "fallback"
    reason: str
    name: str
    version: int | None = None
    mode: str | None = None  # "live" | "canary" for published params
    #: published params: the record's exact bytes and their signature, for readers that
    #: verify for themselves (the HTTP API hands both on)
    record: bytes | None = None
    signature: Signature | None = None


@dataclass(frozen=True)
class Record:
    """An accepted params message with the bytes it came as and their signature."""

    message: ParamsPublished
    value: bytes
    signature: Signature

    @classmethod
    def signed(cls, message: ParamsPublished, signer: Signer) -> Record:
        """The message as its record bytes, signed."""
        value = message.model_dump_json().encode()
        return cls(message, value, signer.sign(value))

    def view(self, reason: str) -> ParamsView[Any]:
        m = self.message
        return ParamsView(m.params, "published", reason, m.name, m.version, m.mode,
                          self.value, self.signature)


#: A version moves shadow -> canary -> live under the same number; each step is a new
#: message that the reader accepts because its mode ranks higher.
MODE_RANK = {"shadow": 0, "canary": 1, "live": 2}


@dataclass(frozen=True)
class _Held:
    """An immutable snapshot: per param-set name and mode, the newest accepted version."""

    versions: dict[str, dict[str, Record]] = field(default_factory=dict)
    #: per name, the newest (version, mode rank) accepted
    newest: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: per name, the live view ready to hand out and its expiry (POSIX seconds): `get()`'s
    #: fast path, a dict lookup and a clock read (the engine's own sets only)
    live: dict[str, tuple[ParamsView[AdaptiveParams], float]] = field(default_factory=dict)
    #: the names that have a canary (their decisions may need the slow path)
    canaries: frozenset[str] = frozenset()

    @classmethod
    def of(cls, versions: dict[str, dict[str, Record]],
           newest: dict[str, tuple[int, int]]) -> _Held:
        live = {name: (r.view("live"), r.message.valid_until.timestamp())
                for name, modes in versions.items() if (r := modes.get("live")) is not None
                and isinstance(r.message.params, AdaptiveParams)}
        canaries = frozenset(name for name, modes in versions.items() if "canary" in modes)
        return cls(versions, newest, live, canaries)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def message_key(name: str, mode: str) -> bytes:
    """The Kafka key: one per set *and mode*, so compaction keeps the newest live, canary
    and shadow message of each set (with one key per set, a shadow version published
    after the live one would compact the live one away for every reader that starts
    later)."""
    return f"{name}:{mode}".encode()


def canary_bucket(decision_key: str) -> float:
    """A stable number in [0, 100) for a decision key: its canary arm never changes."""
    digest = hashlib.sha256(decision_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100.0


class ParamsReader:
    """Reads the compacted params topic from the beginning, keeps the newest valid versions."""

    def __init__(
        self,
        kafka: KafkaConfig | None,
        topic: str,
        verifier: Verifier | None,
        *,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], datetime] = _utc_now,
        connect_timeout_s: float = 5.0,
        fetch_wait_ms: int = 50,
        models: tuple[TieredModel | ComponentModel, ...] | None = None,
    ) -> None:
        #: the declared models whose parameters this reader takes (default: those shipped)
        self._models = {(m.name, m.version): m for m in (
            models if models is not None else shipped())}
        self._declared: dict[tuple[str, str], TieredParams | ComponentParams] = {}
        self._client = kafka.client() if kafka is not None else {}  # None: offered to only
        self._topic = topic
        self._verifier = verifier
        self._clock = clock
        self._now: Callable[[], float] = (
            time.time if clock is _utc_now else lambda: clock().timestamp())
        self._breaker = breaker or CircuitBreaker(failure_threshold=3, cooldown_s=5.0)
        self._connect_timeout_s = connect_timeout_s
        self._fetch_wait_ms = fetch_wait_ms
        self._held = _Held()
        self._stop = threading.Event()
        track_reader(self)
        self._thread: threading.Thread | None = None
        self.rejections: dict[str, int] = {}
        self.last_rejection: str | None = None
        self.last_error: str | None = None
        self.connected = False

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ParamsReader:
        topic = TopicNames(settings.topic_prefix)(topics.PARAMS)
        return cls(KafkaConfig.from_settings(settings), topic, verifier_of(settings), **kwargs)

    # -- the read path (trading) ------------------------------------------------------------

    def get(self, name: str = "default",
            decision_key: str | None = None) -> ParamsView[AdaptiveParams]:
        """The engine's own params to trade with now. Never blocks, never raises."""
        try:
            held = self._held
            fast = held.live.get(name)
            if (fast is not None and (decision_key is None or name not in held.canaries)
                    and self._now() < fast[1]):
                return fast[0]
            view = self._view(held, name, decision_key, FALLBACK_PARAMS)
            if isinstance(view.params, AdaptiveParams):
                return view
            return ParamsView(FALLBACK_PARAMS, "fallback", f"the set {name} holds a scoring "
                              "model's params, not the engine's own", name)
        except Exception as exc:  # pragma: no cover - the promise is "never raises"
            return ParamsView(FALLBACK_PARAMS, "fallback", f"reader error: {exc!r}", name)

    @overload
    def table(self, model: TieredModel,
              decision_key: str | None = None) -> ParamsView[TieredParams]: ...

    @overload
    def table(self, model: ComponentModel,
              decision_key: str | None = None) -> ParamsView[ComponentParams]: ...

    def table(self, model: TieredModel | ComponentModel,
              decision_key: str | None = None) -> ParamsView[Any]:
        """The declared `model`'s own parameters to score with now (a points table, or
        weights and a threshold): its set's, else the producer's own declared ones. Never
        blocks, never raises."""
        name = param_set(f"{model.name} {model.version}")
        declared = self._declared.get((model.name, model.version))
        if declared is None:  # built once per model, not on every read
            declared = self._declared[(model.name, model.version)] = declared_params(model)
        try:
            view = self._view(self._held, name, decision_key, declared)
            if view.source == "fallback" or (type(view.params) is type(declared)
                                             and view.params.model == declared.model):
                return view
            return ParamsView(declared, "fallback", f"the set {name} holds no params of "
                              f"{model.name} {model.version}", name)
        except Exception as exc:  # pragma: no cover - the promise is "never raises"
            return ParamsView(declared, "fallback", f"reader error: {exc!r}", name)

    def _view(self, held: _Held, name: str, decision_key: str | None,
              fallback: Any) -> ParamsView[Any]:
        now = self._clock()
        modes = held.versions.get(name, {})
        canary, live = modes.get("canary"), modes.get("live")
        if (canary is not None and canary.message.valid_until > now and decision_key is not None
                and canary_bucket(decision_key) < canary.message.canary_pct):
            return canary.view("canary arm")
        if live is not None and live.message.valid_until > now:
            return live.view("live")
        if live is not None:
            reason = (f"live version {live.message.version} expired at "
                      f"{live.message.valid_until.isoformat()}")
        elif self.last_rejection:
            reason = f"no valid live version; last rejected: {self.last_rejection}"
        elif self.last_error and not self.connected:
            reason = f"no params yet; broker unreachable: {self.last_error}"
        else:
            reason = "no live params published yet"
        return ParamsView(fallback, "fallback", reason, name)

    # -- the validation path (one message) -------------------------------------------------

    def offer(self, raw: bytes | None, signature: Signature | None) -> str | None:
        """Validate one message (its value and the signature from its headers) and hold it
        if valid; return the rejection reason or None."""
        reason = self._check(raw, signature)
        if reason is not None:
            kind = reason.split(":")[0]
            self.rejections[kind] = self.rejections.get(kind, 0) + 1
            self.last_rejection = reason
            REJECTED.labels(kind).inc()
            log.warning("params rejected: %s", reason)
        return reason

    def _check(self, raw: bytes | None, signature: Signature | None) -> str | None:
        if raw is None:
            return "invalid: empty message (tombstone)"
        if not self._verifier:
            return "unverifiable: no LEARNING_PARAMS_PUBLIC_KEYS configured"
        forged = self._verifier.check(raw, signature)
        if forged is not None or signature is None:  # before parsing: unsigned bytes are
            return forged or "unsigned"              # not looked into
        try:
            message = ParamsPublished.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            return f"invalid: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        bounds = self._bounds(message)
        if bounds:
            return f"out_of_bounds: version {message.version}: {bounds}"
        held = self._held
        holding = held.versions.get(message.name, {}).get(message.mode)
        if holding is not None and holding.value == raw:
            return None  # the very message we hold, delivered again (a republish): no news
        newest = held.newest.get(message.name, (0, 0))
        if (message.version, MODE_RANK[message.mode]) <= newest:
            held_mode = next(m for m, r in MODE_RANK.items() if r == newest[1])
            return (f"stale: version {message.version} ({message.mode}) is not newer than "
                    f"version {newest[0]} ({held_mode})")
        if message.valid_until <= self._clock():
            return f"expired: version {message.version} valid until {message.valid_until}"
        versions = {k: dict(v) for k, v in held.versions.items()}
        versions.setdefault(message.name, {})[message.mode] = Record(message, raw, signature)
        if message.mode == "live":  # a new live version ends any canary before it
            versions[message.name].pop("canary", None)
        self._held = _Held.of(versions, {**held.newest,
                                         message.name: (message.version, MODE_RANK[message.mode])})
        ACCEPTED.labels(message.mode).inc()
        return None

    def _bounds(self, message: ParamsPublished) -> str | None:
        """Why the message's params must not be used, or None (see the module's text)."""
        params = message.params
        if isinstance(params, AdaptiveParams):
            return out_of_bounds(params)
        key = f"{params.model.name} {params.model.version}"
        if message.name != param_set(key):
            return f"params of {key} under the set {message.name}, not {param_set(key)}"
        model = self._models.get((params.model.name, params.model.version))
        if model is None:
            return f"no declaration of {key} held to check its params against"
        return model_out_of_bounds(params, model)

    def names(self) -> list[str]:
        """The param sets held (["default"] before any)."""
        return sorted(self._held.versions) or ["default"]

    def issued_at(self, name: str) -> datetime | None:
        """When the live version of `name` held now was issued (None: no live version)."""
        live = self._held.versions.get(name, {}).get("live")
        return live.message.issued_at if live is not None else None

    def status(self) -> dict[str, Any]:
        held = self._held
        return {
            "connected": self.connected,
            "breaker": self._breaker.state,
            "held": {n: {m: r.message.version for m, r in modes.items()}
                     for n, modes in held.versions.items()},
            "key_ids": self._verifier.key_ids if self._verifier else [],
            "rejections": dict(self.rejections),
            "last_rejection": self.last_rejection,
            "last_error": self.last_error,
        }

    # -- the background thread -------------------------------------------------------------

    def start(self) -> ParamsReader:
        """Start following the topic in a daemon thread; returns at once."""
        self._thread = threading.Thread(target=self._thread_main, name="params-reader",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_for(self, predicate: Callable[[ParamsReader], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._follow())
        except (asyncio.CancelledError, Exception) as exc:  # closing while the broker is down
            log.info("params reader stopped: %r", exc)

    async def _follow(self) -> None:
        while not self._stop.is_set():
            if not self._breaker.allow():
                await asyncio.sleep(0.1)
                continue
            # A fetch that finds nothing waits `fetch_wait_ms` on the broker (Tansu answers
            # at the end of the wait even when a record arrives sooner): it bounds how long a
            # new version takes to show, at the price of that many idle fetches per second.
            consumer = AIOKafkaConsumer(**self._client, enable_auto_commit=False,
                                        fetch_max_wait_ms=self._fetch_wait_ms,
                                        request_timeout_ms=int(self._connect_timeout_s * 1000))
            try:
                await asyncio.wait_for(consumer.start(), self._connect_timeout_s)
                partitions = consumer.partitions_for_topic(self._topic)
                if not partitions:
                    raise RuntimeError(f"topic {self._topic} does not exist")
                consumer.assign([TopicPartition(self._topic, p) for p in sorted(partitions)])
                await consumer.seek_to_beginning()
                self._breaker.record_success()
                self.connected, self.last_error = True, None
                while not self._stop.is_set():
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for record in records:
                            self.offer(record.value, Signature.from_headers(record.headers))
            except Exception as exc:
                self.connected, self.last_error = False, f"{type(exc).__name__}: {exc}"
                self._breaker.record_failure()
                log.warning("params reader: %s", self.last_error)
                await asyncio.sleep(0.2)
            finally:
                with contextlib.suppress(Exception):  # a consumer that never started
                    await asyncio.wait_for(consumer.stop(), 2.0)


def signer_of(settings: Settings) -> Signer | None:
    """The learner's signer (None: no LEARNING_PARAMS_SIGNING_KEY)."""
    key = settings.params_signing_key
    return Signer(key.get_secret_value()) if key is not None else None


def verifier_of(settings: Settings) -> Verifier:
    """The public keys a reader accepts: LEARNING_PARAMS_PUBLIC_KEYS, and the signing key's
    own public half where this process holds it."""
    keys = [k for k in settings.params_public_keys.split(",") if k.strip()]
    signer = signer_of(settings)
    return Verifier(keys + ([signer.public_key] if signer is not None else []))


async def publish_params(settings: Settings, message: ParamsPublished,
                         producer: AIOKafkaProducer | None = None) -> Record:
    """Sign the record's bytes with LEARNING_PARAMS_SIGNING_KEY and send them to the params
    topic, the signature and key id in its headers (key = set and mode), through
    `producer` (a cycle's one), else a producer of its own."""
    signer = signer_of(settings)
    if signer is None:
        raise ValueError("no LEARNING_PARAMS_SIGNING_KEY: params must be signed")
    record = Record.signed(message, signer)
    own = producer is None
    if producer is None:
        producer = AIOKafkaProducer(**producer_options(settings))
        await producer.start()
    try:
        topic = TopicNames(settings.topic_prefix)(topics.PARAMS)
        await producer.send_and_wait(topic, record.value,
                                     key=message_key(message.name, message.mode),
                                     headers=record.signature.headers())
    finally:
        if own:
            await producer.stop()
    return record
