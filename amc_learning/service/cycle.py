"""The learning cycle: daily and weekly, it turns outcomes into published parameters.

A cycle for an as-of session (`run_cycle`), idempotent per (kind, as-of, param set):

1. read, in one unit of work (one snapshot), the decisions whose horizon outcome was
   complete at the as-of date (`known_by`), the versions, the candidates;
2. one analysis pass (`service.analysis`);
3. judge the versions in flight and the live one, and daily, when nothing is in flight,
   fit a candidate version against the incumbent and issue it in shadow
   (`intelligence.cycle.plan`);
5. record the results, the history rows (each published one with its exact message) and
   the cycle in one unit of work; then send the messages (signed,
   `streams.params.publish_params`) and an insight with the cycle's summary through one
   producer, stamping each message as sent;
6. daily: write the intelligence report (`service.report`).

The history is the params topic's outbox (ARCHITECTURE.md): a crash after the record
leaves unsent rows that the next cycle sends first, exactly as recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, get_args

import polars as pl

from amc_learning.intelligence import cycle
from amc_learning.intelligence.adaptive import Guardrails
from amc_learning.intelligence.analysis import Analysis, known_by
from amc_learning.intelligence.book import Params
from amc_learning.intelligence.components import ComponentGuardrails, fit_components
from amc_learning.intelligence.points import PointsGuardrails, fit_points
from amc_learning.intelligence.quality import stream_health
from amc_learning.intelligence.rollout import RolloutPolicy, Version
from amc_learning.schemas import topics
from amc_learning.schemas.common import Regime
from amc_learning.schemas.models import ComponentModel, TieredModel
from amc_learning.schemas.params import (
    FALLBACK_PARAMS,
    ComponentParams,
    InsightPublished,
    ParamsPublished,
    TieredParams,
    param_set,
)
from amc_learning.service.analysis import (
    NATIVE,
    UNSCORED,
    Inputs,
    NotEnoughHistory,
    active_models,
    analysis_pass,
)
from amc_learning.service.deps import Deps
from amc_learning.service.models import declared, find
from amc_learning.service.prices import waiting
from amc_learning.service.report import write_report
from amc_learning.settings import Settings
from amc_learning.store.database import UnitOfWork
from amc_learning.streams.kafka import stop_client
from amc_learning.streams.params import publish_params

log = logging.getLogger(__name__)

#: Signs and sends a params message through the cycle's producer (a fault test passes
#: its own).
Publish = Callable[..., Coroutine[Any, Any, Any]]
#: The guardrails of a fit: the engine's own, a points table's, a component model's.
AnyGuardrails = Guardrails | PointsGuardrails | ComponentGuardrails
#: The pure steps, here under the names the fault tests replace.
adapt = cycle.adapt


def message(name: str, version: int, mode: str, params: Params, as_of: date,
            provenance: dict[str, Any], ttl_days: float, now: datetime,
            canary_pct: float = 0.0, regime: str = "unknown") -> ParamsPublished:
    """The params message a history entry publishes (issued `now`, valid `ttl_days`)."""
    return ParamsPublished.model_validate(dict(
        name=name, version=version, issued_at=now, valid_until=now + timedelta(days=ttl_days),
        mode=mode, canary_pct=canary_pct,
        regime=regime if regime in get_args(Regime) else "unknown", params=params,
        provenance={**provenance, "as_of": str(as_of)}))


@dataclass(frozen=True)
class Learner:
    """How a scoring model's params are learned: the fit, the fallback (what its reader
    uses while nothing learned is live), the frame the fit reads, and its guardrails."""

    fit: cycle.Fit
    fallback: Params
    frame: pl.DataFrame
    guardrails: Any


@dataclass
class Part:
    """One scoring model's share of a cycle: its param set and what it read."""

    model: str
    name: str
    inputs: Inputs
    versions: list[Version]
    declared: bool
    #: None: nothing is learned for the model (undeclared, unscored, or a kind of model
    #: without a fit yet: `why`)
    learner: Learner | None
    why: str = ""
    done: dict[str, Any] | None = None
    #: its decisions whose outcome was complete at the as-of date
    known: pl.DataFrame | None = None


