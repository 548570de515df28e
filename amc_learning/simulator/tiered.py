"""A tiered world: AMC-Trader's scanner 3.3.1 with planted tier effects.

Every (session, symbol) is a candidate the scanner scored, passed or not: each factor of
the shipped declaration is in one of its tiers (a persistent AR(1) latent, φ = 0.9, cut
into the tiers at fixed shares, so a stock keeps its tier for days), in no tier
(`UNTIERED`: AMC-Trader's coil score 0, its power hour), or missing (a catalyst not read:
`missing_share` of rows). The planted truth is a points table: the shipped one with some
tiers wrong in sign or size (`PLANTED`, as a table tuned by hand after anecdotes would
be), and a candidate's daily alpha is `return_per_point` times its true net score
against the session's mean. The static table is the shipped one: it is mostly right,
and costs what its planted errors cost.

The frame is the one the points fit reads (`book.TIER` columns, the 7-session return),
one row per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from scipy.special import ndtri

from amc_learning.schemas.models import TIER, UNTIERED, TieredModel, declared_table, shipped
from amc_learning.simulator.research import forward, persistent, sessions_calendar

HORIZON = 7
#: (factor, tier) -> the points the planted truth gives it, where the shipped table is wrong
PLANTED: dict[tuple[str, str], int] = {
    ("momentum", "late"): -25,  # chasing: shipped +5
    ("gap", "huge"): -15,  # a huge gap fades: shipped +20
    ("float", "ultra_tiny"): 20,  # oversold as a signal: shipped 60
    ("catalyst", "neutral"): -15,  # news read as neutral is sold: shipped +10
    ("vwap", "above_with_volume"): 45,  # better than shipped 20
    ("chase_risk", "high_moved"): 0,  # harmless: shipped -25
    ("squeeze", "extreme"): 0,  # shipped 30
    ("multiday", "ideal"): 45,  # shipped 20
}
#: a factor's share of candidates in no tier (the rest split among its tiers)
UNTIERED_SHARE = {"coil_spring": 0.7, "entry_timing": 0.15, "vwap": 0.4, "vigl": 0.5,
                  "volume_explosive": 0.3}


@dataclass(frozen=True)
class TieredConfig:
    seed: int = 0
    #: the scanned universe: the smallest (in steps of 150) on which the planted table
    #: beats the shipped one by a mean paired z of 3 over the judged year (decisions 014, 016)
    symbols: int = 300
    sessions: int = 504  # two years: the first to learn, the second judged
    return_per_point: float = 0.00004  # daily alpha per point of true net score
    sigma: float = 0.02
    missing_share: float = 0.1
    noise_only: bool = False


def model() -> TieredModel:
    found = next(m for m in shipped() if m.name == "amc-scanner" and m.version == "3.3.1")
    assert isinstance(found, TieredModel)
    return found


def truth(declared: TieredModel) -> dict[str, dict[str, int]]:
    """The planted points table: the declared one with `PLANTED` in place."""
    table = declared_table(declared)
    for (factor, tier), points in PLANTED.items():
        table[factor][tier] = points
    return table


def _shares(factor: str, tiers: int) -> np.ndarray:
    """The share of candidates in each tier, then in no tier: the last tier (the
    common, plain state) holds 40 % of those tiered, the others share the rest."""
    untiered = UNTIERED_SHARE.get(factor, 0.0)
    inner = np.full(tiers, 0.6 / max(tiers - 1, 1)) if tiers > 1 else np.ones(1)
    if tiers > 1:
        inner[-1] = 0.4
    return np.append(inner / inner.sum() * (1 - untiered), untiered)


def simulate_tiered(cfg: TieredConfig) -> pl.DataFrame:
    """One row per (session, symbol): each factor's tier, and the 7-session return."""
    declared = model()
    planted = truth(declared)
    rng = np.random.default_rng([cfg.seed, 31])
    t_n, s_n = cfg.sessions, cfg.symbols
    columns: dict[str, np.ndarray] = {}
    true_score = np.zeros((t_n, s_n))
    for factor in declared.factors:
        latent = persistent(rng, t_n, (s_n,), 0.9)
        names = [t.name for t in factor.tiers] + [UNTIERED]
        cuts = ndtri(np.cumsum(_shares(factor.name, len(factor.tiers)))[:-1])
        index = np.searchsorted(cuts, latent)
        states = np.array(names, dtype=object)[index]
        points = np.array([planted[factor.name].get(n, 0) for n in names])[index]
        missing = rng.random((t_n, s_n)) < (cfg.missing_share if factor.name == "catalyst"
                                            else 0.0)
        states[missing] = None
        true_score += np.where(missing, 0, points)
        columns[TIER.format(factor.name)] = states.ravel()
    alpha = (0.0 if cfg.noise_only else cfg.return_per_point) * (
        true_score - true_score.mean(axis=1, keepdims=True))
    market = 0.0003 + 0.01 * rng.standard_normal(t_n)
    daily = np.zeros((t_n, s_n))
    daily[1:] = market[1:, None] + alpha[:-1] + cfg.sigma * rng.standard_normal((t_n - 1, s_n))
    cum = np.vstack([np.zeros((1, s_n)), np.cumsum(daily, axis=0)])
    fwd = forward(cum, HORIZON)
    calendar = np.array(sessions_calendar(date(2016, 1, 4), t_n), dtype="datetime64[D]")
    return pl.DataFrame({
        "session_index": np.repeat(np.arange(t_n), s_n),
        "session": np.repeat(calendar, s_n),
        "symbol": np.tile([f"S{i:04d}" for i in range(s_n)], t_n),
        **{name: pl.Series(name, values.tolist(), dtype=pl.String)
           for name, values in columns.items()},
        f"return_{HORIZON}d": fwd.ravel(),
    }).with_columns(pl.col("session").cast(pl.Date), pl.col(f"return_{HORIZON}d").fill_nan(None))


