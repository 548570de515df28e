"""`prices sync`: keep every tracked decision supplied with daily bars from a provider;
`prices import`: bars from a file (`import_bars`).

1. Plan (`plan`): the tracked decisions and candidates (`PriceLedger.tracked`), their
   windows of sessions (`intelligence.prices.windows`, with the index and the VIX), and
   the sessions neither stored nor noted (`missing`): nothing else is asked for, so a
   second sync asks for nothing (`again`: but for the sessions noted as having no bar or
   refused).
2. Per symbol: the bars as traded and split-adjusted from the provider, the splits between
   them, the events. Rate limits and server errors are retried, waiting what the provider
   asked (`Retry-After`) or backing off, every wait counted; a refusal that asking again
   cannot change (an unknown symbol, no entitlement) is reported for that symbol and the
   sync goes on. Keys Alpaca refuses, or a provider that does not answer at all, end the
   sync at once, without asking for the rest (the next sync starts where it stopped).
3. The bars go through one `LearningPublisher`, like any producer's events; the sessions
   published and those with no bar are written to the ledger every 50 symbols, once the
   broker has acknowledged every bar before. The summary is stored for the report.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from amc_learning.adapters import bar_files
from amc_learning.intelligence import calendar
from amc_learning.intelligence.prices import (
    RawBar,
    bar_events,
    missing,
    split_ratios,
    windows,
)
from amc_learning.market.providers import Provider, ProviderError
from amc_learning.service.deps import Deps
from amc_learning.settings import Settings
from amc_learning.store.database import UnitOfWork
from amc_learning.streams.publisher import LearningPublisher

T = TypeVar("T")
#: Sessions before an entry the tracker reads (its volume baseline).
BASELINE_SESSIONS = 20


class SyncStopped(Exception):
    """The sync cannot go on: the keys were refused, or the provider does not answer.
    What was published before is kept and written down."""


@dataclass
class Plan:
    last: date  # the newest closed session
    spans: dict[str, tuple[date, date]]
    missing: dict[str, list[date]]
    have: dict[str, set[date]]

    def waiting(self, now: datetime) -> list[dict[str, Any]]:
        """Per symbol waiting for bars: how many sessions and since when (the close of the
        oldest missing session), longest wait first."""
        rows = [{"symbol": s, "sessions": len(days), "oldest": days[0],
                 "waiting_h": round((now - calendar.close_of(days[0])).total_seconds() / 3600,
                                    1)}
                for s, days in self.missing.items()]
        return sorted(rows, key=lambda r: -r["waiting_h"])


@dataclass
class Summary:
    provider: str
    symbols: int = 0
    sessions_missing: int = 0
    requests: int = 0
    published: int = 0
    splits: dict[str, dict[str, float]] = field(default_factory=dict)
    no_bar: dict[str, list[str]] = field(default_factory=dict)
    refused_bars: dict[str, dict[str, str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    not_served: dict[str, str] = field(default_factory=dict)
    throttled: int = 0
    retries: int = 0
    waited_s: float = 0.0
    regimes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "waited_s": round(self.waited_s, 3)}


def plan(uow: UnitOfWork, settings: Settings, now: datetime, since: date | None = None,
         again: bool = False) -> Plan:
    """What a sync as of `now` asks for (the module docstring's first step)."""
    last = calendar.last_closed(now)
    market = [s for s in settings.market if s]
    spans = windows(uow.prices.tracked(), horizon=max(settings.horizons),
                    baseline=BASELINE_SESSIONS, last=last, offset=calendar.offset,
                    market=market, since=since)
    earliest = min((a for a, _ in spans.values()), default=last)
    have = uow.prices.known(spans, calendar.offset(earliest, -1), again)
    return Plan(last, spans, missing(spans, have, calendar.sessions), have)


def waiting(uow: UnitOfWork, settings: Settings, now: datetime,
            as_of: date | None = None) -> list[dict[str, Any]]:
    """The symbols waiting for bars of sessions up to `as_of` (default: the last closed
    one before `now`), for the report; none where no sync ever ran (the bridge is not in
    use: a simulation publishes its own bars)."""
    if uow.prices.last_run() is None:
        return []
    return plan(uow, settings, calendar.close_of(as_of) if as_of else now).waiting(now)


def sync(deps: Deps, provider: Provider, *, since: date | None = None,
         now: datetime | None = None, again: bool = False,
         say: Callable[[str], None] = lambda _: None,
         sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """One sync (see the module docstring); its summary."""
    settings, db = deps.settings, deps.db
    started = deps.clock()
    with db.unit_of_work(snapshot=True) as uow:
        todo = plan(uow, settings, now or started, since, again)
    summary = Summary(provider.name, symbols=len(todo.missing),
                      sessions_missing=sum(len(d) for d in todo.missing.values()))
    say(f"{summary.symbols} symbols need {summary.sessions_missing} sessions of bars "
        f"(newest closed session {todo.last})")
    publisher = LearningPublisher.from_settings(settings).start()
    published: list[tuple[str, date]] = []
    none: list[tuple[str, date]] = []

    def acknowledged() -> None:  # written down only once the broker has every bar
        if published and not publisher.flush(timeout=120):
            raise TimeoutError("the broker stopped acknowledging bars (waited 120 s)")
        with db.unit_of_work() as uow:
            summary.published += uow.prices.note(provider.name, "published", published)
            uow.prices.note(provider.name, "no_bar", none)
        published.clear()
        none.clear()

    try:
        for i, (symbol, wanted) in enumerate(todo.missing.items(), start=1):
            why_not = provider.serves(symbol)
            if why_not is not None:
                summary.not_served[symbol] = why_not
                continue
            try:
                events, empty = _symbol(settings, provider, symbol, wanted, todo, summary,
                                        sleep)
            except ProviderError as exc:
                if provider.name == "alpaca" and exc.status in (401, 403):
                    raise SyncStopped(f"Alpaca refused the keys ({exc.status}: {exc})") \
                        from None
                if exc.status is None:  # unreachable: no other symbol would fare better
                    acknowledged()
                    raise SyncStopped(f"{provider.name} did not answer {symbol}'s request "
                                      f"{settings.prices_retries + 1} times ({exc})") from None
                summary.failed[symbol] = f"{exc.status}: {exc}"
                say(f"  {symbol}: failed ({summary.failed[symbol]})")
                if not exc.transient:  # not asked again, but by `prices sync --again`
                    with db.unit_of_work() as uow:
                        uow.prices.note(provider.name, "refused",
                                        [(symbol, d) for d in wanted], summary.failed[symbol])
                continue
            for event in events:
                publisher.publish(event)
            published.extend((symbol, e.session) for e in events)
            none.extend((symbol, d) for d in empty)
            if i % 50 == 0 or i == len(todo.missing):
                acknowledged()
                say(f"  {i}/{len(todo.missing)} symbols, {summary.published:,} bars "
                    f"published, {summary.waited_s:.1f} s waited for the provider")
        acknowledged()
    finally:
        publisher.close()
    if publisher.stats.dropped or publisher.stats.invalid:
        raise RuntimeError(f"the publisher lost bars: {publisher.stats}")
    summary.regimes = _regimes(settings, summary)
    with db.unit_of_work() as uow:
        uow.prices.record_run(provider.name, started, deps.clock(), summary.as_dict())
    return summary.as_dict()


def _symbol(settings: Settings, provider: Provider, symbol: str, wanted: list[date],
            todo: Plan, summary: Summary, sleep: Callable[[float], None]) -> tuple[list[Any],
                                                                            list[date]]:
    """The events of one symbol's missing sessions, and the sessions it has no bar for."""
    # one session before the first missing one, when known: a split between the two shows
    before = calendar.offset(wanted[0], -1)
    start = before if before in todo.have.get(symbol, set()) else wanted[0]
    traded: list[RawBar] = _ask(settings, summary, sleep,
                                lambda: provider.bars(symbol, start, wanted[-1], False))
    adjusted = traded if symbol.startswith("^") else _ask(
        settings, summary, sleep, lambda: provider.bars(symbol, start, wanted[-1], True))
    splits = split_ratios(traded, adjusted)
    events, none, refused = bar_events(
        symbol, wanted, traded, splits, producer=f"market-data-{provider.name}",
        closes=calendar.close_of, pending=todo.last)
    if splits:
        summary.splits[symbol] = {str(d): r for d, r in splits.items()}
    if none:
        summary.no_bar[symbol] = [str(d) for d in none]
    if refused:
        summary.refused_bars[symbol] = {str(d): why for d, why in refused.items()}
    return events, none


def _ask(settings: Settings, summary: Summary, sleep: Callable[[float], None],
         call: Callable[[], T]) -> T:
    """`call`, again after a transient refusal: the wait asked for, else a doubling one."""
    untold = 0  # refusals that did not say how long to wait: the back-off doubles
    for attempt in range(settings.prices_retries + 1):
        summary.requests += 1
        try:
            return call()
        except ProviderError as exc:
            if not exc.transient or attempt == settings.prices_retries:
                raise
            wait = exc.retry_after
            if wait is None:
                wait, untold = 0.5 * 2 ** untold, untold + 1
            wait = min(wait, settings.prices_max_wait_s)
            summary.throttled += exc.status == 429
            summary.retries += 1
            summary.waited_s += wait
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _regimes(settings: Settings, summary: Summary) -> str:
    """What the regime detector reads, in words (for the summary and the report)."""
    index, vix = settings.index_symbol, settings.vix_symbol
    if index in summary.not_served or index in summary.failed:
        why = summary.not_served.get(index) or summary.failed[index]
        return f"no bars for the index {index} ({why}): no regimes until it has some"
    if not vix or vix in summary.not_served or vix in summary.failed:
        return (f"index {index}; volatility from the index's realised volatility"
                + (f" ({vix} has no bars here)" if vix else ""))
    return f"index {index}; volatility from {vix}"


def import_bars(deps: Deps | None, path: Path, *, shape: str | None = None,
                columns: dict[str, str] | None = None,
                say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """`prices import`: the bars of a long or wide file (`adapters.bar_files`), each
    published through the normal topic unless a bar of that symbol and session is stored
    already; every row accounted for. The sessions published are written to the sync's
    ledger, so a later `prices sync` does not ask for them again. Without `deps` (a dry
    run): read and count only."""
    dry_run = deps is None
    read = bar_files.read_bar_file(bar_files.load(path), shape=shape, columns=columns,
                                   sessions=calendar.sessions, closes=calendar.close_of)
    say(f"{path.name}: {read.shape} bars file, {read.rows:,} rows, {len(read.bars):,} bars, "
        f"{len(read.rejected):,} rejected")
    stored: dict[str, set[date]] = {}
    if read.bars and deps is not None:
        with deps.db.unit_of_work(snapshot=True) as uow:
            stored = uow.prices.known({b.symbol for b in read.bars},
                                      min(b.session for b in read.bars), again=True)
    fresh = [b for b in read.bars if b.session not in stored.get(b.symbol, set())]
    summary: dict[str, Any] = {
        "file": str(path), "shape": read.shape, "rows": read.rows, "bars": len(read.bars),
        "symbols": len({b.symbol for b in read.bars}),
        "published": 0, "already_stored": len(read.bars) - len(fresh),
        "rejected": dict(Counter(why for _, why in read.rejected).most_common()),
        "rejected_at": [f"{where}: {why}" for where, why in read.rejected[:20]],
        "splits": {f"{b.symbol} {b.session}": b.split_ratio for b in read.bars
                   if b.split_ratio}, "notes": read.notes, "dry_run": dry_run}
    if deps is None or not fresh:
        return summary
    publisher = LearningPublisher.from_settings(deps.settings).start()
    try:
        for i, bar in enumerate(fresh, start=1):
            publisher.publish(bar)
            if i % 5000 == 0:
                say(f"  {i:,}/{len(fresh):,} bars sent")
        if not publisher.flush(timeout=120):
            raise TimeoutError("the broker stopped acknowledging bars (waited 120 s)")
    finally:
        publisher.close()
    if publisher.stats.dropped or publisher.stats.invalid:
        raise RuntimeError(f"the publisher lost bars: {publisher.stats}")
    with deps.db.unit_of_work() as uow:
        summary["published"] = uow.prices.note("file", "published",
                                               [(b.symbol, b.session) for b in fresh])
    return summary
