"""`backtest`: would the learning loop have helped on the stored history?

The learner's own loop, walked over what is stored (`intelligence.walk`): for one scoring
model, the same frame the learner reads (every candidate and decision whose outcome is
complete, decided or not), the same fit and guardrails, the same rollout judge (shadow →
canary → live → rollback), each cycle seeing only the outcomes complete by then. Each
session trades with the version live after the cycle before it; the static arm trades the
fallback (the producer's declared table, or the engine's defaults) on the same stored
candidates. Both are marked as one book (decision 016): a session's trades share
1/horizon of equity, their mean return over the horizon. A component model the registry
does not declare is backtested under the declaration its candidates imply
(`intelligence.inference`), and the report says so.

It publishes nothing and writes nothing: its results are its output only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from amc_learning.intelligence.book import Book, Params, Rule
from amc_learning.intelligence.cycle import explain
from amc_learning.intelligence.inference import NotInferable
from amc_learning.intelligence.rollout import RolloutPolicy
from amc_learning.intelligence.stats import block_bootstrap_interval
from amc_learning.intelligence.walk import Walk, walk
from amc_learning.schemas.params import TieredParams
from amc_learning.service.analysis import NATIVE, Inputs, active_models
from amc_learning.service.cycle import learner_of, read_part
from amc_learning.service.deps import Deps
from amc_learning.service.models import infer

#: what `--policy eager` changes: the judge decides on shorter windows (its level per look
#: calibrated for them by the same simulation, so the false-promotion rate stays 5 %)
EAGER = {"min_sessions": 10, "canary_sessions": 5, "futile_after": 30, "max_sessions": 120}


class NotEnoughToBacktest(Exception):
    """Too little stored history for a backtest: the message says how much it needs."""


@dataclass(frozen=True)
class Arm:
    """One arm's P&L per session (fraction of equity) and its trades' returns."""

    pnl: np.ndarray
    trades: np.ndarray

    def metrics(self) -> dict[str, Any]:
        sd = float(self.pnl.std(ddof=1)) if len(self.pnl) > 1 else 0.0
        return {"total_pnl": round(float(self.pnl.sum()) * 100, 4),
                "sharpe": round(float(self.pnl.mean()) / sd * math.sqrt(252), 4) if sd > 0
                else None,
                "hit_rate": round(float((self.trades > 0).mean()), 4) if len(self.trades)
                else None,
                "expectancy": round(float(self.trades.mean()), 6) if len(self.trades) else None,
                "trades": len(self.trades)}


def policy_named(name: str, horizon: int) -> RolloutPolicy:
    base = RolloutPolicy(horizon=horizon)
    return replace(base, **EAGER) if name == "eager" else base


def needed_sessions(policy: RolloutPolicy) -> int:
    """The fewest sessions with complete outcomes a backtest is run on: enough for a
    version fitted on the first of them to be judged to the canary's second pass, twice."""
    return 2 * (policy.horizon + policy.min_sessions + policy.canary_sessions)