class TierStates:
    """The tiered world one session at a time (the main job's `run --producer
    amc-trader`): each factor of `declared` a persistent latent per symbol (AR(1), φ 0.9),
    cut into its tiers at the shares `simulate_tiered` uses; the catalyst missing for a
    `missing_share` of symbols each session."""

    def __init__(self, declared: TieredModel, rng: np.random.Generator, symbols: int,
                 missing_share: float = 0.1) -> None:
        self.declared, self.rng, self.missing_share = declared, rng, missing_share
        self.names = [[t.name for t in f.tiers] + [UNTIERED] for f in declared.factors]
        self.cuts = [ndtri(np.cumsum(_shares(f.name, len(f.tiers)))[:-1])
                     for f in declared.factors]
        self.latent = rng.standard_normal((len(declared.factors), symbols))
        self.states: list[np.ndarray] = []
        self.evolve(fresh=True)

    def evolve(self, fresh: bool = False) -> None:
        """The next session's states (`fresh`: this session's, from the latent as it is)."""
        if not fresh:
            shock = self.rng.standard_normal(self.latent.shape)
            self.latent = 0.9 * self.latent + np.sqrt(1 - 0.81) * shock
        missing = self.rng.random(self.latent.shape[1]) < self.missing_share
        self.states = []
        for k, factor in enumerate(self.declared.factors):
            states = np.array(self.names[k], dtype=object)[np.searchsorted(self.cuts[k],
                                                                           self.latent[k])]
            if factor.name == "catalyst":
                states[missing] = None
            self.states.append(states)

    def points(self, tables: dict[str, dict[str, int]]) -> np.ndarray:
        """Each symbol's net score under `tables` (no points for a missing factor, or one
        in no tier)."""
        total = np.zeros(self.latent.shape[1])
        for factor, states in zip(self.declared.factors, self.states, strict=True):
            table = tables.get(factor.name, {})
            total += np.array([table.get(s, 0) if s is not None else 0 for s in states])
        return total

    def of(self, i: int) -> dict[str, str]:
        """Symbol `i`'s tier per factor, where it is in one."""
        return {f.name: str(s[i]) for f, s in zip(self.declared.factors, self.states,
                                                  strict=True)
                if s[i] is not None and s[i] != UNTIERED}
