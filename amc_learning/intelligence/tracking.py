"""Outcome tracking as a pure state machine: facts in, per-decision outcomes out (no IO).

One `SymbolState` holds everything the outcomes worker knows about one symbol: its recent
daily bars, the decisions being tracked, their fills, and catalysts. The worker keeps it
in a Faust table (changelog-backed); this module only transforms it.

Disorder rules (every rule makes the result a function of the *set* of facts, never of
their arrival order, so a replay after a crash converges to the same outcomes):

* A bar is keyed by its session; a second bar for a session is a duplicate and ignored.
  Bars are applied by session date, so a late bar lands where it belongs.
* A decision is keyed by `decision_id`, a fill by `fill_id`, a catalyst by `event_id`;
  duplicates are ignored. Bars, fills and catalysts that arrive before their decision
  are kept and used when it arrives.
* A decision's entry is its `entry_price`; its path is the bars from its session on
  (from the next session for an after-hours decision). A never-decided candidate's
  entry is its `price` (the last close before the run), its path starts the same day.
* A symbol that stops trading simply gets no more bars: its decisions stay open with the
  last known values.
* A never-decided candidate's outcome is its outcome as of the last horizon its path has
  reached (the first N sessions of its path, N the largest horizon it has, all of them
  once the longest is reached), so it changes, and is published, about three times, not
  every session (decision 017). A decision's covers its whole path.
* Bars are stored as traded; a bar may say that a split took effect at its session's open
  (`split_ratio`, new shares per old). Each decision sees every bar in the share terms of
  its entry day: prices after a later split times the ratios since, volumes divided by
  them (and baseline bars before an earlier split the other way), so a 2-for-1 split is
  no -50 % return, whether the decision came before or after it.

Definitions (all returns are fractions, 0.01 = 1 %):

* `return_Nd` = close of the N-th session of the path / entry - 1: the raw market move.
  N are the three configured horizons (1, 7, 30 by default) in trading sessions.
* side: +1 for BUY, -1 for SELL; HOLD, IGNORE and never-decided candidates are measured
  as if bought (+1), the counterfactual "what would buying have earned".
* holding window: to the exit session of a closed position, to the last bar of an open
  position, otherwise the longest horizon.
* `max_favorable_excursion` = max(0, max over the window of side * (extreme / entry - 1))
  using highs for a long and lows for a short; `max_adverse_excursion` is the mirror
  (<= 0).
* `volatility_realized` = sample standard deviation of daily log returns over the window
  (the first from the entry price to the first close), times sqrt(252); needs 2 returns.
* `return_pct` = side * (exit price, else last close in the window / entry - 1).
* `catalyst_materialized` (when the thesis names an expected catalyst and a window of W
  sessions): True once a catalyst of that kind is observed in the first W sessions of the
  path, False when W sessions passed without one.
* `volume_pattern_accuracy` (when the thesis gives `expected_volume_ratio` E): R = mean
  volume over the first H sessions (H = the thesis horizon, capped at the longest
  horizon) / mean volume of up to `baseline_sessions` sessions before the path (at least
  5 needed); score = min(R, E) / max(R, E), 1 for a perfect forecast, 0.5 when off by 2x.
* `thesis_accuracy_score`, judged at the thesis horizon H: a weighted mean of
  direction (0.5): UP needs close_H > entry, DOWN close_H < entry, FLAT |move| <= flat_band;
  target (0.3, when given): 1 if touched within H sessions, else the fraction of the way
  the best price got towards it; stop (0.2, when given): 1 if never touched, else 0.
  Absent components drop out and the weights are renormalised.
* `revision` = number of facts the outcome depends on (baseline and path bars, fills,
  catalysts in the window). It is not monotone under disorder (a late bar can move a
  window and drop a catalyst from it), so it orders nothing: see ARCHITECTURE.md.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from amc_learning.intelligence.horizon import DEFAULT_HORIZONS, Horizons
from amc_learning.intelligence.measures import (
    Bar,
    catalyst_materialized,
    excursions,
    realized_volatility,
    rounded,
    side_return,
    thesis_accuracy,
    volume_accuracy,
)
from amc_learning.schemas.catalysts import CatalystObserved
from amc_learning.schemas.discovery import CandidateScored
from amc_learning.schemas.prices import PriceBarClosed
from amc_learning.schemas.thesis import ThesisDecided
from amc_learning.schemas.trades import TradeFilled

Fact = ThesisDecided | CandidateScored | PriceBarClosed | TradeFilled | CatalystObserved
Outcome = dict[str, Any]



@dataclass(frozen=True)
class TrackerConfig:
    horizons: Horizons = DEFAULT_HORIZONS
    baseline_sessions: int = 20
    flat_band: float = 0.02
    #: An open position is followed at most this many sessions.
    max_track_sessions: int = 250
    #: Finished decisions, unmatched fills and old bars are kept this many calendar days
    #: past the newest bar, so facts that arrive late still count.
    retention_days: int = 90
    annualisation: int = 252

    def __post_init__(self) -> None:
        if len(self.horizons) != 3 or list(self.horizons) != sorted(set(self.horizons)):
            raise ValueError("horizons must be three increasing session counts, e.g. 1,7,30")
        if self.horizons[0] < 1 or self.horizons[-1] > self.max_track_sessions:
            raise ValueError("horizons must lie between 1 and max_track_sessions")

    @property
    def longest(self) -> int:
        return self.horizons[-1]


@dataclass
class SymbolState:
    """Everything known about one symbol; JSON-serialisable for the Faust changelog."""

    #: session -> o, h, l, c, v[, split ratio effective at the session's open]
    bars: dict[str, list[float]] = field(default_factory=dict)
    tracked: dict[str, dict[str, Any]] = field(default_factory=dict)
    fills: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # decision -> fills
    catalysts: dict[str, list[str]] = field(default_factory=dict)  # event_id -> session, kind
    done: dict[str, str] = field(default_factory=dict)  # decision -> session it finished

    def dumps(self) -> bytes:
        return json.dumps(self.__dict__, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def loads(cls, raw: bytes | None) -> SymbolState:
        return cls(**json.loads(raw)) if raw else cls()


def apply(state: SymbolState, fact: Fact) -> bool:
    """Record one fact; return False when it was already known (a duplicate) or ignored."""
    if isinstance(fact, PriceBarClosed):
        values = [fact.open, fact.high, fact.low, fact.close, fact.volume]
        if fact.split_ratio is not None and fact.split_ratio != 1.0:
            values.append(fact.split_ratio)
        return _put(state.bars, fact.session.isoformat(), values)
    if isinstance(fact, ThesisDecided):
        return _track(state, fact.decision_id, _decision(fact))
    if isinstance(fact, CandidateScored):
        if fact.passed:  # handed to the thesis service: tracked through its decision
            return False
        return _track(state, never_decided_id(fact), _candidate(fact))
    if isinstance(fact, TradeFilled):
        if fact.decision_id is None or fact.mode != "live":  # paper and shadow are no P&L
            return False
        row = [fact.fill_type, fact.price, fact.exit_reason, fact.occurred_at.date().isoformat()]
        return _put(state.fills.setdefault(fact.decision_id, {}), fact.fill_id, row)
    return _put(state.catalysts, str(fact.event_id), [fact.session.isoformat(), fact.kind])


def never_decided_id(candidate: CandidateScored) -> str:
    """The decision id a candidate below the discovery threshold is tracked (and stored) under."""
    return f"cand:{candidate.run_id}:{candidate.symbol}"


def _put(mapping: dict[str, Any], key: str, value: Any) -> bool:
    if key in mapping:
        return False
    mapping[key] = value
    return True


def _track(state: SymbolState, decision_id: str, spec: dict[str, Any]) -> bool:
    if decision_id in state.done:
        return False
    return _put(state.tracked, decision_id, spec)


def _decision(e: ThesisDecided) -> dict[str, Any]:
    t = e.thesis  # absent in v2 when the producer gave none: no thesis accuracy then
    return {
        "symbol": e.symbol, "type": e.decision_type, "from": "decision",
        "counterfactual": e.decision_type in ("HOLD", "IGNORE"), "entry": e.entry_price,
        "day": e.occurred_at.date().isoformat(), "after_close": e.market_time == "afterhours",
        "thesis": None if t is None else {
            "direction": t.expected_direction, "horizon": t.horizon_days,
            "target": t.target_price, "stop": t.stop_price, "catalyst": t.expected_catalyst,
            "catalyst_window": t.catalyst_window_days, "volume_ratio": t.expected_volume_ratio,
        },
    }


def _candidate(e: CandidateScored) -> dict[str, Any]:
    return {
        "symbol": e.symbol, "type": "IGNORE", "from": "candidate", "counterfactual": True,
        "entry": e.price, "day": e.occurred_at.date().isoformat(), "after_close": False,
        "thesis": None,
    }


# -- computing an outcome ---------------------------------------------------------------


def outcome(state: SymbolState, decision_id: str, cfg: TrackerConfig) -> Outcome:
    """The current outcome of one tracked decision, from the facts in `state` (see module doc)."""
    spec = state.tracked[decision_id]
    sessions = sorted(state.bars)
    first = _first_bar(sessions, spec)
    before = sessions[max(0, first - cfg.baseline_sessions):first]
    terms = _in_terms(state.bars, spec["day"])
    if terms is None:  # no split among the bars (nearly always): as stored
        bars = [Bar(s, *state.bars[s]) for s in sessions[first:]]
        baseline = [state.bars[s][4] for s in before]
    else:
        bars = [terms(s) for s in sessions[first:]]
        baseline = [terms(s).volume for s in before]
    if spec["from"] == "candidate" and len(bars) < cfg.longest:  # as of its last horizon
        bars = bars[:max((n for n in cfg.horizons if n <= len(bars)), default=0)]
    fills = state.fills.get(decision_id, {})
    entered = any(f[0] == "ENTRY" for f in fills.values())
    exits = sorted((f for f in fills.values() if f[0] == "EXIT"), key=lambda f: f[3])
    exit_ = exits[-1] if exits else None

    horizon_path = bars[: cfg.longest]
    if exit_ is not None:
        hold = [b for b in bars[: cfg.max_track_sessions] if b.session <= exit_[3]]
    elif entered:
        hold = bars[: cfg.max_track_sessions]
    else:
        hold = horizon_path
    counted = bars[: max(len(horizon_path), len(hold))]
    entry = float(spec["entry"])
    side = -1.0 if spec["type"] == "SELL" else 1.0
    thesis = spec["thesis"]
    last = hold[-1].close if hold else None
    window_end = counted[-1].session if counted else None
    catalysts = [
        c for c in state.catalysts.values()
        if window_end is not None and counted[0].session <= c[0] <= window_end
    ]
    matured = len(horizon_path) >= cfg.longest
    closed = exit_ is not None
    result: Outcome = {
        "decision_id": decision_id,
        "symbol": spec["symbol"],
        "decision_type": spec["type"],
        "tracked_from": spec["from"],
        "is_counterfactual": spec["counterfactual"],
        "entry_price": entry,
        "revision": len(baseline) + len(counted) + len(fills) + len(catalysts),
        "outcome_type": "closed" if closed else "matured" if matured else "open",
        "sessions_elapsed": len(counted),
        "price_at_outcome": exit_[1] if exit_ else last,
        "return_pct": side_return(side, exit_[1] if exit_ else last, entry),
        "days_held": len(hold) if hold or closed else None,
        "position_closed": closed,
        "exit_price": exit_[1] if exit_ else None,
        "exit_reason": exit_[2] if exit_ else None,
        "catalyst_materialized": None,
        "volume_pattern_accuracy": None,
        "thesis_accuracy_score": None,
        **excursions(hold, entry, side),
        "volatility_realized": realized_volatility([entry] + [b.close for b in hold],
                                                   cfg.annualisation),
    }
    for name, n in zip(("return_1d", "return_7d", "return_30d"), cfg.horizons, strict=True):
        result[name] = rounded(bars[n - 1].close / entry - 1.0) if len(bars) >= n else None
    if thesis is not None:
        horizon = min(int(thesis["horizon"]), cfg.longest)
        result["catalyst_materialized"] = catalyst_materialized(thesis, bars, state.catalysts)
        result["volume_pattern_accuracy"] = volume_accuracy(thesis, bars, baseline, horizon)
        result["thesis_accuracy_score"] = thesis_accuracy(thesis, bars[:horizon], entry, horizon,
                                                          cfg.flat_band)
    result["final"] = (
        (matured and (closed or not entered)) or len(counted) >= cfg.max_track_sessions
    )
    return result


# -- what to publish, what to forget ----------------------------------------------------


def outcomes(state: SymbolState, cfg: TrackerConfig) -> dict[str, Outcome]:
    """The current outcome of every tracked decision of the symbol."""
    return {decision_id: outcome(state, decision_id, cfg) for decision_id in sorted(state.tracked)}


def updates(current: dict[str, Outcome], published: dict[str, Outcome]) -> list[Outcome]:
    """The outcomes that changed since last published; `published` is the worker's memory.

    Every change is published (once per batch, as the worker calls this once per batch),
    so the newest published outcome of a decision is always the outcome of all its facts:
    a pure function of the facts, whatever the batching, crashes or replays. `published`
    is not persisted: after a restart every touched decision is published again, which
    covers updates lost in the crash (the sink keeps the last one it reads).
    """
    out = []
    for decision_id, result in current.items():
        if result["sessions_elapsed"] == 0 and not result["position_closed"]:
            continue
        if published.get(decision_id) != result:
            published[decision_id] = result
            out.append(result)
    return out


def fact_day(fact: Fact) -> str:
    """The market day a fact belongs to (ISO date)."""
    if isinstance(fact, PriceBarClosed | CatalystObserved):
        return fact.session.isoformat()
    return fact.occurred_at.date().isoformat()


def low_watermark(partitions: Iterable[tuple[str | None, int | None, int | None]]) -> str | None:
    """The newest day retention may count from, given every input partition's
    (newest day read, next offset to read, high watermark).

    Input topics are read at different speeds: with a backlog, the bars of one partition
    can run months ahead of the candidates of another. Retention measured from the newest
    bar would then forget bars and decisions that facts still in the backlog need, and
    the outcome would depend on the reading speeds instead of the facts. So retention
    counts from the newest day of the slowest partition that still has a backlog.
    Caught-up partitions do not hold it back (what arrives there later is new); a backlog
    of unknown content holds everything (""). None: nothing holds retention back.
    """
    days = []
    for newest, position, high in partitions:
        if position is not None and high is not None and position >= high:
            continue
        if newest is None:
            return ""
        days.append(newest)
    return min(days) if days else None


def prune(
    state: SymbolState, current: dict[str, Outcome], cfg: TrackerConfig,
    watermark: str | None = None,
) -> list[str]:
    """Forget what is past retention; return the decisions that stopped being tracked.

    `current` is `outcomes(state, cfg)`, computed after the last fact was applied.
    Retention counts from the newest bar, or from `watermark` (see `low_watermark`) when
    that is older; an empty watermark forgets nothing.
    """
    if not state.bars or watermark == "":
        return []
    newest = max(state.bars)
    latest = date.fromisoformat(min(newest, watermark) if watermark else newest)
    horizon = (latest - timedelta(days=cfg.retention_days)).isoformat()
    dropped = []
    for decision_id in list(state.tracked):
        result = current[decision_id]
        end = _end_session(state, decision_id, result["sessions_elapsed"])
        if result["final"] and end is not None and end < horizon:
            del state.tracked[decision_id]
            state.fills.pop(decision_id, None)
            state.done[decision_id] = end
            dropped.append(decision_id)
    keep_from = min([horizon] + [_baseline_start(state, d, cfg) for d in state.tracked])
    state.bars = {s: v for s, v in state.bars.items() if s >= keep_from}
    state.catalysts = {k: v for k, v in state.catalysts.items() if v[0] >= keep_from}
    state.fills = {
        d: f for d, f in state.fills.items()
        if d in state.tracked or max(row[3] for row in f.values()) >= horizon
    }
    forget = (latest - timedelta(days=2 * cfg.retention_days)).isoformat()
    state.done = {d: s for d, s in state.done.items() if s >= forget}
    return dropped


def _in_terms(bars: dict[str, list[float]], day: str) -> Callable[[str], Bar] | None:
    """A bar in the share terms of `day` (see the module docstring on splits); None when
    no bar carries a split."""
    splits = {s: v[5] for s, v in bars.items() if len(v) > 5}
    if not splits:
        return None

    def bar(session: str) -> Bar:
        o, h, low, c, v = bars[session][:5]
        factor = 1.0
        for at, ratio in splits.items():
            if day < at <= session:  # a split after the entry day: in the entry's shares
                factor *= ratio
            elif session < at <= day:  # a split before the entry day, after this bar
                factor /= ratio
        if factor == 1.0:
            return Bar(session, o, h, low, c, v)
        return Bar(session, o * factor, h * factor, low * factor, c * factor, v / factor)

    return bar


def _first_bar(sessions: list[str], spec: dict[str, Any]) -> int:
    """Index in sorted `sessions` of a decision's first bar (the next one after hours)."""
    first = bisect_left(sessions, spec["day"])
    if spec["after_close"] and first < len(sessions) and sessions[first] == spec["day"]:
        first += 1
    return first


def _end_session(state: SymbolState, decision_id: str, elapsed: int) -> str | None:
    sessions = sorted(state.bars)
    first = _first_bar(sessions, state.tracked[decision_id])
    return sessions[first + elapsed - 1] if elapsed else None


def _baseline_start(state: SymbolState, decision_id: str, cfg: TrackerConfig) -> str:
    day = state.tracked[decision_id]["day"]
    before = sorted(s for s in state.bars if s < day)[-cfg.baseline_sessions:]
    return before[0] if before else day
