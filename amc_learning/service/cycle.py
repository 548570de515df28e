"""The learning cycle: daily and weekly, it turns outcomes into published parameters.

A cycle for an as-of session (`run_cycle`), idempotent per (kind, as-of, param set):

1. read the decisions whose horizon outcome was complete at the as-of date (`known_by`);
2. one analysis pass: analyse and store the results (`service.analysis`);
3. judge the versions in flight and the live one (`intelligence.rollout.decide`):
   promotions, rejections and rollbacks;
4. daily, when nothing is in flight: fit a candidate version against the incumbent
   (`intelligence.adaptive.adapt`) and issue it in shadow;
5. record the history rows, each published one with its exact message, and the cycle in
   one transaction; then send the messages (signed, `streams.params.publish_params`),
   stamping each as sent, and an insight with the cycle's summary;
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
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

import polars as pl
from aiokafka import AIOKafkaProducer

from amc_learning.intelligence import horizon as h
from amc_learning.intelligence.adaptive import COMPONENTS, Guardrails, adapt
from amc_learning.intelligence.analysis import known_by
from amc_learning.intelligence.calibration import calibrate, expected_calibration_error
from amc_learning.intelligence.quality import stream_health
from amc_learning.intelligence.rollout import (
    IN_FLIGHT,
    Action,
    RolloutPolicy,
    Version,
    decide,
)
from amc_learning.schemas import topics
from amc_learning.schemas.common import Regime
from amc_learning.schemas.params import (
    FALLBACK_PARAMS,
    AdaptiveParams,
    InsightPublished,
    ParamsPublished,
)
from amc_learning.service.analysis import Inputs, NotEnoughHistory, analysis_pass
from amc_learning.service.prices import waiting
from amc_learning.service.report import write_report
from amc_learning.settings import Settings
from amc_learning.store import params as params_store
from amc_learning.store.frames import candidate_frame, last_session
from amc_learning.streams.kafka import producer_options, stop_client
from amc_learning.streams.params import publish_params

log = logging.getLogger(__name__)

#: Sends a signed params message to the params topic (a fault test passes its own).
Publish = Callable[[Settings, ParamsPublished], Coroutine[Any, Any, Any]]


def learning_frame(decisions: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """What the adaptive engine reads: session, the six components, confidence, the
    return over `horizon`."""
    columns = [f"score_{c}" for c in COMPONENTS]
    if decisions.is_empty() or any(c not in decisions.columns for c in columns):
        return pl.DataFrame()
    return decisions.select(
        "session",
        "regime" if "regime" in decisions.columns else pl.lit("unknown").alias("regime"),
        *[pl.col(f"score_{c}").alias(c) for c in COMPONENTS],
        "confidence",
        h.returns(horizon),
    ).drop_nulls()


def _message(name: str, version: int, mode: str, params: AdaptiveParams, as_of: date,
             provenance: dict[str, Any], settings: Settings, canary_pct: float = 0.0,
             regime: str = "unknown") -> ParamsPublished:
    now = datetime.now(UTC)
    return ParamsPublished(
        name=name, version=version, issued_at=now,
        valid_until=now + timedelta(days=settings.params_ttl_days), mode=mode,  # type: ignore[arg-type]
        canary_pct=canary_pct, regime=regime if regime in get_args(Regime) else "unknown",  # type: ignore[arg-type]
        params=params,
        provenance={**provenance, "as_of": str(as_of)},
    )


def plan(
    versions: list[Version], frame: pl.DataFrame, as_of: date, kind: str,
    policy: RolloutPolicy, regime: str = "unknown", guardrails: Guardrails | None = None,
) -> tuple[list[dict[str, Any]], list[Action], dict[str, Any]]:
    """The changes a cycle makes (pure but for the clock-free inputs): a list of history
    entries (version, mode, params, parent, provenance, evidence, publish, canary_pct)."""
    by_number = {v.version: v for v in versions}
    live = next((v for v in versions if v.mode == "live"), None)
    trials = sum(1 for v in versions if v.mode != "superseded" or v.parent is not None) + 1
    actions = decide(versions, frame, FALLBACK_PARAMS, trials, policy)
    next_version = max(by_number, default=0) + 1
    entries: list[dict[str, Any]] = []

    def entry(version: int, mode: str, params: AdaptiveParams, parent: int | None,
              provenance: dict[str, Any], evidence: dict[str, Any], publish: bool,
              canary_pct: float = 0.0) -> None:
        entries.append(dict(version=version, mode=mode, params=params, parent=parent,
                            provenance=provenance, evidence=evidence, publish=publish,
                            canary_pct=canary_pct))

    def restore(restored: int | None, why: dict[str, Any]) -> None:
        nonlocal next_version
        params = by_number[restored].params if restored is not None else FALLBACK_PARAMS
        entry(next_version, "live", params, restored,
              {"restores": restored if restored is not None else "fallback", **why}, why, True)
        next_version += 1

    for action in actions:
        v = by_number[action.version]
        if action.to_mode == "canary":
            entry(v.version, "canary", v.params, v.parent, {}, action.evidence, True,
                  policy.canary_pct)
        elif action.to_mode == "live":
            entry(v.version, "live", v.params, v.parent, {}, action.evidence, True)
            if live is not None:
                entry(live.version, "superseded", live.params, live.parent, {},
                      {"by": v.version}, False)
        elif action.to_mode == "rejected":
            entry(v.version, "rejected", v.params, v.parent, {}, action.evidence, False)
            if v.mode == "canary":  # end the canary arm: the incumbent again for everyone
                restore(action.restore, {"ends_canary_of": v.version})
        elif action.to_mode == "rolled_back":
            entry(v.version, "rolled_back", v.params, v.parent, {}, action.evidence, False)
            restore(action.restore, {"rollback_of": v.version})
    in_flight = any(v.mode in IN_FLIGHT for v in versions) and not any(
        a.to_mode in ("rejected", "live") for a in actions
    )
    fitted: dict[str, Any] = {"candidate": None}
    if kind == "daily" and not in_flight and not entries and len(frame) > 0:
        incumbent = live.params if live else FALLBACK_PARAMS
        params, evidence = adapt(frame, incumbent, regime,
                                 guardrails or Guardrails(horizon=policy.horizon))
        new, old = params.model_dump(mode="json"), incumbent.model_dump(mode="json")
        # a new calibration map alone is no reason for a version (every fit moves its
        # knots a little); with another change, it is part of what the version changes
        changed = {k for k in new if k != "calibration" and new[k] != old[k]}
        if changed and new["calibration"] != old["calibration"]:
            changed.add("calibration")
        fitted = {"candidate": None, "changed": sorted(changed)}
        if changed:
            sessions = frame["session"]
            provenance = {
                "window": [str(sessions.min()), str(sessions.max())],
                "decisions": len(frame), "sessions": sessions.n_unique(),
                "parent": live.version if live else "fallback", "regime": regime,
                "fit": evidence,
            }
            entry(next_version, "shadow", params, live.version if live else None,
                  provenance, {"changed": sorted(changed)}, True)
            fitted["candidate"] = next_version
    return entries, actions, fitted


def explain(row: dict[str, object]) -> str:
    """A params history row's reason, in a line: what `plan` and the rollout judge
    recorded as its evidence and provenance."""
    evidence: dict[str, object] = row["evidence"] or {}  # type: ignore[assignment]
    provenance: dict[str, object] = row["provenance"] or {}  # type: ignore[assignment]
    mode = row["mode"]
    if mode == "shadow":
        window = provenance.get("window") or ["?", "?"]
        return (f"fitted on {provenance.get('decisions')} decisions of {window[0]} .. "  # type: ignore[index]
                f"{window[1]}; changed {', '.join(evidence.get('changed') or [])}")  # type: ignore[index,arg-type]
    if mode in ("canary", "live") and "p_not_better" in evidence:
        return (f"beat its incumbent over {evidence['sessions']} sessions: P(not better) "
                f"{evidence['p_not_better']} <= {evidence['needed']}")
    if mode == "rejected":
        return (f"{evidence.get('why')}: P(not better) {evidence.get('p_not_better')} over "
                f"{evidence.get('sessions')} sessions")
    if mode == "rolled_back":
        return (f"CUSUM alarm on {evidence.get('alarm_session')} after "
                f"{evidence.get('sessions_live')} sessions live")
    if mode == "superseded":
        return f"superseded by version {evidence.get('by')}"
    if "restores" in provenance:
        restored = provenance["restores"]
        return "restores " + (f"version {restored}" if restored != "fallback" else "the fallback")
    return ""



def run_cycle(settings: Settings, kind: str, as_of: date | None = None,
              policy: RolloutPolicy | None = None,
              publish: Publish = publish_params, *, guardrails: Guardrails | None = None,
              report: bool = True) -> dict[str, Any]:
    """One daily or weekly cycle; returns its summary (the stored one on a rerun).
    `report`: a daily cycle writes the day's report (a paced simulation skips it but on
    its last session)."""
    url: str = settings.database_url  # type: ignore[assignment]
    name = settings.params_name
    policy = policy or RolloutPolicy(horizon=settings.learning_horizon)
    as_of = as_of or last_session(url, settings.index_symbol)
    if as_of is None:
        return {"kind": kind, "as_of": None, "ran": False, "reason": "no sessions stored yet"}
    send_unsent(settings, publish)  # what an interrupted cycle recorded goes out first
    if (done := params_store.cycle_summary(url, kind, as_of, name)) is not None:
        return {**done, "ran": False, "reason": "already ran for this as-of date"}
    versions = params_store.load_versions(url, name)
    inputs = Inputs.read(url, settings.horizons, policy.horizon, settings.scoring_model,
                         settings.market)
    decisions = inputs.decisions
    summary: dict[str, Any] = {"kind": kind, "as_of": str(as_of), "name": name,
                               "scoring_model": inputs.scoring_model}
    analysis = None
    if not decisions.is_empty():
        try:
            analysis, summary["analysis"] = analysis_pass(url, inputs, as_of)
        except NotEnoughHistory as exc:
            summary["analysis"] = f"skipped: {exc}"
    labels = analysis.regimes["regime"].drop_nulls() if analysis is not None else pl.Series([])
    regime = str(labels[-1]) if len(labels) else "unknown"
    known = known_by(decisions, as_of, policy.horizon) if not decisions.is_empty() else decisions
    frame = learning_frame(known, policy.horizon)
    entries, actions, fitted = plan(versions, frame, as_of, kind, policy, regime, guardrails)
    summary["live_quality"] = live_quality(known, versions)
    summary["data_quality"] = stream_health(candidate_frame(url, as_of))
    summary.update(decisions=len(frame), fitted=fitted,
                   actions=[asdict(a) for a in actions],
                   changes=[{k: e[k] for k in ("version", "mode", "publish")} for e in entries])
    for e in entries:
        if e["publish"]:
            e["message"] = _message(
                name, e["version"], e["mode"], e["params"], as_of,
                {**e["provenance"], "parent": e["parent"], "evidence": e["evidence"]},
                settings, e["canary_pct"], regime).model_dump_json()
    params_store.record_cycle(url, kind, as_of, name, entries, summary)
    send_unsent(settings, publish)
    try:
        asyncio.run(_publish_insight(settings, as_of, summary))
    except Exception as exc:  # an insight is information, not state: the cycle stands
        log.warning("learner: the cycle's insight was not published: %s", exc)
    if kind == "daily" and report:
        _write_report(settings, as_of, decisions, inputs.scoring_model)
    return {**summary, "ran": True}


def _write_report(settings: Settings, as_of: date, decisions: pl.DataFrame,
                  scoring_model: str) -> None:
    """The day's report into LEARNING_DATA_DIR/reports (report-<as-of>.html, latest.html)."""
    folder = settings.data_dir / "reports"
    try:
        page = write_report(settings.database_url, folder / f"report-{as_of}.html",  # type: ignore[arg-type]
                            as_of, settings.params_name, decisions, settings.horizons,
                            scoring_model, settings.market, waiting(settings, as_of))
        shutil.copyfile(page, folder / ".latest.html.partial")
        os.replace(folder / ".latest.html.partial", folder / "latest.html")
    except Exception as exc:  # a report is for people: the cycle stands without it
        log.warning("learner: the report as of %s was not written: %s", as_of, exc)


