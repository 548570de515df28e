"""Shadow → canary → live, and rollback: which parameter versions may trade.

A new version always starts in shadow. Each cycle judges the versions in flight on the
candidates decided since the shadow began whose outcomes are now complete: the
per-session P&L of the version's trading rule against the incumbent's (the live version,
or the fallback defaults) on the same candidates (`book.Book`). Both are
counterfactual, so a shadow is judged without ever trading.

* promotion: the version's per-session Sharpe ratio beats the incumbent's on the same
  sessions in a paired one-sided t (`stats.sharpe_gain_test`: every `horizon`-th
  session, so the outcomes compared do not overlap; each rule's P&L over the market
  divided by the spread of its book, market and all: decision 018) after at least
  `min_sessions`:
  shadow → canary; a canary goes live when, `canary_sessions` later, the test still
  passes. The judge looks every day, so the level a look needs (`promotion_level`) is
  calibrated by simulation: a version that earns no more than its incumbent goes live
  with probability at most 1 − `promote_at` over all its looks (from `min_sessions` to
  `max_sessions`, the canary's second pass, the stop when it is worse). Versions are
  judged one at a time, each on sessions after it was issued, so no version shares
  evidence with another and the level does not shrink with the number tried (decision
  011).
* rejection: the test says it is worse (P(better) ≤ `reject_at`); or, from
  `futile_after` sessions on, it is unlikely to be better (P(better) ≤ `futile_at`: a
  version that does not earn more does not hold later fits back for the whole window);
  or nothing is decided after `max_sessions`. A rejected canary restores
  the incumbent.
* a stale version: one version is judged at a time and the learner fits only when
  none is in flight, so a shadow that stays undecided, or a canary whose first pass
  faded, would hold back every later fit for up to `max_sessions`. Once the history is
  `refit_growth` times what it was fitted on, and it has been judged for `futile_after`
  sessions (a canary: has been one for `futile_after` sessions), the learner fits
  again, and a fit that changes the params replaces it (it is rejected, "superseded by
  a fit on more history", a canary's arm ended: `stale`). Dropping a version never
  promotes one, so the level holds.
* rollback: a live version's excess P&L since it went live, scaled by its spread over
  the comparison that promoted it, runs through a one-sided CUSUM watching for it to
  turn negative; the threshold is calibrated by simulation so that a version earning
  nothing over the market would be flagged with probability `false_alarm_rate` or less
  over `watch_sessions` — one that keeps earning, far less often. An alarm restores its
  parent (or the fallback defaults when it has none). The delay grows like
  h / (loss − drift) sessions, plus the horizon before outcomes are complete.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import norm

from amc_learning.intelligence import horizon as h
from amc_learning.intelligence.book import Book, Params, Rule
from amc_learning.intelligence.stats import as_float, sharpe_gain_test, spread_of
from amc_learning.schemas.params import params_of

IN_FLIGHT = ("shadow", "canary")


@dataclass(frozen=True)
class RolloutPolicy:
    min_sessions: int = 20
    canary_sessions: int = 10
    max_sessions: int = 250
    promote_at: float = 0.95
    reject_at: float = 0.05
    futile_after: int = 60
    futile_at: float = 0.2
    canary_pct: float = 10.0
    horizon: int = h.DEFAULT
    watch_sessions: int = 250
    false_alarm_rate: float = 0.05
    cusum_drift: float = 1.0
    #: a shadow gives way to a fit on at least this many times the sessions of history it
    #: was fitted on, when that fit changes something (`stale`; inf: never)
    refit_growth: float = 2.0


@dataclass(frozen=True)
class Version:
    """One parameter version as the params history knows it."""

    version: int
    mode: str  # shadow | canary | live | rejected | rolled_back | superseded
    params: Params
    parent: int | None
    #: the first session of its out-of-sample evidence (the session after it was issued)
    evidence_from: date
    #: the first session in its current mode
    mode_since: date


@dataclass(frozen=True)
class Action:
    version: int
    to_mode: str  # canary | live | rejected | rolled_back
    #: for rejected canaries and rollbacks: the version whose params trade again
    #: (None = the fallback defaults)
    restore: int | None
    evidence: dict[str, Any]


def versions_of(rows: Iterable[tuple[Any, ...]]) -> list[Version]:
    """(version, mode, as_of, parent, params) history rows, in the order they were recorded
    per version, as each version with its current mode: evidence counts from the day after
    its first row, its mode from the day after its newest. `params` is a parameter set or
    its stored JSON (`schemas.params.params_of`)."""
    first: dict[int, date] = {}
    latest: dict[int, Any] = {}
    for version, mode, as_of, parent, params in rows:
        first.setdefault(version, as_of)
        latest[version] = (mode, as_of, parent, params)
    return [
        Version(v, mode, params if isinstance(params, Params) else params_of(params), parent,
                first[v] + timedelta(days=1), as_of + timedelta(days=1))
        for v, (mode, as_of, parent, params) in sorted(latest.items())
    ]


def session_pnl(frame: pl.DataFrame, params: Params, horizon: int) -> pl.DataFrame:
    """session, pnl, book: what trading with `params` would have earned per session — `book`
    the mean return of its trades (0 where it made none), `pnl` the same over the market
    (each trade's return in excess of the session's mean candidate return). The market
    move is common to every rule, so `pnl` is what a rule's selection earned, and
    comparisons read it; `book` is what the portfolio carries, so its spread is the risk
    a Sharpe ratio divides by (decision 018)."""
    if frame.is_empty():
        return pl.DataFrame(schema={"session": pl.Date, "pnl": pl.Float64, "book": pl.Float64})
    book = Book.of(frame, params, horizon)
    side = book.side(Rule.of(params))
    rows = np.maximum(np.bincount(book.session, minlength=book.sessions), 1)
    market = np.bincount(book.session, weights=book.ret, minlength=book.sessions) / rows
    trades = np.maximum(np.bincount(book.session, weights=np.abs(side),
                                    minlength=book.sessions), 1.0)
    net = np.bincount(book.session, weights=side, minlength=book.sessions) / trades
    raw = book.pnl_of(side)
    sessions = frame.drop_nulls(h.returns(horizon))["session"].unique().sort()
    return pl.DataFrame({"session": sessions, "pnl": raw - market * net, "book": raw})


def compare(
    frame: pl.DataFrame,
    challenger: Params,
    incumbent: Params,
    since: date,
    policy: RolloutPolicy,
) -> dict[str, Any]:
    """The challenger's per-session Sharpe ratio against the incumbent's from `since` on,
    and `p_not_better`, the paired t's P(its Sharpe is no higher)
    (`stats.sharpe_gain_test`): each rule's P&L over the market divided by the spread of
    its book, so the market move cancels from the difference while the risk is the one
    the portfolio carries (decision 018); `needed` is what a look requires for promotion
    (`promotion_level`); `gain` is its mean P&L per session over the incumbent's;
    `sharpe` the challenger's book's."""
    data = frame.filter(pl.col("session") >= since)
    paired = (
        session_pnl(data, challenger, policy.horizon)
        .join(session_pnl(data, incumbent, policy.horizon), on="session", suffix="_incumbent")
        .sort("session")
    )
    a, b = paired["pnl"].to_numpy(), paired["pnl_incumbent"].to_numpy()
    book = paired["book"].to_numpy()
    spread = (spread_of(book), spread_of(paired["book_incumbent"].to_numpy()))
    sharpe_gain, p_not_better, read = sharpe_gain_test(a, b, policy.horizon, spread)
    return {
        "sessions": len(a),
        "since": str(since),
        "read": read,
        "gain": round(float((a - b).mean()), 8) if len(a) else None,
        "sharpe": _sharpe(book),
        "sharpe_gain": None if math.isnan(sharpe_gain) else round(sharpe_gain, 6),
        "p_not_better": None if math.isnan(p_not_better) else round(p_not_better, 6),
        "needed": round(promotion_level(policy), 6),
    }


def _sharpe(x: np.ndarray) -> float:
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    return round(float(x.mean()) / sd, 6) if sd > 0 else 0.0


def degradation(
    frame: pl.DataFrame, live: Version, policy: RolloutPolicy
) -> dict[str, Any] | None:
    """A CUSUM alarm when the live version's excess P&L since it went live turns negative
    (it stops beating the market); None while there is no alarm (or no reference yet).
    The stream is scaled by the spread of its P&L over the evidence that promoted it."""
    pnl = session_pnl(frame.filter(pl.col("session") >= live.evidence_from), live.params,
                      policy.horizon)
    reference = pnl.filter(pl.col("session") < live.mode_since)["pnl"].to_numpy()
    watched = pnl.filter(pl.col("session") >= live.mode_since)
    if len(reference) < policy.min_sessions or watched.is_empty():
        return None
    sd = float(np.std(reference, ddof=1)) or 1.0
    threshold = _cusum_threshold(policy)
    level = 0.0
    for i, x in enumerate(watched["pnl"].to_numpy()):
        level = max(0.0, level - x / sd - policy.cusum_drift)
        if level > threshold:
            return {
                "alarm_session": str(watched["session"][i]),
                "sessions_live": len(watched),
                "threshold": round(threshold, 6),
                "reference_mean": round(float(np.mean(reference)), 8),
                "live_mean": round(as_float(watched["pnl"][: i + 1].mean()), 8),
            }
    return None


def null_stream(simulations: int, sessions: int, horizon: int) -> np.ndarray:
    """`simulations` paths of a per-session P&L that earns nothing: `horizon`-session
    returns of unit-variance days, sampled every session (so neighbours overlap), scaled
    to unit spread. The null both of the judge's thresholds are calibrated on."""
    e = np.random.default_rng(0).standard_normal((simulations, sessions + horizon - 1))
    c = np.cumsum(np.pad(e, ((0, 0), (1, 0))), axis=1)
    return (c[:, horizon:] - c[:, :-horizon]) / math.sqrt(horizon)


