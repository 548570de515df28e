"""The outcome tracker's lost state, rebuilt from what PostgreSQL holds.

The tracker's state lives in the broker (its changelog, `streams.changelog`). When the
broker forgot it — an embedded broker restarted, a changelog deleted — every decision
and never-decided candidate it was following stops advancing, though PostgreSQL holds
everything that state was made of. So before the tracker starts, when its changelog
holds nothing, `rebuild_open_state` asks PostgreSQL for the decisions whose outcome can
still change (`store.tracking`) and, symbol by symbol, publishes their facts again on
the input topics, keyed by symbol as the producers do: each decision's event as it was
received, its fills, and the symbol's bars and catalysts from the first decision's volume
baseline on. The tracker follows them as it followed them the first time: facts are
idempotent and an outcome is a function of the set of its facts, so the outcomes are the
ones an uninterrupted tracker makes (same splits, horizons, excursions). Persist stores
nothing twice (every event keeps its event id). Decisions first, then fills, catalysts
and bars: on one partition, in that order, so a bar never arrives before the decision
that keeps it from retention.

A changelog that holds anything is trusted, never second-guessed: Faust recovers the
state from it, and facts the worker has not read yet are still on the input topics (a
worker killed mid-stream publishes nothing again; decision 019).

Symbol by symbol: memory holds one symbol's facts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from pydantic_core import to_json

from amc_learning.intelligence.tracking import TrackerConfig
from amc_learning.schemas.catalysts import CatalystObserved
from amc_learning.schemas.common import Event
from amc_learning.schemas.prices import PriceBarClosed
from amc_learning.schemas.registry import EVENT_ADAPTER
from amc_learning.schemas.trades import TradeFilled
from amc_learning.service.deps import Deps
from amc_learning.store.database import Database
from amc_learning.streams.changelog import holds_state
from amc_learning.streams.publisher import LearningPublisher


@dataclass
class Rebuilt:
    """What a rebuild found and published."""

    symbols: int = 0  # symbols with an open decision or candidate
    open: int = 0  # open decisions and candidates stored
    held: int = 0  # of them, left to the tracker's changelog (all, or none)
    decisions: int = 0  # open decisions published again
    candidates: int = 0  # open never-decided candidates published again
    facts: int = 0  # every event published (with the bars, fills and catalysts)
    unreadable: dict[str, str] = field(default_factory=dict)  # decision id -> why

    def summary(self) -> str:
        if not self.open:
            return "outcome state: no open decision or candidate is stored; nothing to rebuild"
        if self.held == self.open:
            return (f"outcome state: the changelog holds the tracker's state ({self.open:,} "
                    f"open decisions and candidates of {self.symbols:,} symbols stored); "
                    "nothing to rebuild")
        return (f"outcome state rebuilt from PostgreSQL: the changelog held nothing, so "
                f"{self.decisions:,} open decisions and {self.candidates:,} candidates, on "
                f"{self.symbols:,} symbols, published again with their bars, fills and "
                f"catalysts ({self.facts:,} events)"
                + (f"; {len(self.unreadable):,} stored events no longer valid, left out"
                   if self.unreadable else ""))


def rebuild_open_state(deps: Deps, cfg: TrackerConfig, *,
                       progress: Callable[[int, int], None] = lambda _d, _t: None,
                       ) -> Rebuilt:
    """Publish again the facts of every open decision when the tracker's changelog holds
    nothing (the module's doc); what it found and did. `progress`: told (symbols done,
    symbols)."""
    settings, db = deps.settings, deps.db
    with db.unit_of_work() as uow:
        symbols = uow.tracking.open_symbols(cfg.longest, cfg.max_track_sessions)
    out = Rebuilt(symbols=len(symbols), open=sum(n for _, n in symbols))
    if not symbols:
        return out
    if asyncio.run(holds_state(settings)):
        out.held = out.open
        return out
    publisher = LearningPublisher.from_settings(settings).start()
    try:
        for i, (symbol, _) in enumerate(symbols, start=1):
            facts = _facts(db, cfg, symbol, out)
            for fact in facts:
                publisher.publish(fact)
                out.facts += 1
            if facts and not publisher.flush(timeout=120):
                raise TimeoutError("the broker stopped acknowledging events (waited 120 s)")
            progress(i, len(symbols))
    finally:
        publisher.close()
    if publisher.stats.dropped or publisher.stats.invalid:
        raise RuntimeError(f"the publisher lost events: {publisher.stats}")
    return out


def _facts(db: Database, cfg: TrackerConfig, symbol: str, out: Rebuilt) -> list[Event]:
    """The facts to publish again for `symbol`'s open decisions."""
    with db.unit_of_work() as uow:
        tracking = uow.tracking
        stored = tracking.open_of(symbol, cfg.longest, cfg.max_track_sessions)
        if not stored:
            return []
        events: list[Event] = []
        for row in stored:
            try:
                events.append(EVENT_ADAPTER.validate_json(to_json(row["decision_data"])))
            except ValueError as exc:
                out.unreadable[row["decision_id"]] = " ".join(str(exc).split())[:300]
                continue
            if row["is_synthetic"]:
                out.candidates += 1
            else:
                out.decisions += 1
        since = tracking.sessions_before(symbol, min(r["day"] for r in stored),
                                         cfg.baseline_sessions)
        real = [r["decision_id"] for r in stored if not r["is_synthetic"]]
        events += _fills(tracking.fills(real)) if real else []
        events += _catalysts(tracking.catalysts(symbol, since))
        events += _bars(tracking.bars(symbol, since))
    return events


def _bars(rows: Iterable[dict[str, Any]]) -> list[Event]:
    return [PriceBarClosed(
        event_id=r["event_id"], producer=r["producer"], symbol=r["symbol"],
        session=r["session"], occurred_at=datetime.combine(r["session"], time(21), UTC),
        open=r["open"], high=r["high"], low=r["low"], close=r["close"], volume=r["volume"],
        split_ratio=r["split_ratio"], schema_version=2 if r["split_ratio"] is not None else 1,
    ) for r in rows]


def _fills(rows: Iterable[dict[str, Any]]) -> list[Event]:
    return [TradeFilled(
        event_id=r["event_id"], producer=r["producer"], occurred_at=r["executed_at"],
        schema_version=r["schema_version"], fill_id=r["fill_id"], trade_id=r["trade_id"],
        decision_id=r["decision_id"], symbol=r["symbol"], fill_type=r["fill_type"],
        side=r["side"], quantity=r["quantity"], price=r["price"],
        position_size_pct=r["position_size_pct"], exit_reason=r["exit_reason"],
        order_id=r["order_id"], mode=r["mode"],
    ) for r in rows]


def _catalysts(rows: Iterable[dict[str, Any]]) -> list[Event]:
    return [CatalystObserved(
        event_id=r["event_id"], producer=r["producer"], occurred_at=r["observed_at"],
        symbol=r["symbol"], session=r["session"], kind=r["kind"], headline=r["headline"],
        magnitude=r["magnitude"],
    ) for r in rows]