def backtest(deps: Deps, *, scoring_model: str | None = None, since: date | None = None,
             until: date | None = None, every: int = 1, policy: RolloutPolicy | None = None,
             say: Callable[[str], None] = lambda _: None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The walk over the stored history (the module's doc); its report as a dict.
    `progress`: told (sessions walked, sessions) as the walk goes."""
    settings = deps.settings
    policy = policy or RolloutPolicy(horizon=settings.learning_horizon)
    with deps.db.unit_of_work(snapshot=True) as uow:
        as_of = uow.frames.last_session(settings.index_symbol)
        if as_of is None:
            raise NotEnoughToBacktest("no sessions are stored yet: import a history and its "
                                      "bars first")
        frame = uow.frames.decisions(settings.horizons, policy.horizon)
        index = uow.frames.index(settings.market)
        model = scoring_model or (active_models(frame) or [NATIVE])[0]
        part = read_part(uow, settings, "daily", as_of,
                         Inputs.of(frame, index, policy.horizon, model), policy, {},
                         rerun=True)
        inferred = None
        if part.learner is None and not part.declared:
            try:  # what its candidates say it is: the backtest names it as inferred
                inferred = infer(uow, model)
            except NotInferable as exc:
                raise NotEnoughToBacktest(f"{model}: nothing is learned for it "
                                          f"({part.why}; {exc})") from None
            part.learner = learner_of(uow, settings, inferred.model, as_of, policy, {})
            say(inferred.note())
    if part.learner is None:
        raise NotEnoughToBacktest(f"{model}: nothing is learned for it ({part.why})")
    learner = part.learner
    # every session stored, outcomes complete or not: the learner cycles after each
    calendar = [s for s in frame["session"].unique().sort().to_list()
                if (since is None or s >= since) and (until is None or s <= until)]
    data = learner.frame.filter(pl.col("session").is_in(calendar)) \
        if not learner.frame.is_empty() else learner.frame
    marked = data["session"].unique().sort().to_list() if not data.is_empty() else []
    need = needed_sessions(policy)
    if len(marked) < need:
        raise NotEnoughToBacktest(
            f"{model}: {len(marked)} sessions with complete outcomes "
            f"({len(data):,} candidates and decisions); a backtest needs at least {need} "
            f"(a version judged to its canary's second pass, twice, at a {policy.horizon}-"
            f"session horizon): import more history, or the bars that complete it")
    position = {day: i for i, day in enumerate(calendar)}
    data = data.with_columns(pl.col("session").replace_strict(position, return_dtype=pl.Int64)
                             .alias("session_index"))
    say(f"{model}: walking the learner's loop over {len(calendar)} sessions "
        f"({calendar[0]} .. {calendar[-1]}; {len(marked)} with complete outcomes), a cycle "
        f"every {every} session{'' if every == 1 else 's'}")
    walked = walk(data, learner.fallback, learner.fit, learner.guardrails, policy,
                  0, len(calendar), every, dates=dict(enumerate(calendar)),
                  progress=None if progress is None
                  else lambda done: progress(done, len(calendar)))
    traded = [position[day] for day in marked]
    learned = _arm(data, walked.traded, traded, policy.horizon)
    static = _arm(data, dict.fromkeys(traded, learner.fallback), traded, policy.horizon)
    diff = learned.pnl - static.pnl
    low, high = block_bootstrap_interval(diff, policy.horizon)
    final = walked.traded[traded[-1]]
    under = [i for i, t in enumerate(traded) if walked.version_on.get(t) is not None]
    same = sum(1 for i in under if learned.pnl[i] == static.pnl[i])
    return {
        "scoring_model": model, "from": str(marked[0]), "to": str(marked[-1]),
        # an undeclared model's declaration, as its candidates imply it (None: declared)
        "inferred": None if inferred is None else {
            "note": inferred.note(), "r2": inferred.r2, "agreement": inferred.agreement,
            "declaration": inferred.model.model_dump(mode="json")},
        "sessions": len(marked), "cycle_every": every,
        "learned_sessions": len(under),
        # learned sessions where both arms earned exactly the same: the stored candidates
        # are what the producer wrote, and a producer that wrote only what cleared the bar
        # it then used leaves nothing for a lower bar to trade
        "same_candidates_sessions": same,
        "static": static.metrics(), "learned": learned.metrics(),
        "difference": {"total_pnl": round(float(diff.sum()) * 100, 4),
                       "low": round(low * 100, 4), "high": round(high * 100, 4)},
        "versions": _path(walked),
        "moved": _moves(final, learner.fallback),
        "daily": {"session": [str(s) for s in marked],
                  "learned": [round(float(v), 8) for v in learned.pnl],
                  "static": [round(float(v), 8) for v in static.pnl]},
    }


def _arm(data: pl.DataFrame, traded: dict[int, Params], sessions: list[int],
         horizon: int) -> Arm:
    """Each of `sessions`' P&L under the params it traded (its trades' mean return, on a
    1/horizon slice of equity; 0 without a trade), and every trade's return."""
    groups: dict[str, tuple[Params, list[int]]] = {}
    for t in sessions:
        params = traded[t]
        groups.setdefault(params.model_dump_json(), (params, []))[1].append(t)
    position = {t: i for i, t in enumerate(sessions)}
    pnl = np.zeros(len(sessions))
    trades: list[np.ndarray] = []
    for params, members in groups.values():
        part = data.filter(pl.col("session_index").is_in(members))
        if part.is_empty():
            continue
        book = Book.of(part, params, horizon)
        side = book.side(Rule.of(params))
        indices = part.drop_nulls(f"return_{horizon}d").sort("session")[
            "session_index"].unique(maintain_order=True).to_list()
        pnl[[position[t] for t in indices]] = book.pnl_of(side) / horizon
        trades.append((side * book.ret)[side != 0])
    return Arm(pnl, np.concatenate(trades) if trades else np.zeros(0))


def _path(walked: Walk) -> list[dict[str, Any]]:
    return [{"date": s["date"], "version": s["version"], "mode": s["mode"],
             "why": explain(s)} for s in walked.path]


def _moves(final: Params, fallback: Params) -> list[dict[str, Any]]:
    """What the params traded last changed from the fallback's."""
    if isinstance(final, TieredParams) and isinstance(fallback, TieredParams):
        moved = [{"tier": f"{f}.{t}", "from": old, "to": new}
                 for f, t, old, new in final.changes(fallback)]
        if final.entry_threshold != fallback.entry_threshold:
            moved.append({"tier": "entry_threshold", "from": fallback.entry_threshold,
                          "to": final.entry_threshold})
        return moved
    old, new = fallback.model_dump(), final.model_dump()
    return [{"param": k, "from": old[k], "to": new[k]} for k in new if new[k] != old.get(k)]
