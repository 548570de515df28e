"""The market-data bridge against a local server of ours that answers as Alpaca and Polygon
do (`tests/market_stub.py`), on the real broker and PostgreSQL: the bars the tracker needs
and no others, splits that are no -50 %, halts reported and not invented, rate limits
waited out as told, and a second sync that asks for nothing."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from amc_learning.consumers.persist import run_persist
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.entrypoints.supervise import spawn_consumer, stop_processes
from amc_learning.intelligence import calendar
from amc_learning.market.providers import Alpaca, Polygon
from amc_learning.service import prices
from amc_learning.streams.offsets import end_offsets
from tests import factories
from tests.integration.helpers import publish, rows, settle
from tests.integration.test_cli import cli
from tests.market_stub import KEY_ID, POLYGON_KEY, SECRET, Market, serving, walk, with_split

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amc_trader"
NOW = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # every horizon of the history has passed


def planned(settings, now):  # type: ignore[no-untyped-def]
    """What a sync as of `now` would ask for."""
    deps = bootstrap(settings)
    with deps.db.unit_of_work() as uow:
        return prices.plan(uow, deps.settings, now)


def alpaca_settings(settings):  # type: ignore[no-untyped-def]
    """Alpaca has no index data: the regimes read SPY, and realised volatility."""
    return settings.with_overrides(index_symbol="SPY", vix_symbol="")


def market_for(symbols: list[str], start: date, end: date) -> Market:
    days = calendar.sessions(start, end)
    return Market(bars={s: walk(s, days, 5.0 + i % 40, drift=0.002 * (1 + i % 5))
                        for i, s in enumerate(sorted(symbols))}, page_size=25)


def test_an_imported_history_gets_exactly_the_bars_it_needs_and_its_outcomes(settings,
                                                                             tmp_path):
    trades = FIXTURES / "payloads" / "r1_memory_trade_log.json"
    imported = cli(settings, "import", "amc-trader", str(FIXTURES), str(trades))
    assert imported.returncode == 0, imported.stderr[-2000:]
    own = alpaca_settings(settings)
    procs = [spawn_consumer(own, n, own.data_dir / "logs") for n in ("persist", "outcomes")]
    try:
        ends: dict = {}
        for topic in ("discovery", "thesis", "trades"):
            ends |= asyncio.run(end_offsets(own, f"{own.topic_prefix}learning.{topic}.v1"))
        settle(own, ends, procs, timeout_s=180)
        todo = planned(own, NOW)
        symbols = sorted(todo.missing)
        assert "SPY" in symbols and "RIG" in symbols and len(symbols) > 500
        first = min(a for a, _ in todo.spans.values())
        market = market_for(symbols, first - timedelta(days=10), NOW.date())
        # RIG (entered 2026-02-10 at 5.345, never exited) splits 2-for-1 on 2026-02-20;
        # USEG is halted for three sessions; ZZZZ is unknown to the provider
        split_day = date(2026, 2, 20)
        market.bars["RIG"] = with_split(walk("RIG", calendar.sessions(
            first - timedelta(days=10), NOW.date()), 5.345, drift=0.0), split_day, 2.0)
        market.splits["RIG"] = {split_day: 2.0}
        halted = calendar.sessions(date(2026, 3, 9), date(2026, 3, 11))
        for day in halted:
            del market.bars["USEG"][day]
        market.unknown.add(symbols[-1])
        with serving(market) as url:
            provider = Alpaca(KEY_ID, SECRET, url, "iex")
            summary = prices.sync(bootstrap(own), provider, now=NOW)
            asked = market.requests
            again = prices.sync(bootstrap(own), provider, now=NOW)
            asked_again = market.requests - asked
            retried = prices.sync(bootstrap(own), provider, now=NOW, again=True)
        ends = asyncio.run(end_offsets(own, f"{own.topic_prefix}learning.prices.v1"))
        settle(own, ends, procs, timeout_s=240)
    finally:
        stop_processes(*procs)
    url_ = own.database_url

    # exactly the sessions planned, but for the unknown symbol and the halt
    expected = {(s, d) for s, days in todo.missing.items() for d in days
                if s != symbols[-1] and not (s == "USEG" and d in halted)}
    stored = set(rows(url_, "SELECT symbol, session FROM price_bars"))
    assert stored == expected
    assert summary["published"] == len(expected)
    assert summary["failed"] == {symbols[-1]: f"400: invalid symbol: {symbols[-1]}"}
    assert summary["no_bar"] == {"USEG": [str(d) for d in halted]}
    assert summary["splits"] == {"RIG": {str(split_day): 2.0}}
    assert summary["regimes"] == "index SPY; volatility from the index's realised volatility"
    assert (again["symbols"], again["requests"], again["published"]) == (0, 0, 0)
    assert asked > summary["requests"] > 2 * 500  # pages: more answers than calls
    assert asked_again == 0  # the second sync asked the provider nothing
    # --again: the halted sessions and the unknown symbol are asked for, and still nothing
    assert (retried["symbols"], retried["published"]) == (2, 0)
    assert set(retried["failed"]) == {symbols[-1]} and set(retried["no_bar"]) == {"USEG"}

    # every decision and candidate whose horizon passed has its outcome; the split is no loss
    due = rows(url_, "SELECT d.decision_id, o.outcome_type FROM learning_decisions d"
                     " LEFT JOIN learning_outcomes o ON o.decision_id = d.id"
                     " WHERE d.symbol <> %s", symbols[-1])
    assert len(due) > 700
    held = {d for (d,) in rows(url_, "SELECT decision_id FROM learning_trades"
                                     " GROUP BY 1 HAVING NOT bool_or(fill_type = 'EXIT')")}
    assert "amc-scan:RIG:2026-02-10" in held  # entered, never exited: tracked on
    pending = [(d, kind) for d, kind in due
               if kind not in ("matured", "closed") and not (d in held and kind == "open")]
    assert not pending, pending[:5]
    [(seven, thirty)] = rows(url_, "SELECT o.return_7d, o.return_30d FROM learning_outcomes o"
                                   " JOIN learning_decisions d ON d.id = o.decision_id"
                                   " WHERE d.decision_id = 'amc-scan:RIG:2026-02-10'")
    assert seven == pytest.approx(0.0, abs=1e-9) and thirty == pytest.approx(0.0, abs=1e-9)

    # the report says what the bridge did and who waits for bars (held positions: to today)
    page = tmp_path / "report.html"
    made = cli(own, "report", "--out", str(page))
    assert made.returncode == 0, made.stderr[-2000:]
    html = page.read_text()
    assert "Last prices sync" in html and "from alpaca" in html
    assert "index SPY; volatility from the index&#39;s realised volatility" in html
    assert "Symbols waiting for bars" in html and ">RIG<" in html


def _tracked(settings, symbols: list[str], day: date) -> None:  # type: ignore[no-untyped-def]
    events = [factories.thesis(symbol=s, decision_id=f"dec-{s}", entry_price=10.0,
                               occurred_at=datetime.combine(day, datetime.min.time(), UTC)
                               + timedelta(hours=15)) for s in symbols]
    publish(settings, events).close()
    asyncio.run(run_persist(bootstrap(settings), max_records=len(events), idle_exit_s=20))


@pytest.mark.parametrize("name", ["alpaca", "polygon"])
def test_throttling_is_waited_out_and_said(settings, name):
    """Half the answers are 429 (`Retry-After: 1`), one symbol's first is a 500: the sync
    completes, waits as told where the SDK lets it read the header (Alpaca) and backs
    off where it does not (Polygon), and its summary says how long."""
    own = settings.with_overrides(index_symbol="SPY", vix_symbol="")
    day = date(2026, 5, 1)
    _tracked(own, ["AAA", "BBB"], day)
    market = market_for(["AAA", "BBB", "SPY"], day - timedelta(days=60), NOW.date())
    # one page per answer, as a symbol's daily bars are with both providers (Alpaca pages
    # at 10,000 bars, Polygon at 50,000): a 429 in the middle of a paged answer makes
    # the SDK drop the pages before it, and the symbol is asked for again
    market.throttle, market.fail_once, market.page_size = True, {"BBB"}, 1000
    with serving(market) as url:
        provider = (Alpaca(KEY_ID, SECRET, url, "iex") if name == "alpaca"
                    else Polygon(POLYGON_KEY, url))
        started = time.monotonic()
        summary = prices.sync(bootstrap(own), provider, now=NOW)
        took = time.monotonic() - started
    assert summary["failed"] == {} and summary["published"] > 3 * 40
    assert summary["throttled"] == market.throttled >= 3
    assert summary["retries"] == market.throttled + 1  # and the 500, once
    if name == "alpaca":  # as told: one second per 429, and half a second after the 500
        assert summary["waited_s"] == pytest.approx(market.throttled * 1.0 + 0.5)
    else:  # not told: half a second, doubling while the same request keeps failing
        assert summary["waited_s"] >= 0.5 * (market.throttled + 1)
    assert took >= summary["waited_s"]  # it really waited


def test_holidays_are_never_missing_and_keys_refused_end_the_sync_at_once(settings):
    own = settings.with_overrides(index_symbol="SPY", vix_symbol="")
    day = date(2026, 6, 26)  # its window spans Juneteenth (06-19) and July 3 (observed)
    _tracked(own, ["HOL"], day)
    todo = planned(own, datetime(2026, 7, 10, 22, tzinfo=UTC))
    assert date(2026, 6, 19) not in todo.missing["HOL"]
    assert date(2026, 7, 3) not in todo.missing["HOL"]
    assert todo.missing["HOL"][-1] == date(2026, 7, 10)
    market = market_for(["HOL", "SPY"], day - timedelta(days=40), date(2026, 7, 10))
    with serving(market) as url:
        refused = cli(own.with_overrides(alpaca_key_id="wrong", alpaca_secret_key="wrong",
                                         alpaca_data_url=url), "prices", "sync")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "Alpaca refused the keys (401" in refused.stderr and "Traceback" not in refused.stderr
    assert market.requests == 1  # not once per symbol
    missing_key = cli(own, "prices", "sync", "--provider", "polygon")
    assert missing_key.returncode == 2 and "LEARNING_POLYGON_API_KEY" in missing_key.stderr
    listed = cli(own, "prices", "plan")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "HOL" in json.loads(listed.stdout.strip().splitlines()[-1])["missing"]


def test_the_prices_process_syncs_and_an_unreachable_provider_only_degrades_it(settings,
                                                                             tmp_path):
    from amc_learning.entrypoints.infra import free_port
    from amc_learning.entrypoints.run import stop_processes as stop
    from amc_learning.entrypoints.status import scrape, total
    from tests.integration.helpers import wait_for
    from tests.integration.test_ops import healthz, start

    own = settings.with_overrides(index_symbol="SPY", vix_symbol="", prices_poll_s=1.0,
                                  alpaca_key_id=KEY_ID, alpaca_secret_key=SECRET)
    _tracked(own, ["AAA"], date(2026, 5, 1))
    dead = own.with_overrides(alpaca_data_url=f"http://127.0.0.1:{free_port()}",
                              prices_retries=1)
    proc, url = start(dead, "prices", tmp_path / "dead.log")
    try:
        wait_for(lambda: healthz(url)["status"] == "degraded", "a degraded prices process", 90)
        wait_for(lambda: total(scrape(url), "learning_prices_sync_failures_total") >= 2,
                 "a second try at the next poll", 30)
        assert proc.poll() is None  # alive: it tries again, nothing else is touched
        detail = healthz(url)["why"]
        assert "last sync failed" in detail and "secret" not in detail.lower()
    finally:
        stop(proc)
    today = datetime.now(UTC).date()
    market = market_for(["AAA", "SPY"], date(2026, 3, 1), today)
    with serving(market) as base:
        proc, url = start(own.with_overrides(alpaca_data_url=base), "prices",
                          tmp_path / "live.log")
        try:
            wait_for(lambda: healthz(url)["why"].startswith("synced through"),
                     "a sync", 120)
            metrics = scrape(url)
        finally:
            stop(proc)
    assert total(metrics, "learning_prices_bars_published_total") > 100
    assert rows(own.database_url, "SELECT count(*) FROM price_sync WHERE state = 'published'"
                                  " AND symbol = 'AAA'")[0][0] >= 40


def test_polygon_pages_and_an_index_the_plan_does_not_include(settings):
    """Polygon's `next_url` pages, and its indices behind a plan: ^IXIC is refused (403),
    written down with the reason, and the summary says the regimes have no index."""
    day = date(2026, 5, 1)
    _tracked(settings, ["AAA"], day)  # the default index ^IXIC and ^VIX
    market = market_for(["AAA"], day - timedelta(days=60), NOW.date())
    market.page_size = 4  # about a dozen pages per answer
    with serving(market) as url:
        summary = prices.sync(bootstrap(settings), Polygon(POLYGON_KEY, url), now=NOW)
        again = prices.sync(bootstrap(settings), Polygon(POLYGON_KEY, url), now=NOW)
    sessions = len(calendar.sessions(calendar.offset(day, -20), calendar.offset(day, 30)))
    assert summary["published"] == sessions and market.requests > 2 * sessions / 4
    assert set(summary["failed"]) == {"^IXIC", "^VIX"}
    assert "not entitled" in summary["failed"]["^IXIC"]
    assert summary["regimes"].startswith("no bars for the index ^IXIC")
    assert (again["symbols"], again["requests"]) == (0, 0)
