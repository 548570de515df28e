"""`LearningClient`: the learning engine's HTTP API from any Python 3.9+, standard library only.

Two promises to the trading side, whatever the engine does:

* `collect_*()` returns at once and never raises. Events wait in a bounded queue (the
  oldest is dropped when it is full, and counted); one background thread posts them in
  batches, retries what the server could not take (429, 503, 5xx, no answer) with
  exponential back-off and the server's `Retry-After`, and stops trying for a while when
  the server keeps failing (a circuit breaker that closes again after one good trial).
  Events the server refuses for what they are (422, 413 for one event) are not retried:
  they are counted with the reason in `status()`. The server takes all of a batch or none
  of it, so a refused batch is halved until the refused events are alone.
* `get_params()` answers within `timeout` (at most 0.2 s) and never raises: the params
  in force, the last good ones when the server cannot be asked, or the seed's
  conservative `FALLBACK` with the reason. With `cryptography` installed and the
  engine's public keys given, it checks the Ed25519 signature of the params record
  itself and refuses a record that is tampered or signed by another key; without them,
  `status()["verification"]` says that it trusts the server's check.

A producer whose scanner is a points scorecard reads its own model's table instead:
`LearningClient(..., scoring_model="amc-scanner 3.3.1", fallback=<its own table>)` asks
for that model's set, takes only a table of that model (never another model's params),
and answers with `fallback` — the table the producer uses today — whenever nothing valid
is known.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Deque, Dict, Iterable, List, NamedTuple, Optional, Tuple

try:  # optional: the standard library has no Ed25519
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - depends on the environment
    Ed25519PublicKey = None  # type: ignore[assignment,misc]
    InvalidSignature = Exception  # type: ignore[assignment,misc]

from amc_learning_client.breaker import Breaker

log = logging.getLogger("amc_learning_client")

#: The seed's conservative defaults: what to trade with when nothing valid is known
#: (the engine's `FALLBACK_PARAMS`; tests/unit/test_client.py keeps the two equal).
FALLBACK: Dict[str, Any] = {
    "discovery_threshold": 0.75,
    "scoring_weights": {"volume_momentum": 0.25, "squeeze": 0.2, "catalyst": 0.2,
                        "options": 0.15, "technical": 0.1, "sentiment": 0.1},
    "buy_threshold": 0.65,
    "sell_threshold": 0.35,
    "confidence_multiplier": 0.8,
    "position_size_limit_pct": 2.0,
    "calibration": [],
}
MAX_TIMEOUT_S = 0.2
#: Retried: the server could not take the events now; anything else 4xx is final.
RETRIED = {408, 425, 429, 500, 502, 503, 504}


class Params(NamedTuple):
    """What to trade with, where it came from, and why."""

    params: Dict[str, Any]
    source: str  # "published" | "last_good" | "fallback"
    reason: str
    version: Optional[int] = None
    mode: Optional[str] = None
    verified: bool = False  # the signature was checked here (not only by the server)


class Written(NamedTuple):
    """What `write_scanner_weights` did: whether it replaced the file, the file's version
    now, and why."""

    written: bool
    path: str
    version: Optional[str]
    reason: str


class _Answer(NamedTuple):
    status: int  # 0: no answer (connection refused, timeout)
    body: Any
    retry_after: Optional[float]
    error: str


#: Where each kind of event is posted.
ROUTES = {"discovery": "discovery-data", "thesis": "thesis-decision", "trade": "trade-outcome"}


class LearningClient:
    """One per process: `collect_*()` to send, `get_params()` to read, `close()` at exit."""

    def __init__(self, base_url: str, token: str, *, public_keys: Iterable[str] = (),
                 params_name: str = "default", timeout: float = MAX_TIMEOUT_S,
                 params_max_age_s: float = 30.0, queue_size: int = 10_000,
                 batch_size: int = 100, send_timeout_s: float = 10.0,
                 max_backoff_s: float = 30.0, breaker: Optional[Breaker] = None,
                 scoring_model: Optional[str] = None,
                 fallback: Optional[Dict[str, Any]] = None) -> None:
        if scoring_model is not None and fallback is None:
            raise ValueError("scoring_model needs fallback: the table the producer uses "
                             "while nothing learned is valid (its own declared points)")
        self.base_url = base_url.rstrip("/")
        #: "name version" of the tiered model whose table is read (None: the engine's own set)
        self.scoring_model = scoring_model
        self._fallback_params = json.loads(json.dumps(fallback if fallback is not None
                                                      else FALLBACK))
        self._token = token
        self.params_name = params_name
        self.timeout = min(max(timeout, 0.001), MAX_TIMEOUT_S)
        self.params_max_age_s = params_max_age_s
        self.batch_size = batch_size
        self.send_timeout_s = send_timeout_s
        self.max_backoff_s = max_backoff_s
        self.send_breaker = breaker or Breaker()
        self.read_breaker = Breaker()
        self._keys: Dict[str, Any] = {}
        self._key_error = ""
        for text in public_keys:
            self._add_key(text)
        self._queue: Deque[Tuple[str, Optional[str], Any]] = deque(maxlen=queue_size)
        self._wake = threading.Condition()
        self._closing = False
        self._busy = False
        self._in_flight = 0  # events in the batch being sent
        self._kept = False  # closing, and events were left in the queue: the sender ends
        self.counts = {"queued": 0, "sent": 0, "rejected": 0, "dropped": 0, "retries": 0}
        self.last_error = ""
        self.last_rejection = ""
        self._held: Optional[Params] = None  # the last good params
        self._held_at = 0.0
        self._held_until = 0.0  # the record's valid_until (POSIX seconds)
        self._fetch: Optional[Future] = None
        self._fetcher = ThreadPoolExecutor(1, thread_name_prefix="learning-params")
        self._sender = threading.Thread(target=self._send_loop, name="learning-sender",
                                        daemon=True)
        self._sender.start()

    # -- collecting -------------------------------------------------------------------------

    def collect_discovery(self, events: Any, format: Optional[str] = None) -> bool:
        """Queue candidates (one event or a list) for `/learning/collect/discovery-data`;
        `format`: a native shape the server's adapters read (`alphastack-4.1`,
        `amc-scan-row`). False when nothing was queued (see `status()`)."""
        return self._collect("discovery", events, format)

    def collect_thesis(self, events: Any, format: Optional[str] = None) -> bool:
        """Queue decisions for `/learning/collect/thesis-decision` (`amc-learning-decision`)."""
        return self._collect("thesis", events, format)

    def collect_trade(self, events: Any, format: Optional[str] = None) -> bool:
        """Queue fills for `/learning/collect/trade-outcome` (`alpaca-trade-update`,
        `alpaca-order`)."""
        return self._collect("trade", events, format)

    def _collect(self, kind: str, events: Any, format: Optional[str]) -> bool:
        try:
            items = events if isinstance(events, list) else [events]
            ready = []
            for item in items:
                if format is None and isinstance(item, dict) and "event_id" not in item:
                    item = {**item, "event_id": str(uuid.uuid4())}  # retries stay idempotent
                json.dumps(item)  # refuse what cannot be sent now, not in the sender
                ready.append(item)
            with self._wake:
                for item in ready:
                    if len(self._queue) == self._queue.maxlen:
                        self.counts["dropped"] += 1  # the deque drops the oldest
                    self._queue.append((ROUTES[kind], format, item))
                    self.counts["queued"] += 1
                self._wake.notify()
            return bool(ready)
        except Exception as exc:  # never raise into the trading side
            self._count("rejected", 1)
            self.last_rejection = f"not queued: {type(exc).__name__}: {exc}"
            return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was sent or refused; False at the timeout."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to `timeout`), then stop the threads."""
        self.flush(timeout)
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        self._sender.join(timeout)
        self._fetcher.shutdown(wait=False)

    def _next_batch(self) -> Optional[List[Tuple[str, Optional[str], Any]]]:
        with self._wake:
            while not self._queue and not self._closing:
                self._wake.wait(0.5)
            if not self._queue or self._kept:
                return None
            route, format, _ = self._queue[0]
            batch: List[Tuple[str, Optional[str], Any]] = []
            while (self._queue and len(batch) < self.batch_size
                   and self._queue[0][:2] == (route, format)):
                batch.append(self._queue.popleft())
            self._busy, self._in_flight = True, len(batch)
            return batch

    def _send_loop(self) -> None:
        backoff = 0.0
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                backoff = self._send(batch, backoff)
            except Exception as exc:  # pragma: no cover - a bug here must not kill the thread
                self.last_error = f"sender: {type(exc).__name__}: {exc}"
            finally:
                with self._wake:
                    self._busy, self._in_flight = False, 0
                    self._wake.notify_all()

    def _send(self, batch: List[Tuple[str, Optional[str], Any]], backoff: float) -> float:
        """Post one batch until it is taken or refused; returns the back-off to carry on."""
        route, format, _ = batch[0]
        path = f"/learning/collect/{route}" + (f"?format={format}" if format else "")
        tried = False
        while True:
            wait = max(self.send_breaker.wait(), backoff)
            if self._closing and (tried or wait > 0):  # what was not taken stays queued
                self._requeue(batch)
                self._kept = True  # and the sender stops: no second try while closing
                return backoff
            if wait > 0:
                with self._wake:
                    self._wake.wait(wait)  # close() wakes it early
                continue
            if not self.send_breaker.allow():  # a trial is under way: wait, do not spin
                backoff = min(self.max_backoff_s, max(0.05, backoff))
                continue
            tried = True
            answer = self._request("POST", path, [item for _, _, item in batch],
                                   self.send_timeout_s)
            failed = answer.status == 0 or answer.status in RETRIED
            (self.send_breaker.failure if failed else self.send_breaker.success)()
            if 200 <= answer.status < 300:
                self._count("sent", len(batch))
                return 0.0
            if answer.status in (413, 422) and len(batch) > 1:  # halves: the good events go,
                # the bad ones are found (the server takes all of a batch or none of it)
                half = len(batch) // 2
                backoff = self._send(batch[:half], backoff)
                return self._send(batch[half:], backoff)
            if not failed:  # refused for what it is: sending it again cannot help
                self._count("rejected", len(batch))
                self.last_rejection = f"{answer.status}: {answer.error}"
                log.warning("learning: %d events refused: %s", len(batch), self.last_rejection)
                return 0.0
            self._count("retries", 1)
            self.last_error = answer.error
            backoff = min(self.max_backoff_s, max(0.1, backoff * 2))
            if answer.retry_after is not None:
                backoff = min(self.max_backoff_s, max(backoff, answer.retry_after))

    def _count(self, name: str, n: int) -> None:
        with self._wake:
            self.counts[name] += n

    def _requeue(self, batch: List[Tuple[str, Optional[str], Any]]) -> None:
        with self._wake:
            for entry in reversed(batch):
                if len(self._queue) == self._queue.maxlen:
                    self.counts["dropped"] += 1
                    continue
                self._queue.appendleft(entry)

    # -- reading params ---------------------------------------------------------------------

    def get_params(self) -> Params:
        """The params to trade with now, within `timeout`; never raises. Held params
        younger than `params_max_age_s` are returned at once; older ones are asked for
        again, waiting at most `timeout` (a question still unanswered from before is not
        waited for twice)."""
        try:
            held = self._held
            if held is not None and time.monotonic() - self._held_at < self.params_max_age_s:
                return self._current(held)
            return self._ask(self.timeout)
        except Exception as exc:  # pragma: no cover - the promise is "never raises"
            return Params(self._fallback(), "fallback", f"client error: {exc!r}")

    def refresh(self, timeout: float = 5.0) -> Params:
        """Ask the server now and wait up to `timeout` for the answer (at start-up, where
        a few seconds are affordable); then as `get_params()`. Never raises."""
        try:
            return self._ask(timeout, wait_in_flight=True)
        except Exception as exc:  # pragma: no cover - the promise is "never raises"
            return Params(self._fallback(), "fallback", f"client error: {exc!r}")

    def _ask(self, timeout: float, wait_in_flight: bool = False) -> Params:
        fetch = self._fetch
        if fetch is None or fetch.done():
            fetch = self._fetch = (self._fetcher.submit(self._refresh)
                                   if self.read_breaker.allow() else None)
        elif not wait_in_flight:
            fetch = None  # asked before and still unanswered: do not wait again
        if fetch is not None:
            with contextlib.suppress(Exception):  # slow or failed: held, or the fallback
                fetch.result(timeout)
        held = self._held
        if held is not None:
            return self._current(held)
        return Params(self._fallback(), "fallback", self.last_error or "no params from the "
                      "server yet")

    def _current(self, held: Params) -> Params:
        if held.source == "published" and time.time() >= self._held_until:
            return Params(self._fallback(), "fallback",
                          f"version {held.version} expired; the server cannot be asked: "
                          f"{self.last_error or 'no answer'}")
        fresh = time.monotonic() - self._held_at < self.params_max_age_s
        if fresh or held.source != "published":
            return held
        return held._replace(source="last_good",
                             reason=f"the server cannot be asked ({self.last_error}); "
                                    f"version {held.version} is still valid")

    def _fallback(self) -> Dict[str, Any]:
        """A copy of the fallback: a caller may change what it is given."""
        return json.loads(json.dumps(self._fallback_params))

    def _refresh(self) -> None:
        query = (("model=" + urllib.parse.quote(self.scoring_model)) if self.scoring_model
                 else ("name=" + urllib.parse.quote(self.params_name)))
        answer = self._request("GET", "/learning/intelligence/adaptive-params?" + query,
                               None, 5.0)
        failed = answer.status == 0 or answer.status in RETRIED
        (self.read_breaker.failure if failed else self.read_breaker.success)()
        if answer.status != 200 or not isinstance(answer.body, dict):
            self.last_error = f"adaptive-params: {answer.status or 'no answer'}: {answer.error}"
            return
        try:
            params, refused = self._check(answer.body)
        except Exception as exc:  # a body that is not the API's: refused like a bad one
            params, refused = None, f"invalid: {type(exc).__name__}: {exc}"
        if refused:
            self.last_rejection = refused
            self.last_error = f"adaptive-params refused: {refused}"
            log.warning("learning: params refused: %s", refused)
            return
        if params is not None:
            self._held, self._held_at = params, time.monotonic()

    def _check(self, body: Dict[str, Any]) -> Tuple[Optional[Params], str]:
        """The params in an adaptive-params answer, or why they are refused."""
        if body.get("source") != "published":
            return Params(self._fallback(), "fallback", f"server: {body.get('reason')}"), ""
        if not self.verifying:
            other = self._other_model(body.get("params"))
            if other:
                return None, other
            self._held_until = _posix(body.get("record"), default=time.time() + 3600)
            return Params(body["params"], "published", "live (trusting the server's check)",
                          body.get("version"), body.get("mode")), ""
        record = str(body.get("record", "")).encode("utf-8")
        key = self._keys.get(str(body.get("key_id")))
        if key is None:
            return None, (f"unknown_key: signed by key {body.get('key_id')!r}, not one of "
                          f"{', '.join(sorted(self._keys))}")
        try:
            key.verify(base64.b64decode(str(body.get("signature")), validate=True), record)
        except (InvalidSignature, binascii.Error, ValueError):
            return None, "bad_signature: the record is not what the key signed (tampered)"
        message = json.loads(record)
        other = self._other_model(message.get("params"))
        if other:
            return None, other
        held = self._held
        if held is not None and held.version is not None and message["version"] < held.version:
            return None, f"stale: version {message['version']} after {held.version}"
        until = _posix(record.decode("utf-8"), default=0.0)
        if until <= time.time():
            return None, f"expired: version {message['version']}"
        self._held_until = until
        return Params(message["params"], "published", f"{message['mode']} (signature checked)",
                      message["version"], message["mode"], True), ""

    def _other_model(self, params: Any, wanted: Optional[str] = None,
                     kinds: Tuple[str, ...] = ("tiered", "component")) -> str:
        """Why `params` are not for the model `wanted` (default: this client's) ("" when
        they are)."""
        wanted = wanted or self.scoring_model
        if not isinstance(params, dict):
            return "invalid: no params"
        if wanted is None:
            return "wrong_model: a scoring model's params" if params.get("kind") else ""
        model = params.get("model") or {}
        found = f"{model.get('name')} {model.get('version')}"
        if params.get("kind") not in kinds or found != wanted:
            return f"wrong_model: params of {found}, not {wanted}"
        return ""

    # -- the scanner's own file ---------------------------------------------------------------

    def write_scanner_weights(self, path: Any, model: str = "amc-scanner 3.3.1",
                              timeout: float = 10.0) -> Written:
        """Replace the points file a scanner loads (`scanner_weights.json` at `path`) with
        `model`'s live learned table; never raises. The table comes from the signed params
        record (checked here with `public_keys` and `cryptography`, else the server's
        check is trusted), goes into a copy of the file it replaces — only its tier
        values change, a penalty stays a penalty — and must keep that file's keys and
        value types at every level. Written atomically (a temporary file beside it,
        fsync, rename). On any failure the old file stays as it was, and `reason` says
        why."""
        target = Path(path)
        try:
            return self._write_weights(target, model, timeout)
        except Exception as exc:  # pragma: no cover - the promise is "never raises"
            return Written(False, str(target), None, f"client error: {exc!r}")

    def _write_weights(self, target: Path, model: str, timeout: float) -> Written:
        def refused(reason: str) -> Written:
            return Written(False, str(target), None, reason + "; the file is left as it was")

        try:
            old_text = target.read_text(encoding="utf-8")
            old = json.loads(old_text)
        except (OSError, ValueError) as exc:
            return refused(f"the file to replace cannot be read as JSON ({exc})")
        if not isinstance(old, dict):
            return refused("the file to replace holds no JSON object")
        answer = self._request(
            "GET", "/learning/intelligence/adaptive-params?model=" + urllib.parse.quote(model)
            + "&format=amc-scanner-weights", None, timeout)
        if answer.status != 200 or not isinstance(answer.body, dict):
            what = "the engine did not answer" if answer.status == 0 else "the engine refused"
            return refused(f"{what}: {answer.error}")
        body = answer.body
        if body.get("source") != "published":
            return refused(f"nothing learned is live for {model} ({body.get('reason')})")
        if self.verifying:
            record = str(body.get("record", "")).encode("utf-8")
            key = self._keys.get(str(body.get("key_id")))
            if key is None:
                return refused(f"unknown_key: signed by key {body.get('key_id')!r}")
            try:
                key.verify(base64.b64decode(str(body.get("signature")), validate=True), record)
            except (InvalidSignature, binascii.Error, ValueError):
                return refused("bad_signature: the record is not what the key signed")
            params = json.loads(record)["params"]
            if _posix(record.decode("utf-8"), default=0.0) <= time.time():
                return refused("expired: the live version's validity has passed")
        else:
            params = body.get("params")
        other = self._other_model(params, model, ("tiered",))
        if other:
            return refused(other)
        new, problem = _with_table(old, params.get("tables") or {}, body.get("file") or {})
        if problem:
            return refused(problem)
        differs = structure_differs(old, new)
        if differs:
            return refused(f"structure: {differs}")
        if new == old:
            return Written(False, str(target), str(old.get("version")),
                           f"already holds version {body.get('version')}'s table")
        _atomic_write(target, json.dumps(new, indent=2, ensure_ascii=False) + "\n")
        return Written(True, str(target), str(new.get("version")),
                       f"params version {body.get('version')} written"
                       + ("" if self.verifying else " (trusting the server's check)"))

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def verifying(self) -> bool:
        return Ed25519PublicKey is not None and bool(self._keys)

    def _add_key(self, text: str) -> None:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
            if len(raw) != 32:
                raise ValueError("not 32 bytes")
        except (binascii.Error, ValueError) as exc:
            self._key_error = f"a public key is not base64 of 32 bytes ({exc}): ignored"
            return
        if Ed25519PublicKey is not None:
            self._keys[hashlib.sha256(raw).hexdigest()[:16]] = (
                Ed25519PublicKey.from_public_bytes(raw))

    def status(self) -> Dict[str, Any]:
        if Ed25519PublicKey is None:
            verification = ("trusting the server's check: `cryptography` is not installed "
                            "(pip install 'amc-learning-client[verify]')")
        elif not self._keys:
            verification = "trusting the server's check: no public keys given"
        else:
            verification = f"checking Ed25519 signatures (keys {', '.join(sorted(self._keys))})"
        return {"queue": len(self._queue), "in_flight": self._in_flight, **self.counts,
                "send_breaker": self.send_breaker.state, "read_breaker": self.read_breaker.state,
                "verification": verification, "key_error": self._key_error,
                "last_error": self.last_error, "last_rejection": self.last_rejection,
                "params_version": self._held.version if self._held else None}

    def _request(self, method: str, path: str, body: Any, timeout: float) -> _Answer:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return _Answer(response.status, json.loads(response.read() or b"null"), None, "")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"null")
            except ValueError:
                detail = None
            retry = exc.headers.get("Retry-After") if exc.headers else None
            return _Answer(exc.code, detail, _seconds(retry), _detail(exc.code, detail))
        except Exception as exc:  # refused, reset, timed out, not JSON
            return _Answer(0, None, None, f"{type(exc).__name__}: {exc}")


