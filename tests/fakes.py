"""A database in memory with the store's unit-of-work interface, for unit tests of the use
cases (cosmicpython's FakeUnitOfWork): the same repositories, no PostgreSQL.

A unit of work works on a copy of the state and puts it back only when its block ends
without an exception, so a test sees exactly what a rollback would leave.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl

from amc_learning.intelligence.prices import Tracked
from amc_learning.intelligence.rollout import Version, versions_of


@dataclass
class State:
    decisions: pl.DataFrame = field(default_factory=pl.DataFrame)
    index: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(
        schema={"session": pl.Date, "close": pl.Float64, "vix": pl.Float64}))
    sessions: list[date] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    cycles: dict[tuple[str, date, str], dict[str, Any]] = field(default_factory=dict)
    results: list[Any] = field(default_factory=list)
    tracked: list[Tracked] = field(default_factory=list)
    bars: dict[str, set[date]] = field(default_factory=dict)
    notes: dict[tuple[str, date], str] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    #: (model name, version) -> its candidates as `Frames.scored` gives them
    scored: dict[tuple[str, str], pl.DataFrame] = field(default_factory=dict)


class Frames:
    def __init__(self, state: State) -> None:
        self.state = state

    def decisions(self, horizons: tuple[int, int, int], horizon: int | None = None
                  ) -> pl.DataFrame:
        return self.state.decisions

    def candidates(self, as_of: date, days: int = 30) -> pl.DataFrame:
        return pl.DataFrame(schema={"producer": pl.Utf8, "scoring_model": pl.Utf8,
                                    "raw_score": pl.Float64, "raw_low": pl.Float64,
                                    "raw_high": pl.Float64})

    def index(self, market: tuple[str, str]) -> pl.DataFrame:
        return self.state.index

    def scored(self, name: str, version: str, horizons: tuple[int, int, int],
               factors: Any = (), components: Any = ()) -> pl.DataFrame:
        return self.state.scored.get((name, version), pl.DataFrame())

    def last_session(self, index_symbol: str) -> date | None:
        return max(self.state.sessions, default=None)


class ParamsHistory:
    #: a test sets it to make the next record_cycle fail half way (after the history rows)
    fail_after_history = False

    def __init__(self, state: State) -> None:
        self.state = state

    def versions(self, name: str) -> list[Version]:
        rows = sorted((r for r in self.state.history if r["name"] == name),
                      key=lambda r: r["version"])
        return versions_of((r["version"], r["mode"], r["as_of"], r["parent"],
                            r["params"].model_dump(mode="json")) for r in rows)

    def cycle_summary(self, kind: str, as_of: date, name: str) -> dict[str, Any] | None:
        return self.state.cycles.get((kind, as_of, name))

    def record_cycle(self, kind: str, as_of: date, name: str, entries: Any,
                     summary: dict[str, Any], scoring_model: str = "native") -> None:
        for e in entries:
            if not any((r["name"], r["version"], r["mode"]) == (name, e["version"], e["mode"])
                       for r in self.state.history):
                self.state.history.append({**e, "name": name, "as_of": as_of, "sent": False,
                                           "scoring_model": scoring_model,
                                           "message": e.get("message")})
        if ParamsHistory.fail_after_history:
            raise RuntimeError("the database refused the cycle's row")
        self.state.cycles[(kind, as_of, name)] = json.loads(json.dumps(summary, default=str))

    def unsent(self) -> list[tuple[str, int, str, str]]:
        return [(r["name"], r["version"], r["mode"], r["message"]) for r in self.state.history
                if r["publish"] and not r["sent"] and r["message"]]

    def mark_sent(self, name: str, version: int, mode: str) -> None:
        for r in self.state.history:
            if (r["name"], r["version"], r["mode"]) == (name, version, mode):
                r["sent"] = True

    def history(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.state.history if r["name"] == name]

    def settled(self, session: date, quiet_s: float) -> bool:
        return True


class Results:
    def __init__(self, state: State) -> None:
        self.state = state

    def store(self, analysis: Any, pattern_type: str = "thesis") -> dict[str, int]:
        self.state.results.append(analysis)
        return {"pattern_performance": len(analysis.patterns)}


class PriceLedger:
    def __init__(self, state: State) -> None:
        self.state = state

    def tracked(self) -> list[Tracked]:
        return list(self.state.tracked)

    def known(self, symbols: Any, since: date, again: bool = False) -> dict[str, set[date]]:
        out: dict[str, set[date]] = {}
        for symbol in symbols:
            days = {d for d in self.state.bars.get(symbol, set()) if d >= since}
            days |= {d for (s, d), state in self.state.notes.items() if s == symbol
                     and d >= since and (state == "published" or not again)}
            if days:
                out[symbol] = days
        return out

    def note(self, provider: str, state: str, rows: Any, reason: str | None = None) -> int:
        rows = list(rows)
        for key in rows:
            if self.state.notes.get(key) != "published":
                self.state.notes[key] = state
        return len(rows)

    def record_run(self, provider: str, started: datetime, finished: datetime,
                   summary: dict[str, Any]) -> None:
        self.state.runs.append({"provider": provider, "finished_at": finished, **summary})

    def last_run(self) -> dict[str, Any] | None:
        return self.state.runs[-1] if self.state.runs else None


class ScoringModels:
    def all(self) -> list[Any]:
        return []

    def get(self, name: str, version: str) -> Any:
        return None


class FakeUnitOfWork:
    def __init__(self, state: State) -> None:
        self.models = ScoringModels()
        self.frames = Frames(state)
        self.params = ParamsHistory(state)
        self.results = Results(state)
        self.prices = PriceLedger(state)


class FakeDatabase:
    """`Database`'s interface over a `State`; counts its units of work."""

    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self.units = 0
        self.rolled_back = 0

    @contextmanager
    def unit_of_work(self, *, snapshot: bool = False) -> Iterator[FakeUnitOfWork]:
        self.units += 1
        frames = {id(self.state.decisions): self.state.decisions,  # read only: not copied
                  id(self.state.index): self.state.index}
        working = copy.deepcopy(self.state, frames)
        try:
            yield FakeUnitOfWork(working)
        except BaseException:
            self.rolled_back += 1
            raise
        self.state.__dict__.update(working.__dict__)

    def close(self) -> None:
        pass


@dataclass
class Sent:
    topic: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]] | None


class FakeProducer:
    """An aiokafka producer's start/send_and_wait/stop, keeping what it was given."""

    def __init__(self, kafka: FakeKafka) -> None:
        self.kafka = kafka

    async def start(self) -> None:
        if self.kafka.down:
            raise ConnectionError("the broker is down (a fake one)")
        self.kafka.started += 1

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None,
                            headers: list[tuple[str, bytes]] | None = None) -> None:
        self.kafka.sent.append(Sent(topic, value, key, headers))

    async def stop(self) -> None:
        pass


class FakeKafka:
    """`streams.kafka.Kafka`'s interface: its producers record what they send."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.sent: list[Sent] = []
        self.started = 0
        self.down = False

    def producer(self, **overrides: Any) -> FakeProducer:
        return FakeProducer(self)

    def topic(self, base: str) -> str:
        return self.prefix + base