def run_cycle(deps: Deps, kind: str, as_of: date | None = None,
              policy: RolloutPolicy | None = None,
              publish: Publish = publish_params, *,
              guardrails: AnyGuardrails | tuple[AnyGuardrails, ...] | None = None,
              report: bool = True) -> dict[str, Any]:
    """One daily or weekly cycle of every scoring model active in the last 20 sessions
    (LEARNING_SCORING_MODEL: that model only), each its own param set; returns the first
    model's summary (the stored one on a rerun), with every model's under "models" when
    there are several. `guardrails`: a fit's own, by type (each fit not given one takes
    its defaults). `report`: a daily cycle writes the day's report (a paced simulation
    skips it but on its last session)."""
    settings, db = deps.settings, deps.db
    policy = policy or RolloutPolicy(horizon=settings.learning_horizon)
    send_unsent(deps, publish)  # what an interrupted cycle recorded goes out first
    with db.unit_of_work(snapshot=True) as uow:  # every read of the cycle: one snapshot
        as_of = as_of or uow.frames.last_session(settings.index_symbol)
        if as_of is None:
            return {"kind": kind, "as_of": None, "ran": False,
                    "reason": "no sessions stored yet"}
        frame = uow.frames.decisions(settings.horizons, policy.horizon)
        index = uow.frames.index(settings.market)
        models = ([settings.scoring_model] if settings.scoring_model
                  else active_models(frame) or [NATIVE])
        given = {type(g): g for g in (
            guardrails if isinstance(guardrails, tuple) else (guardrails,)) if g is not None}
        parts = [read_part(uow, settings, kind, as_of, Inputs.of(frame, index, policy.horizon, m),
                       policy, given) for m in models]
        candidates = uow.frames.candidates(as_of)
    summaries: list[dict[str, Any]] = []
    for part in parts:
        if part.done is not None:
            summaries.append({**part.done, "ran": False,
                              "reason": "already ran for this as-of date"})
            continue
        summaries.append({**_cycle(deps, part, kind, as_of, policy, candidates, publish),
                          "ran": True})
    first = summaries[0]
    if kind == "daily" and report and first["ran"]:
        _write_report(deps, as_of, parts[0].inputs.decisions, parts[0].model)
    return {**first, "models": summaries} if len(summaries) > 1 else first


def read_part(uow: UnitOfWork, settings: Settings, kind: str, as_of: date, inputs: Inputs,
              policy: RolloutPolicy, given: dict[type, Any], rerun: bool = False) -> Part:
    """A model's part of the cycle, read in the cycle's unit of work (`rerun`: even when a
    cycle already ran for `as_of`, as a backtest reads it)."""
    model = inputs.scoring_model
    name = param_set(model, settings.params_name)
    done = None if rerun else uow.params.cycle_summary(kind, as_of, name)
    part = Part(model, name, inputs, [], declared(uow, model), None, done=done)
    if done is not None:
        return part
    part.versions = uow.params.versions(name)
    decisions = inputs.decisions
    known = part.known = (known_by(decisions, as_of, policy.horizon)
                          if not decisions.is_empty() else decisions)
    if model == NATIVE:
        part.learner = Learner(adapt, FALLBACK_PARAMS,
                               cycle.learning_frame(known, policy.horizon),
                               given.get(Guardrails) or Guardrails(horizon=policy.horizon))
        return part
    name_, _, version = model.partition(" ")
    found = find(uow, name_, version) if model != UNSCORED else None
    if found is None:
        part.why = ("no decision of it is scored by a model" if model == UNSCORED else
                    "undeclared: register its declaration (`amc-learning models register`)"
                    " to learn its params")
        return part
    part.learner = learner_of(uow, settings, found.model, as_of, policy, given)
    return part


def learner_of(uow: UnitOfWork, settings: Settings, declaration: TieredModel | ComponentModel,
               as_of: date, policy: RolloutPolicy, given: dict[type, Any]) -> Learner:
    """How a declared model is learned: its fit on its scale, its declared params as the
    fallback, the frame of its candidates complete by `as_of`, its guardrails."""
    scale = (declaration.scale.low, declaration.scale.high)
    candidates = uow.frames.scored(
        declaration.name, declaration.version, settings.horizons,
        factors=[f.name for f in declaration.factors]
        if isinstance(declaration, TieredModel) else (),
        components=[c.name for c in declaration.components]
        if not isinstance(declaration, TieredModel) else ())
    known_candidates = (known_by(candidates, as_of, policy.horizon)
                        if not candidates.is_empty() else candidates)
    if isinstance(declaration, TieredModel):
        return Learner(
            partial(fit_points, scale=scale), TieredParams.declared(declaration),
            cycle.tiered_learning_frame(known_candidates, declaration, policy.horizon),
            given.get(PointsGuardrails) or PointsGuardrails(horizon=policy.horizon))
    return Learner(
        partial(fit_components, scale=scale), ComponentParams.declared(declaration),
        cycle.component_learning_frame(known_candidates, declaration, policy.horizon),
        given.get(ComponentGuardrails) or ComponentGuardrails(
            horizon=policy.horizon,  # a twentieth of its scale a cycle
            max_threshold_step=(scale[1] - scale[0]) / 20))