def _with_table(old: Dict[str, Any], tables: Dict[str, Any],
                file: Dict[str, Any]) -> Tuple[Dict[str, Any], str]:
    """`old` with each tier value it has taken from `tables` (a penalty stays at least
    -1), and, when a value changed, the engine's `version`, `last_updated` and newest
    `update_history` entry (`file`); or why not."""
    new = json.loads(json.dumps(old))
    for factor, tiers in new.items():
        if not isinstance(tiers, dict) or not isinstance(tables.get(factor), dict):
            continue
        for tier, points in tables[factor].items():
            if tier not in tiers:
                continue
            if not isinstance(points, int) or isinstance(points, bool):
                return old, f"structure: {factor}.{tier} is {points!r}, not whole points"
            current = tiers[tier]
            tiers[tier] = min(points, -1) if isinstance(current, int) and current < 0 \
                else points
    if new == old:
        return new, ""
    history = file.get("update_history")
    for key in ("version", "last_updated"):
        if key in old and key in file:
            new[key] = file[key]
    if isinstance(old.get("update_history"), list) and isinstance(history, list) and history:
        new["update_history"] = old["update_history"] + history[-1:]
    return new, ""


def structure_differs(old: Any, new: Any, where: str = "") -> str:
    """Where `new` does not have `old`'s keys at every level or its value types ("" when
    it has): the engine's `adapters.scanner_weights.structure_differs`, kept equal by
    tests/unit/test_client.py."""
    if type(old) is not type(new):
        return f"{where or 'the file'}: {type(old).__name__} became {type(new).__name__}"
    if isinstance(old, dict):
        if set(old) != set(new):
            return f"{where or 'the file'}: keys differ"
        for key in old:
            found = structure_differs(old[key], new[key], f"{where}.{key}" if where else key)
            if found:
                return found
    return ""


def _atomic_write(target: Path, text: str) -> None:
    """Write `text` to `target` so a reader sees the old file or the new one, never half:
    a temporary file in the same folder, fsync, rename, fsync of the folder."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
    with contextlib.suppress(OSError):  # a folder cannot be opened everywhere
        folder = os.open(str(target.parent), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _seconds(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _detail(code: int, body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else body
    return f"HTTP {code}: {json.dumps(detail)[:500]}"


def _posix(record: Any, default: float) -> float:
    """The record's valid_until as POSIX seconds (`default` when it has none)."""
    try:
        until = json.loads(record)["valid_until"]
        return datetime.fromisoformat(until.replace("Z", "+00:00")).astimezone(
            timezone.utc).timestamp()
    except Exception:
        return default