@cache
def _cusum_threshold(policy: RolloutPolicy, simulations: int = 4000) -> float:
    """h such that a version earning nothing over the market (mean 0, unit spread, the
    dependence of `horizon`-session returns sampled daily) alarms within `watch_sessions`
    with probability 1 − `false_alarm_rate`... and one that keeps earning, far less."""
    z = null_stream(simulations, policy.watch_sessions, policy.horizon)
    level, peak = np.zeros(simulations), np.zeros(simulations)
    for i in range(z.shape[1]):
        level = np.maximum(0.0, level - z[:, i] - policy.cusum_drift)
        peak = np.maximum(peak, level)
    return float(np.quantile(peak, 1 - policy.false_alarm_rate))


@cache
def promotion_level(policy: RolloutPolicy, simulations: int = 4000) -> float:
    """The one-sided level a daily look must reach for promotion, such that a version
    whose P&L is its incumbent's plus noise goes live with probability at most
    1 − `promote_at`: its paired difference is `null_stream`, looked at every session from
    `min_sessions` to `max_sessions` — canary at the first look past the bar, live at a
    look past it `canary_sessions` later, stopped at a look that says worse (P(better) ≤
    `reject_at`) or, from `futile_after` on, futile (≤ `futile_at`) — with the test's
    statistic read as a normal z."""
    total = np.cumsum(null_stream(simulations, policy.max_sessions, policy.horizon), axis=1)
    z = total / total.std(axis=0)
    worse, futile = float(norm.isf(policy.reject_at)), float(norm.isf(policy.futile_at))

    def live_share(bar: float) -> float:
        stopped = np.zeros(simulations, bool)
        canary_at = np.full(simulations, -1)
        live = np.zeros(simulations, bool)
        for n in range(policy.min_sessions - 1, policy.max_sessions):
            look = z[:, n]
            stopped |= (look <= -worse) | ((n + 1 >= policy.futile_after) & (look <= -futile))
            active = ~stopped & ~live
            live |= active & (canary_at >= 0) & (n - canary_at >= policy.canary_sessions) \
                & (look >= bar)
            canary_at = np.where(active & (canary_at < 0) & (look >= bar), n, canary_at)
        return float(live.mean())

    low, high = -8.0, 8.0  # the z bar: live_share falls as it rises
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (low, mid) if live_share(mid) <= 1 - policy.promote_at else (mid, high)
    return float(norm.sf(high))