def _cycle(deps: Deps, part: Part, kind: str, as_of: date, policy: RolloutPolicy,
           candidates: pl.DataFrame, publish: Publish) -> dict[str, Any]:
    """Analyse, plan, record and send one model's part of a cycle; its summary."""
    settings, db = deps.settings, deps.db
    inputs, name = part.inputs, part.name
    decisions = inputs.decisions
    summary: dict[str, Any] = {"kind": kind, "as_of": str(as_of), "name": name,
                               "scoring_model": part.model,
                               "scoring_model_declared": part.declared}
    analysis: Analysis | None = None
    if not decisions.is_empty():
        try:
            analysis = analysis_pass(inputs, as_of)
        except NotEnoughHistory as exc:
            summary["analysis"] = f"skipped: {exc}"
    labels = analysis.regimes["regime"].drop_nulls() if analysis is not None else pl.Series([])
    regime = str(labels[-1]) if len(labels) else "unknown"
    entries: list[dict[str, Any]] = []
    actions: list[Any] = []
    fitted: dict[str, Any] = {"candidate": None}
    learner = part.learner
    if learner is not None:
        entries, actions, fitted = cycle.plan(part.versions, learner.frame, kind, policy,
                                              regime, learner.guardrails, fit=learner.fit,
                                              fallback=learner.fallback)
    else:
        summary["learner"] = f"nothing learned or published: {part.why}"
    now = deps.clock()
    for e in entries:
        if e["publish"]:
            e["message"] = message(
                name, e["version"], e["mode"], e["params"], as_of,
                {**e["provenance"], "parent": e["parent"], "evidence": e["evidence"]},
                settings.params_ttl_days, now, e["canary_pct"], regime).model_dump_json()
    if analysis is not None:
        summary["analysis"] = None  # the rows stored, below
    known = part.known if part.known is not None else decisions
    summary["live_quality"] = cycle.live_quality(known, part.versions)
    summary["data_quality"] = stream_health(candidates)
    summary.update(decisions=len(learner.frame) if learner is not None else 0, fitted=fitted,
                   actions=[asdict(a) for a in actions],
                   changes=[{k: e[k] for k in ("version", "mode", "publish")} for e in entries])
    with db.unit_of_work() as uow:  # every write of the cycle: all of it, or nothing
        if analysis is not None:
            summary["analysis"] = uow.results.store(analysis)
        uow.params.record_cycle(kind, as_of, name, entries, summary, part.model)
    send_unsent(deps, publish, insight=_insight(as_of, summary))
    return summary


def _write_report(deps: Deps, as_of: date, decisions: pl.DataFrame,
                  scoring_model: str) -> None:
    """The day's report into LEARNING_DATA_DIR/reports (report-<as-of>.html, latest.html)."""
    folder = deps.settings.data_dir / "reports"
    try:
        with deps.db.unit_of_work(snapshot=True) as uow:
            bars = waiting(uow, deps.settings, deps.clock(), as_of)
        page = write_report(deps.db, deps.settings, folder / f"report-{as_of}.html", as_of,
                            decisions, scoring_model, bars)
        shutil.copyfile(page, folder / ".latest.html.partial")
        os.replace(folder / ".latest.html.partial", folder / "latest.html")
    except Exception as exc:  # a report is for people: the cycle stands without it
        log.warning("learner: the report as of %s was not written: %s", as_of, exc)


def send_unsent(deps: Deps, publish: Publish = publish_params,
                insight: InsightPublished | None = None) -> int:
    """Send the recorded messages not yet sent, oldest first, and stamp each, then
    `insight`, all through one producer; return how many messages were sent.

    A crash between a send and its stamp sends that message again, identical: readers take
    it as the message they hold, not as news. An insight is information, not state: one
    that cannot be sent is logged, and the cycle stands.
    """
    with deps.db.unit_of_work() as uow:
        unsent = uow.params.unsent()
    if unsent:
        asyncio.run(_send(deps, unsent, publish, insight))
    elif insight is not None:
        try:
            asyncio.run(_send(deps, [], publish, insight))
        except Exception as exc:
            log.warning("learner: the cycle's insight was not published: %s", exc)
    return len(unsent)


async def _send(deps: Deps, unsent: list[tuple[str, int, str, str]], publish: Publish,
                insight: InsightPublished | None) -> None:
    settings = deps.settings
    producer = deps.kafka.producer()
    await producer.start()
    try:
        for name, version, mode, text in unsent:
            await publish(settings, ParamsPublished.model_validate_json(text), producer)
            with deps.db.unit_of_work() as uow:
                uow.params.mark_sent(name, version, mode)
        if insight is not None:
            try:
                await producer.send_and_wait(
                    deps.kafka.topic(topics.INSIGHTS), insight.model_dump_json().encode(),
                    key=f"summary:{insight.body.get('name')}:{insight.as_of.date()}".encode())
            except Exception as exc:
                log.warning("learner: the cycle's insight was not published: %s", exc)
    finally:
        await stop_client(producer)


def _insight(as_of: date, summary: dict[str, Any]) -> InsightPublished | None:
    """The cycle's summary as an insight; None (logged) where it cannot be one, e.g. an
    as-of the contract takes for the future: information, not state, the cycle stands."""
    try:
        return InsightPublished(kind="summary",
                                as_of=datetime.combine(as_of, datetime.min.time(), UTC),
                                body=json.loads(json.dumps(summary, default=str)))
    except ValueError as exc:
        log.warning("learner: the cycle's insight was not published: %s", exc)
        return None
