"""One analysis pass — read what was knowable, analyse — for the learner's cycles,
`amc-learning analyze` and `replay --recompute` alike; the caller stores it in its unit of
work (`uow.results.store`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

import polars as pl

from amc_learning.intelligence.analysis import (
    SIGNATURE,
    Analysis,
    AnalysisConfig,
    analyze,
)
from amc_learning.intelligence.horizon import Horizons, Market
from amc_learning.store.database import Database, UnitOfWork
from amc_learning.store.frames import feature_columns

#: The engine's own contract: decisions and candidates that name no scoring model.
NATIVE = "native"
#: Contract-v2 decisions no scoring model informed (a held position's HOLD, a lesson).
UNSCORED = "unscored"
#: The sessions whose decisions say which scoring model is in use now.
RECENT_SESSIONS = 20


class UnknownModel(ValueError):
    """No decision of the scoring model asked for is stored."""


class NotEnoughHistory(ValueError):
    """Too few sessions with complete outcomes before the as-of date for a pass."""


@dataclass(frozen=True)
class Inputs:
    """What a pass reads: the decisions of one scoring model with their outcomes, the
    index bars, and the horizon judged (one of the tracker's `horizons`; default the
    middle one). Learning never mixes models: patterns, calibration and weights learned
    from one model's scores say nothing of another's."""

    decisions: pl.DataFrame
    index: pl.DataFrame
    horizon: int
    scoring_model: str = NATIVE

    @classmethod
    def read(cls, uow: UnitOfWork, horizons: Horizons, market: Market,
             horizon: int | None = None, scoring_model: str | None = None) -> Inputs:
        """`scoring_model`: "name version", or "native"; None: the one in use now
        (`scoring_models`)."""
        horizon = horizons[1] if horizon is None else horizon
        return cls.of(uow.frames.decisions(horizons, horizon), uow.frames.index(market),
                      horizon, scoring_model)

    @classmethod
    def of(cls, frame: pl.DataFrame, index: pl.DataFrame, horizon: int,
           scoring_model: str | None = None) -> Inputs:
        """`read`, on a decision frame and index bars read already."""
        models = scoring_models(frame)
        model = scoring_model or (next(iter(models)) if models else NATIVE)
        if scoring_model is not None and models and scoring_model not in models:
            raise UnknownModel(f"no decisions of the scoring model {scoring_model!r} are "
                             f"stored (there are: {', '.join(models)})")
        if not frame.is_empty():
            frame = frame.filter(pl.col("scoring_model") == model)
        return cls(frame, index, horizon, model)

    def config(self, signature: tuple[str, ...] = SIGNATURE) -> AnalysisConfig:
        return AnalysisConfig(features=tuple(feature_columns(self.decisions)),
                              signature_features=signature, horizon=self.horizon)


def scoring_models(frame: pl.DataFrame, recent: int = RECENT_SESSIONS) -> dict[str, int]:
    """The scoring models in a decision frame, each with its real (not synthetic)
    decisions; first the one behind the most real decisions of the last `recent`
    sessions (the scanner in use now: a new version takes over as soon as it decides
    more), then by all decisions, then by name; "unscored" (decisions no model informed)
    last."""
    if frame.is_empty():
        return {}
    sessions = frame["session"].unique().sort()
    since = sessions[max(0, len(sessions) - recent)]
    real = ~pl.col("is_synthetic")
    counts = frame.group_by("scoring_model").agg(
        (real & (pl.col("session") >= since)).sum().alias("recent"), real.sum().alias("n"),
        pl.len().alias("all"))
    ordered = counts.with_columns(scored=pl.col("scoring_model") != UNSCORED).sort(
        ["scored", "recent", "n", "all", "scoring_model"],
        descending=[True, True, True, True, False])
    return dict(zip(ordered["scoring_model"], ordered["n"], strict=True))


def active_models(frame: pl.DataFrame, recent: int = RECENT_SESSIONS) -> list[str]:
    """The scoring models with a decision (real or a candidate's) in the last `recent`
    sessions, in `scoring_models`' order, "unscored" left out: the models a cycle
    learns, each its own param set."""
    if frame.is_empty():
        return []
    sessions = frame["session"].unique().sort()
    since = sessions[max(0, len(sessions) - recent)]
    seen = set(frame.filter(pl.col("session") >= since)["scoring_model"].unique().to_list())
    return [m for m in scoring_models(frame, recent) if m in seen and m != UNSCORED]


def analysis_pass(inputs: Inputs, as_of: date,
                  config: AnalysisConfig | None = None) -> Analysis:
    """Analyse as of `as_of`. Raises NotEnoughHistory when the window holds too little to
    analyse."""
    try:
        return replace(analyze(inputs.decisions, inputs.index, as_of, config or inputs.config()),
                       scoring_model=inputs.scoring_model)
    except (ValueError, IndexError, pl.exceptions.PolarsError) as exc:
        raise NotEnoughHistory(str(exc)) from exc


def recompute(db: Database, since: date | None, until: date | None,
              say: Callable[[str], None], horizons: Horizons, market: Market) -> list[date]:
    """Rerun the analysis pass of the learning cycles for a period: as of the last stored
    session of every week in [since, until).

    The params side of the cycles is left alone on purpose: publishing versions for past
    dates to the params topic the trading engine reads could only hurt trading."""
    with db.unit_of_work(snapshot=True) as uow:
        inputs = Inputs.read(uow, horizons, market)
    if inputs.decisions.is_empty() or inputs.index.is_empty():
        say("recompute: no decisions with outcomes or no index bars: nothing to analyse")
        return []
    sessions = inputs.index.filter(
        (pl.lit(since).is_null() | (pl.col("session") >= since))
        & (pl.lit(until).is_null() | (pl.col("session") < until)))["session"]
    weeks = sessions.to_frame().group_by(pl.col("session").dt.truncate("1w")).agg(
        pl.col("session").max())["session"].sort().to_list()
    done = []
    config = inputs.config()
    for as_of in weeks:
        try:
            analysis = analysis_pass(inputs, as_of, config)
        except NotEnoughHistory as exc:
            say(f"recompute: as of {as_of}: skipped ({exc})")
            continue
        with db.unit_of_work() as uow:
            uow.results.store(analysis)
        done.append(as_of)
        say(f"recompute: as of {as_of}: stored")
    return done
