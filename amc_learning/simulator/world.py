"""A seeded market with discovery, thesis and trading on top, and planted ground truth.

Each symbol's daily log return is `beta * index_return + alpha + noise`, where the index
return is the real NASDAQ Composite's and `alpha` is the planted effect: every one of the
six discovery score components adds `PlantedEffects.component_alpha[c] * (score - 0.5)`
to that day's expected return. Scores follow a persistent AR(1) process, so today's
scores also predict the next days. The thesis step turns the true win probability into a
confidence that is deliberately miscalibrated (`overconfidence`), so calibration has
something real to find. Everything is a pure function of (seed, start, days): the world
always begins at `ORIGIN` and fast-forwards, so consecutive runs continue one another.

The trading rules and how trading reads its params are in `simulator.trading`, the
ledger of what it earned in `simulator.ledger`, the tiered world's states (`run
--producer amc-trader`) in `simulator.tiered`. What stays here (about 550 lines) is one
`World.step`: the market, the services' events of a session, the open positions and the
fallback's counterfactual advance together from one random stream, so they stay together.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from amc_learning.schemas.catalysts import CatalystKind, CatalystObserved
from amc_learning.schemas.common import (
    DecisionSource,
    Direction,
    Event,
    ExitReason,
    FillType,
    Scaled,
    ScoringModel,
    Side,
    Tier,
)
from amc_learning.schemas.discovery import SCORE_COMPONENTS, CandidateScored, ScoreComponents
from amc_learning.schemas.models import TieredModel
from amc_learning.schemas.params import AdaptiveParams, TieredParams
from amc_learning.schemas.prices import PriceBarClosed
from amc_learning.schemas.thesis import MarketConditions, ThesisDecided, ThesisExpectation
from amc_learning.schemas.trades import TradeFilled
from amc_learning.simulator.ledger import COUNTERFACTUAL, Entry, Ledger
from amc_learning.simulator.market import IndexHistory, load_history
from amc_learning.simulator.tiered import TieredConfig, TierStates, truth
from amc_learning.simulator.trading import (
    DEFAULT_LIMIT_PCT,
    FALLBACK_VIEW,
    Bars,
    Position,
    TradingPolicy,
    arm,
    decision,
    exit_of,
    open_position,
    position_size,
    with_params,
)
from amc_learning.streams.params import ParamsReader, ParamsView

ORIGIN = date(2013, 1, 2)
#: the tiered world's daily alpha per point of a symbol's true net score over the
#: session's mean, as the tiered experiment plants it
RETURN_PER_POINT = TieredConfig().return_per_point
#: Sessions a thesis looks ahead: its horizon, and the ledger's mark-to-market.
HORIZON = 7
DEFAULT_START = date(2014, 1, 2)
INDEX_SYMBOL = "^IXIC"
VIX_SYMBOL = "^VIX"
PRODUCERS = {"discovery": "sim-discovery", "thesis": "sim-thesis", "trades": "sim-trading",
             "prices": "sim-market-data", "news": "sim-news"}
SECTORS = ("technology", "healthcare", "financials", "energy", "consumer", "industrials",
           "materials", "utilities")
CATALYSTS: tuple[CatalystKind, ...] = ("earnings", "fda_decision", "contract_award",
                                       "product_launch", "guidance")
_NAMESPACE = uuid.UUID("6f1c1f0e-7c53-4a8e-9a57-2f0b8f1f6a10")


@dataclass(frozen=True)
class PlantedEffects:
    """The ground truth learning should recover (see the module docstring)."""

    component_alpha: dict[str, float] = field(default_factory=lambda: {
        "volume_momentum": 0.004, "squeeze": 0.002, "catalyst": 0.006,
        "options": 0.0, "technical": -0.002, "sentiment": 0.0,
    })
    score_persistence: float = 0.9
    overconfidence: float = 1.8


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    symbols: int = 200
    start: date = DEFAULT_START
    days: int = 250
    effects: PlantedEffects = field(default_factory=PlantedEffects)
    policy: TradingPolicy = field(default_factory=TradingPolicy)


class World:
    """The state of the simulated market, advanced one session at a time."""

    def __init__(
        self, config: SimConfig, history: IndexHistory | None = None,
        params: ParamsReader | None = None, params_name: str = "default",
        scanner: TieredModel | None = None,
    ) -> None:
        self.cfg = config
        #: with a reader, trading reads its parameters exactly as a trading engine would
        self.params, self.params_name = params, params_name
        #: a points scanner (`run --producer amc-trader`: AMC-Trader's 3.3.1): the planted
        #: truth is the tiered world's (`simulator.tiered`: each factor's tier, some shipped
        #: points wrong), discovery scores with the scanner's own table
        #: (`ParamsReader.table`), the thesis side with the engine's own set; a decision's
        #: arm is the table's version
        self.scanner = scanner
        self.tiers = (TierStates(scanner, np.random.default_rng([config.seed, 31]),
                                 config.symbols) if scanner is not None else None)
        self.truth = truth(scanner) if scanner is not None else {}
        #: decisions per arm, and (with a reader) what each arm and the fallback earned
        self.params_used: Counter[str] = Counter()
        self.ledger = Ledger(horizon=HORIZON)
        self.hist = history or load_history()
        self.rng = np.random.default_rng(config.seed)
        n = config.symbols
        self.symbols = _tickers(self.rng, n)
        self.sectors = [SECTORS[i] for i in self.rng.integers(0, len(SECTORS), n)]
        self.beta = self.rng.uniform(0.6, 1.6, n)
        self.sigma = self.rng.uniform(0.01, 0.035, n)
        self.base_volume = np.exp(self.rng.uniform(np.log(2e5), np.log(2e7), n))
        self.close = np.exp(self.rng.uniform(np.log(5.0), np.log(300.0), n))
        self.latent = self.rng.standard_normal((n, len(SCORE_COMPONENTS)))
        # Catalysts draw from their own stream, so the market above stays as it was.
        self.catalyst_rng = np.random.default_rng([config.seed, 1])
        kinds = self.catalyst_rng.integers(0, len(CATALYSTS), n)
        self.catalyst_kind = [CATALYSTS[k] for k in kinds]
        self.returns: list[np.ndarray] = []
        self.positions: dict[int, Position] = {}
        self.t = self.hist.index_of(ORIGIN)

    # -- the pure market step -----------------------------------------------------------

    def scores(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-1.3 * self.latent))

    def _evolve_scores(self) -> None:
        phi = self.cfg.effects.score_persistence
        shock = self.rng.standard_normal(self.latent.shape)
        self.latent = phi * self.latent + math.sqrt(1 - phi * phi) * shock

    def expected_alpha(self, scores: np.ndarray) -> np.ndarray:
        coef = np.array([self.cfg.effects.component_alpha.get(c, 0.0) for c in SCORE_COMPONENTS])
        return (scores - 0.5) @ coef

    def step(self, emit: bool) -> list[Event]:
        """Advance one session; return its events when `emit`, else only update the state."""
        t = self.t
        self._evolve_scores()
        scores = self.scores()
        prev_close = self.close.copy()
        index_ret = math.log(self.hist.close[t] / self.hist.close[t - 1])
        noise = self.rng.standard_normal((4, len(self.symbols)))
        if self.tiers is not None:  # the scanner's planted truth, not the components'
            self.tiers.evolve()
            true = self.tiers.points(self.truth)
            alpha = RETURN_PER_POINT * (true - true.mean())
        else:
            alpha = self.expected_alpha(scores)
        ret = self.beta * index_ret + alpha + self.sigma * noise[0]
        gap = 0.3 * ret + 0.2 * self.sigma * noise[1]
        open_ = prev_close * np.exp(gap)
        close = prev_close * np.exp(ret)
        high = np.maximum(open_, close) * np.exp(np.abs(0.5 * self.sigma * noise[2]))
        low = np.minimum(open_, close) * np.exp(-np.abs(0.5 * self.sigma * noise[3]))
        volume = self.base_volume * np.exp(0.3 * self.rng.standard_normal(len(self.symbols)))
        volume *= 1.0 + 2.0 * scores[:, 0]
        manual = self.rng.random(len(self.symbols)) < self.cfg.policy.manual_exit_prob
        confidence_noise = self.rng.normal(0.0, 0.25, len(self.symbols))
        source_draw = self.rng.random(len(self.symbols))
        draw = self.catalyst_rng.random(len(self.symbols))
        catalysts = draw < catalyst_probability(scores[:, 2])
        bars = Bars(open_, high, low, close, volume)
        day = _Day(t, scores, prev_close, bars, manual, confidence_noise, source_draw, catalysts,
                   alpha)
        events = self._events(day) if emit else []
        self._trade(day, events if emit else None)
        if emit and self.params is not None:
            self.ledger.close(t, close)
        self.close = close
        self.returns.append(ret)
        self.t += 1
        return events

    # -- events -------------------------------------------------------------------------

    def _events(self, day: _Day) -> list[Event]:
        session = self.hist.sessions[day.t]
        conditions = self.hist.conditions(day.t)
        events: list[Event] = []
        if self.params is not None:
            self.ledger.live[day.t] = arm(self._discovery_view())
            self._counterfactual(day, session)
        for candidate in self._discovery(day, session):
            events.append(candidate)
            if candidate.passed:
                events.append(self._decide(day, session, candidate, conditions, record=True))
        events.extend(self._bars(day, session))
        events.extend(
            CatalystObserved(
                event_id=_uid(self.cfg.seed, "catalyst", self.symbols[i], session),
                occurred_at=_at(session, time(12, 0)), producer=PRODUCERS["news"],
                symbol=self.symbols[i], session=session, kind=self.catalyst_kind[i],
                headline=f"{self.symbols[i]}: {self.catalyst_kind[i].replace('_', ' ')}",
                magnitude=round(float(day.scores[i, 2]), 4),
            )
            for i in np.flatnonzero(day.catalysts)
        )
        return events

    def _discovery_view(self, decision_key: str | None = None) -> ParamsView[Any]:
        """The params discovery scores with: the scanner's own, else the engine's set."""
        assert self.params is not None
        if self.scanner is not None:
            return self.params.table(self.scanner, decision_key)
        return self.params.get(self.params_name, decision_key)

    def _shortlist(self, day: _Day, params: AdaptiveParams | TieredParams | None
                   ) -> tuple[np.ndarray, np.ndarray, float]:
        """(composite scores, the run's candidates best first, threshold) under `params`'
        weights and threshold (the policy's own without params); under a points table,
        each symbol's net score and the table's entry threshold, on its scale, and every
        symbol that clears it (AMC-Trader's scanner writes each one)."""
        policy = self.cfg.policy
        if isinstance(params, TieredParams) and self.tiers is not None:
            net = self.tiers.points(params.tables)
            order = np.argsort(-net, kind="stable")
            return net, order[net[order] >= params.entry_threshold], params.entry_threshold
        weights, threshold = np.array(policy.discovery_weights), policy.discovery_threshold
        if isinstance(params, AdaptiveParams):
            weights = np.array([getattr(params.scoring_weights, c) for c in SCORE_COMPONENTS])
            threshold = params.discovery_threshold
        composite = day.scores @ weights
        return composite, np.argsort(-composite)[: policy.candidates_per_run], threshold

    def _discovery(self, day: _Day, session: date) -> list[CandidateScored]:
        live: AdaptiveParams | TieredParams | None = (
            self._discovery_view().params if self.params is not None
            else TieredParams.declared(self.scanner) if self.scanner is not None else None)
        composite, order, threshold = self._shortlist(day, live)
        run_id = f"disc-{self.cfg.seed}-{session.isoformat()}"
        features = self._features(day)
        out = []
        for rank, i in enumerate(order, start=1):
            symbol = self.symbols[i]
            scored: dict[str, Any] = {}
            if self.scanner is not None and isinstance(live, TieredParams):
                assert self.tiers is not None
                scale = self.scanner.scale
                raw = Scaled(value=float(composite[i]), low=scale.low, high=scale.high)
                scored = dict(
                    schema_version=2, raw_score=raw,
                    scoring_model=ScoringModel(name=self.scanner.name,
                                               version=self.scanner.version),
                    tiers={f: Tier(tier=tier, points=live.tables[f][tier])
                           for f, tier in self.tiers.of(int(i)).items()})
            out.append(CandidateScored(
                event_id=_uid(self.cfg.seed, "candidate", symbol, session),
                occurred_at=_at(session, time(13, 30)),
                producer=PRODUCERS["discovery"],
                run_id=run_id, symbol=symbol, rank=rank,
                composite_score=round(float(scored["raw_score"].normalised if scored
                                            else composite[i]), 6),
                threshold=None if scored else threshold,
                # handed to the thesis: it clears the bar, and is among the best (a
                # scanner's candidates may be many; the rest are tracked undecided)
                passed=bool(composite[i] >= threshold
                            and rank <= self.cfg.policy.candidates_per_run),
                scores=ScoreComponents(**{
                    c: round(float(day.scores[i, k]), 6) for k, c in enumerate(SCORE_COMPONENTS)
                }),
                features=features[i],
                price=round(float(day.prev_close[i]), 4),
                **scored,
            ))
        return out

    def _features(self, day: _Day) -> list[dict[str, float]]:
        """Observable features: what a discovery service could have measured premarket."""
        recent = np.array(self.returns[-20:]) if self.returns else np.zeros((1, len(self.symbols)))
        vol20 = recent.std(axis=0) * math.sqrt(252)
        ret5 = recent[-5:].sum(axis=0)
        s = day.scores
        return [
            {
                "relative_volume": round(float(1.0 + 3.0 * s[i, 0]), 4),
                "short_interest_pct": round(float(2.0 + 38.0 * s[i, 1]), 4),
                "catalyst_strength": round(float(s[i, 2]), 4),
                "iv_percentile": round(float(100.0 * s[i, 3]), 4),
                "rsi_14": round(float(20.0 + 60.0 * s[i, 4]), 4),
                "sentiment": round(float(2.0 * s[i, 5] - 1.0), 4),
                "beta": round(float(self.beta[i]), 4),
                "realized_vol_20d": round(float(vol20[i]), 6),
                "return_5d": round(float(ret5[i]), 6),
            }
            for i in range(len(self.symbols))
        ]

    def _confidence(self, day: _Day, i: int) -> tuple[float, float]:
        """(the thesis confidence, the true win probability) of symbol `i` today."""
        drift = float(day.alpha[i]) * HORIZON
        p_true = _normal_cdf(drift / (self.sigma[i] * math.sqrt(HORIZON)))
        logit = math.log(max(p_true, 1e-6) / max(1 - p_true, 1e-6))
        confidence = _sigmoid(self.cfg.effects.overconfidence * logit + day.confidence_noise[i])
        return confidence, p_true

    def _counterfactual(self, day: _Day, session: date) -> None:
        """What the fallback params would have traded today on their own discovery run:
        the ledger's paired arm (`simulator.ledger`)."""
        fallback = (TieredParams.declared(self.scanner) if self.scanner is not None
                    else FALLBACK_VIEW.params)
        composite, order, threshold = self._shortlist(day, fallback)
        for i in order[: self.cfg.policy.candidates_per_run]:
            if composite[i] < threshold:
                continue
            used, policy, limit = with_params(FALLBACK_VIEW, self._confidence(day, i)[0],
                                              self.cfg.policy)
            decided = decision(used, policy)
            if decided in ("BUY", "SELL"):
                self.ledger.add(Entry(day.t, session, COUNTERFACTUAL, int(i),
                                      1.0 if decided == "BUY" else -1.0,
                                      position_size(used, limit), float(day.bars.open[i])))

    def _decide(
        self, day: _Day, session: date, c: CandidateScored, conditions: MarketConditions,
        record: bool = False,
    ) -> ThesisDecided:
        """The thesis on a passed candidate, under the params the reader hands out for its
        decision key; `record`: count it and enter it in the ledger (emitted sessions)."""
        i = self.symbols.index(c.symbol)
        policy = self.cfg.policy
        confidence, p_true = self._confidence(day, i)
        decision_id = _decision_id(self.cfg.seed, c.symbol, session)
        used, limit, note, label = confidence, DEFAULT_LIMIT_PCT, "", ""
        version, mode = None, None
        if self.params is not None:  # the same decision key always lands in the same arm
            view = self.params.get(self.params_name, decision_id)
            # the version a decision names: the scanner's table that passed it, where a
            # scanner reads its own (its decisions' arm), else the engine's set
            named = view if self.scanner is None else self._discovery_view()
            label = arm(named)
            if named.source == "published":
                version, mode = named.version, named.mode
            used, policy, limit = with_params(view, confidence, policy)
            note = f"; params {view.source} v{view.version} {view.mode or ''}".rstrip()
        decided = decision(used, policy)
        price = float(day.bars.open[i])
        direction: Direction = "UP" if decided == "BUY" else "DOWN" if decided == "SELL" \
            else "FLAT"
        sign = {"UP": 1.0, "DOWN": -1.0}.get(direction, 0.0)
        size = 0.0
        if decided in ("BUY", "SELL"):
            size = position_size(used, limit)
        if record and self.params is not None:
            self.params_used[label] += 1
            if label != self.ledger.live.get(day.t, label):
                self.ledger.other_arms[day.t] += 1
            if size:
                self.ledger.add(Entry(day.t, session, label, i, sign, size, price))
        source_draw = day.source_draw[i]
        source: DecisionSource = ("thesis" if source_draw < 0.85 else "discovery"
                                  if source_draw < 0.95 else "manual")
        scores = c.scores
        assert scores is not None  # the simulated scanner scores every component
        catalyst = self.catalyst_kind[i] if scores.catalyst > 0.7 else None
        return ThesisDecided(
            event_id=_uid(self.cfg.seed, "decision", c.symbol, session),
            occurred_at=_at(session, time(14, 35)),
            producer=PRODUCERS["thesis"],
            decision_id=decision_id,
            symbol=c.symbol, decision_type=decided, decision_source=source,
            confidence_score=round(confidence, 6), entry_price=round(price, 4),
            position_size_pct=size, discovery_run_id=c.run_id,
            discovery_timestamp=c.occurred_at, discovery_scores=c.scores,
            discovery_features=c.features,
            thesis=ThesisExpectation(
                expected_direction=direction,
                horizon_days=HORIZON,
                target_price=round(price * (1 + sign * policy.profit_target), 4) if sign else None,
                stop_price=round(price * (1 - sign * policy.stop_loss), 4) if sign else None,
                expected_catalyst=catalyst, catalyst_window_days=5 if catalyst else None,
                expected_volume_ratio=round(1.0 + 2.0 * scores.volume_momentum, 4),
                rationale=f"composite {c.composite_score:.3f}, rank {c.rank}",
            ),
            market_conditions=conditions.model_copy(update={"sector": self.sectors[i]}),
            reasoning=f"simulated thesis: p_true={p_true:.3f}{note}",
            params_version=version, params_mode=mode,  # type: ignore[arg-type]
        )

    def _bars(self, day: _Day, session: date) -> list[PriceBarClosed]:
        at = _at(session, time(21, 0))
        bars = [
            PriceBarClosed(
                event_id=_uid(self.cfg.seed, "bar", symbol, session), occurred_at=at,
                producer=PRODUCERS["prices"], symbol=symbol, session=session,
                open=round(float(day.bars.open[i]), 4), high=round(float(day.bars.high[i]), 4),
                low=round(float(day.bars.low[i]), 4), close=round(float(day.bars.close[i]), 4),
                volume=round(float(day.bars.volume[i])),
            )
            for i, symbol in enumerate(self.symbols)
        ]
        h, t = self.hist, day.t
        bars.append(PriceBarClosed(
            event_id=_uid(0, "bar", INDEX_SYMBOL, session), occurred_at=at,
            producer=PRODUCERS["prices"], symbol=INDEX_SYMBOL, session=session,
            open=float(h.open[t]), high=float(h.high[t]), low=float(h.low[t]),
            close=float(h.close[t]), volume=float(h.volume[t]),
        ))
        vix = round(self.hist.vix_at(t), 4)
        bars.append(PriceBarClosed(
            event_id=_uid(0, "bar", VIX_SYMBOL, session), occurred_at=at,
            producer=PRODUCERS["prices"], symbol=VIX_SYMBOL, session=session,
            open=vix, high=vix, low=vix, close=vix, volume=0.0,
        ))
        return bars

    # -- trading ------------------------------------------------------------------------

    def _trade(self, day: _Day, events: list[Event] | None) -> None:
        """Enter on today's BUY/SELL decisions, exit on stops, targets, time or by hand."""
        session = self.hist.sessions[day.t]
        policy = self.cfg.policy
        for i, position in list(self.positions.items()):
            exit_ = exit_of(position, day.t, day.bars, bool(day.manual[i]), i, policy)
            if exit_ is None:
                continue
            reason, price = exit_
            del self.positions[i]
            if events is not None:
                events.append(self._fill(position, session, "EXIT", price, reason))
        if events is None:
            self._enter_silently(day)
            return
        for event in list(events):
            if isinstance(event, ThesisDecided) and event.decision_type in ("BUY", "SELL"):
                i = self.symbols.index(event.symbol)
                if i in self.positions:
                    continue
                position = open_position(event, i, day.t, policy)
                self.positions[i] = position
                events.append(self._fill(position, session, "ENTRY", position.entry_price, None))

    def _enter_silently(self, day: _Day) -> None:
        """While fast-forwarding, positions still open and close as they would have."""
        session = self.hist.sessions[day.t]
        conditions = self.hist.conditions(day.t)
        for candidate in self._discovery(day, session):
            if not candidate.passed:
                continue
            thesis = self._decide(day, session, candidate, conditions)
            i = self.symbols.index(thesis.symbol)
            if thesis.decision_type in ("BUY", "SELL") and i not in self.positions:
                self.positions[i] = open_position(thesis, i, day.t, self.cfg.policy)

    def _fill(
        self, p: Position, session: date, kind: FillType, price: float,
        reason: ExitReason | None
    ) -> TradeFilled:
        entry = kind == "ENTRY"
        side: Side = p.side if entry else ("SELL" if p.side == "BUY" else "BUY")
        return TradeFilled(
            event_id=_uid(self.cfg.seed, f"fill-{kind}", p.trade_id, session),
            occurred_at=_at(session, time(14, 40) if entry else time(20, 55)),
            producer=PRODUCERS["trades"], fill_id=f"{p.trade_id}-{kind.lower()}",
            trade_id=p.trade_id, decision_id=p.decision_id, symbol=self.symbols[p.symbol],
            fill_type=kind, side=side, quantity=p.quantity, price=round(price, 4),
            position_size_pct=p.size_pct, exit_reason=reason,
        )


@dataclass(frozen=True)
class _Day:
    t: int
    scores: np.ndarray
    prev_close: np.ndarray
    bars: Bars
    manual: np.ndarray
    confidence_noise: np.ndarray
    source_draw: np.ndarray
    catalysts: np.ndarray
    #: each symbol's planted expected return today
    alpha: np.ndarray


def simulate(
    config: SimConfig, history: IndexHistory | None = None, world: World | None = None
) -> Iterator[list[Event]]:
    """Yield the events of each session from `config.start`, one list per session."""
    world = world or World(config, history)
    first = world.hist.index_of(config.start)
    if first - world.t < 30:
        raise ValueError(f"start must be at least 30 sessions after {ORIGIN}")
    available = len(world.hist.sessions) - first
    if config.days > available:
        raise ValueError(
            f"only {available} sessions of history from {world.hist.sessions[first]} "
            f"(until {world.hist.sessions[-1]}); ask for fewer days or an earlier start"
        )
    while world.t < first:
        world.step(emit=False)
    for _ in range(config.days):
        yield world.step(emit=True)


def next_start(last_session: date | None) -> date:
    """Where a run continues: the session after the last one stored, else DEFAULT_START."""
    return DEFAULT_START if last_session is None else last_session + timedelta(days=1)


def catalyst_probability(catalyst_score: np.ndarray) -> np.ndarray:
    """Chance of a catalyst in one session: the catalyst score is genuinely predictive."""
    return 0.01 + 0.3 * catalyst_score**2


def _tickers(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        ticker = "".join(rng.choice(letters, int(rng.integers(3, 5))))
        if ticker not in seen:
            seen.add(ticker)
            out.append(ticker)
    return out


def _uid(seed: int, kind: str, key: str, session: date) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{seed}/{kind}/{key}/{session.isoformat()}")


def _decision_id(seed: int, symbol: str, session: date) -> str:
    return f"dec-{seed}-{session.isoformat()}-{symbol}"


def _at(session: date, clock: time) -> datetime:
    return datetime.combine(session, clock, tzinfo=UTC)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