def stale(versions: list[Version], frame: pl.DataFrame,
          policy: RolloutPolicy) -> Version | None:
    """The version in flight, judged on at least `futile_after` sessions (and
    `min_sessions`) and still undecided, whose fit saw at most 1 / `refit_growth` of the
    sessions of `frame` (those before its evidence begins), or None; a canary only once
    it has been one for `futile_after` sessions without passing again."""
    version = next((v for v in versions if v.mode in IN_FLIGHT), None)
    if version is None or frame.is_empty():
        return None
    sessions = frame["session"].unique()
    seen = int((sessions < version.evidence_from).sum())
    judged = len(sessions) - seen
    if version.mode == "canary" and int((sessions >= version.mode_since).sum()) < (
            policy.futile_after):
        return None
    return (version if seen > 0
            and judged >= max(policy.min_sessions, policy.futile_after)
            and len(sessions) >= policy.refit_growth * seen else None)


def decide(
    versions: list[Version],
    frame: pl.DataFrame,
    fallback: Params,
    policy: RolloutPolicy | None = None,
) -> list[Action]:
    """What happens to the versions in flight and to the live one, given the outcomes in
    `frame` (complete ones only: the caller's `known_by`)."""
    policy = policy or RolloutPolicy()
    by_number = {v.version: v for v in versions}
    live = next((v for v in versions if v.mode == "live"), None)
    incumbent = live.params if live else fallback
    actions = []
    for v in versions:
        if v.mode not in IN_FLIGHT:
            continue
        evidence = compare(frame, v.params, incumbent, v.evidence_from, policy)
        p, n = evidence["p_not_better"], evidence["sessions"]
        judged = p is not None and n >= policy.min_sessions
        in_mode = frame.filter(pl.col("session") >= v.mode_since)["session"].n_unique()
        restore = live.version if live else None
        if judged and 1 - p <= policy.reject_at:
            actions.append(Action(v.version, "rejected", restore, {**evidence, "why": "worse"}))
        elif judged and p <= evidence["needed"]:
            if v.mode == "shadow":
                actions.append(Action(v.version, "canary", None, evidence))
            elif in_mode >= policy.canary_sessions:
                actions.append(Action(v.version, "live", None, evidence))
        elif judged and n >= policy.futile_after and 1 - p <= policy.futile_at:
            actions.append(Action(v.version, "rejected", restore,
                                  {**evidence, "why": "unlikely to be better"}))
        elif n >= policy.max_sessions:
            actions.append(
                Action(v.version, "rejected", restore, {**evidence, "why": "not better"})
            )
    if live is not None:
        alarm = degradation(frame, live, policy)
        if alarm is not None:
            parent = by_number.get(live.parent) if live.parent is not None else None
            actions.append(
                Action(live.version, "rolled_back", parent.version if parent else None, alarm)
            )
    return actions
