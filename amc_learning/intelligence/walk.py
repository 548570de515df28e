"""The learner's daily cycle walked over a history, session by session.

What the experiments (and a backtest) measure is the loop as it runs live: after each
session's close the cycle plans on the outcomes complete by then (`cycle.plan`: the
rollout judge on the versions in flight and the live one, then a fit when nothing is in
flight), and the next session trades with the version live after it — or the fallback
while none is. The same fit, the same judge, the same history rules
(`rollout.versions_of`); only the store is a list.

Trading reads the live version only: a canary's share of candidates is not split off
(its evidence is counterfactual, as a shadow's is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from amc_learning.intelligence.book import Params
from amc_learning.intelligence.cycle import Fit, plan
from amc_learning.intelligence.rollout import RolloutPolicy, versions_of


@dataclass
class Walk:
    #: session index -> the params trading used in that session
    traded: dict[int, Params] = field(default_factory=dict)
    #: session index -> the learned version trading used (None: the fallback)
    version_on: dict[int, int | None] = field(default_factory=dict)
    #: every history entry, in order: the session it first trades, the cycle's as-of date
    #: (the session before), version, mode, parent, evidence
    path: list[dict[str, Any]] = field(default_factory=list)

    def learned_sessions(self, sessions: range) -> int:
        """How many of `sessions` traded under a learned version (not the fallback)."""
        return sum(1 for t in sessions if self.version_on.get(t) is not None)


def walk(frame: pl.DataFrame, fallback: Params, fit: Fit, guardrails: Any,
         policy: RolloutPolicy, first: int, last: int, every: int = 1,
         dates: dict[int, date] | None = None,
         progress: Callable[[int], None] | None = None) -> Walk:
    """Trade sessions `first` .. `last` − 1 of `frame` (`session_index`, `session`, the
    fit's columns) with what the cycle of the session before made live; the cycle runs
    after every `every`-th session from `first` on (1: daily, as the learner does).
    `dates`: each session index's date, where the frame lacks some (sessions whose
    outcomes are not complete yet still have their cycles). `progress`: told the sessions
    walked after each cycle."""
    dates = dates or dict(frame.select("session_index", "session").unique().iter_rows())
    rows: list[tuple[Any, ...]] = []
    out = Walk()
    live: tuple[int | None, Params] = (None, fallback)
    for t in range(first, last):
        out.traded[t], out.version_on[t] = live[1], live[0]
        if (t - first) % every:
            continue
        known = frame.filter(pl.col("session_index") <= t - 1 - policy.horizon)
        if known.is_empty():
            continue
        entries, _actions, _fitted = plan(versions_of(rows), known, "daily", policy,
                                          guardrails=guardrails, fit=fit, fallback=fallback)
        as_of = dates[t - 1]  # the cycle runs after the session before t's close
        for e in entries:
            rows.append((e["version"], e["mode"], as_of, e["parent"], e["params"]))
            out.path.append({"session": t, "date": str(as_of), "version": e["version"],
                             "mode": e["mode"], "parent": e["parent"],
                             "evidence": e["evidence"], "provenance": e["provenance"]})
            if e["mode"] == "live":  # a restored fallback is no learned version
                live = (None if e["params"] == fallback else e["version"], e["params"])
        if progress is not None:
            progress(t - first + 1)
    return out
