"""Shadow → canary → live, and rollback: which parameter versions may trade.

A new version always starts in shadow. Each cycle judges the versions in flight on the
candidates decided since the shadow began whose outcomes are now complete: the
per-session P&L of the version's trading rule against the incumbent's (the live version,
or the fallback defaults) on the same candidates (`adaptive.Book`). Both are
counterfactual, so a shadow is judged without ever trading.

* promotion: the version's per-session Sharpe ratio beats the incumbent's in a paired
  moving-block bootstrap (`stats.bootstrap_sharpe_gain`) with a one-sided error of at
  most (1 − `promote_at`) / trials — a Bonferroni correction for every version tried so
  far for the param set — after at least `min_sessions`: shadow → canary; a canary goes
  live when, `canary_sessions` later, the test still passes.
* rejection: the bootstrap says it is worse (share of resamples where it is better ≤
  `reject_at`), or nothing is decided after `max_sessions`. A rejected canary restores
  the incumbent.
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

from amc_learning.intelligence import horizon as h
from amc_learning.intelligence.book import Book, Params, Rule
from amc_learning.intelligence.stats import as_float, bootstrap_sharpe_gain
from amc_learning.schemas.params import params_of

IN_FLIGHT = ("shadow", "canary")


@dataclass(frozen=True)
class RolloutPolicy:
    min_sessions: int = 20
    canary_sessions: int = 10
    max_sessions: int = 80
    promote_at: float = 0.95
    reject_at: float = 0.05
    canary_pct: float = 10.0
    horizon: int = h.DEFAULT
    watch_sessions: int = 250
    false_alarm_rate: float = 0.05
    cusum_drift: float = 1.0


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
    """session, pnl: what trading with `params` would have earned per session over the
    market: the mean return of its trades in excess of the session's mean candidate
    return (0 where it made none). The market move is common to every rule; judged
    without it, a rule's selection is what is compared."""
    if frame.is_empty():
        return pl.DataFrame(schema={"session": pl.Date, "pnl": pl.Float64})
    ret = h.returns(horizon)
    frame = frame.with_columns(pl.col(ret) - pl.col(ret).mean().over("session"))
    book = Book.of(frame, params, horizon)
    sessions = frame.drop_nulls(ret)["session"].unique().sort()
    return pl.DataFrame({"session": sessions, "pnl": book.pnl(Rule.of(params))})


def compare(
    frame: pl.DataFrame,
    challenger: Params,
    incumbent: Params,
    since: date,
    trials: int,
    policy: RolloutPolicy,
) -> dict[str, Any]:
    """The challenger's per-session Sharpe ratio against the incumbent's from `since` on,
    and from a paired block bootstrap, `p_not_better`: the share of resamples in which
    the challenger does not beat the incumbent. `needed` is what promotion requires:
    (1 − promote_at) / trials, a Bonferroni correction for every version tried."""
    data = frame.filter(pl.col("session") >= since)
    paired = (
        session_pnl(data, challenger, policy.horizon)
        .join(session_pnl(data, incumbent, policy.horizon), on="session", suffix="_incumbent")
        .sort("session")
    )
    a, b = paired["pnl"].to_numpy(), paired["pnl_incumbent"].to_numpy()
    gain, p_not_better = bootstrap_sharpe_gain(a, b, policy.horizon)
    return {
        "sessions": len(a),
        "since": str(since),
        "trials": trials,
        "sharpe": round(float(a.mean() / a.std(ddof=1)), 6) if len(a) > 1 and a.std() else 0.0,
        "sharpe_gain": None if math.isnan(gain) else round(gain, 6),
        "p_not_better": None if math.isnan(p_not_better) else round(p_not_better, 6),
        "needed": round((1 - policy.promote_at) / max(trials, 1), 6),
    }


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


@cache
def _cusum_threshold(policy: RolloutPolicy, simulations: int = 4000) -> float:
    """h such that a version earning nothing over the market (mean 0, unit spread, the
    dependence of `horizon`-session returns sampled daily) alarms within `watch_sessions`
    with probability 1 − `false_alarm_rate`... and one that keeps earning, far less."""
    rng = np.random.default_rng(0)
    h = policy.horizon
    e = rng.standard_normal((simulations, policy.watch_sessions + h - 1))
    c = np.cumsum(np.pad(e, ((0, 0), (1, 0))), axis=1)
    z = (c[:, h:] - c[:, :-h]) / math.sqrt(h)
    level, peak = np.zeros(simulations), np.zeros(simulations)
    for i in range(z.shape[1]):
        level = np.maximum(0.0, level - z[:, i] - policy.cusum_drift)
        peak = np.maximum(peak, level)
    return float(np.quantile(peak, 1 - policy.false_alarm_rate))


def decide(
    versions: list[Version],
    frame: pl.DataFrame,
    fallback: Params,
    trials: int,
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
        evidence = compare(frame, v.params, incumbent, v.evidence_from, trials, policy)
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