def send_unsent(settings: Settings, publish: Publish = publish_params) -> int:
    """Send the recorded messages not yet sent, oldest first, and stamp each; return how many.

    A crash between a send and its stamp sends that message again, identical: readers take
    it as the message they hold, not as news.
    """
    url: str = settings.database_url  # type: ignore[assignment]
    waiting = params_store.unsent(url, settings.params_name)
    for version, mode, message in waiting:
        asyncio.run(publish(settings, ParamsPublished.model_validate_json(message)))
        params_store.mark_sent(url, settings.params_name, version, mode)
    return len(waiting)


async def _publish_insight(settings: Settings, as_of: date, summary: dict[str, Any]) -> None:
    insight = InsightPublished(kind="summary",
                               as_of=datetime.combine(as_of, datetime.min.time(), UTC),
                               body=json.loads(json.dumps(summary, default=str)))
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic_prefix + topics.INSIGHTS,
                                     insight.model_dump_json().encode(),
                                     key=f"summary:{as_of}".encode())
    finally:
        await stop_client(producer)


def live_quality(known: pl.DataFrame, versions: list[Version],
                 sessions: int = 20) -> dict[str, Any]:
    """How the live version reads on the last `sessions` sessions of complete outcomes: the
    ECE of its calibration map applied to the confidence, and the hit rate of the real
    BUY/SELL decisions (none: the figures are None)."""
    live = next((v for v in reversed(versions) if v.mode == "live"), None)
    quality: dict[str, Any] = {"version": live.version if live else None, "ece": None,
                               "hit_rate": None}
    if known.is_empty():
        return quality
    recent = known.filter(pl.col("session") >= known["session"].unique().sort()[-sessions:][0])
    confidence = calibrate(live.params.calibration if live else [],
                           recent["confidence"].to_numpy())
    quality["ece"] = expected_calibration_error(confidence, recent["win"].cast(pl.Float64)
                                                .to_numpy())
    acted = recent.filter(pl.col("decision_type").is_in(["BUY", "SELL"]) & ~pl.col("is_synthetic"))
    quality["hit_rate"] = float(acted["win"].mean()) if len(acted) else None  # type: ignore[arg-type]
    quality["n"] = len(recent)
    return quality


