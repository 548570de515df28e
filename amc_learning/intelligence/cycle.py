"""What a learning cycle changes, decided on plain values: the frame the adaptive fit
reads (`learning_frame`), the history entries of a cycle (`plan`, around
`rollout.decide` and `adaptive.adapt`), how the live version reads (`live_quality`) and a
history row's reason in words (`explain`). `service.cycle` reads, calls these, writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from amc_learning.intelligence import horizon as h
from amc_learning.intelligence.adaptive import COMPONENTS, Guardrails, adapt
from amc_learning.intelligence.book import Params
from amc_learning.intelligence.calibration import calibrate, expected_calibration_error
from amc_learning.intelligence.points import tier_columns
from amc_learning.intelligence.rollout import (
    IN_FLIGHT,
    Action,
    RolloutPolicy,
    Version,
    decide,
    stale,
)
from amc_learning.intelligence.stats import as_float
from amc_learning.schemas.models import COMPONENT, TIER, ComponentModel, TieredModel
from amc_learning.schemas.params import FALLBACK_PARAMS, AdaptiveParams

#: The adaptive fit (`adaptive.adapt`): frame, incumbent, regime, guardrails -> the
#: candidate params and the fit's evidence.
Fit = Callable[..., tuple[Params, Any]]

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


def tiered_learning_frame(candidates: pl.DataFrame, model: TieredModel,
                          horizon: int) -> pl.DataFrame:
    """What the points fit reads (`points.fit_points`): session, each factor's tier
    (`points.tier_expr`: null where the factor is missing), the return over `horizon`;
    one row per candidate the model scored, with a complete outcome."""
    if candidates.is_empty() or h.returns(horizon) not in candidates.columns:
        return pl.DataFrame()
    return tier_columns(model, candidates).select(
        "session", *[TIER.format(f.name) for f in model.factors], h.returns(horizon),
    ).drop_nulls(h.returns(horizon))


def component_learning_frame(candidates: pl.DataFrame, model: ComponentModel,
                             horizon: int) -> pl.DataFrame:
    """What the component fit reads (`components.fit_components`): session, each
    component's value (`COMPONENT`), the return over `horizon`; one row per candidate the
    model scored with every component and a complete outcome."""
    columns = [COMPONENT.format(c.name) for c in model.components]
    if (candidates.is_empty() or h.returns(horizon) not in candidates.columns
            or any(c not in candidates.columns for c in columns)):
        return pl.DataFrame()
    return candidates.select("session", *columns, h.returns(horizon)).drop_nulls()


def plan(
    versions: list[Version], frame: pl.DataFrame, kind: str,
    policy: RolloutPolicy, regime: str = "unknown", guardrails: Any = None,
    fit: Fit = adapt, fallback: Params = FALLBACK_PARAMS,
) -> tuple[list[dict[str, Any]], list[Action], dict[str, Any]]:
    """The changes a cycle makes: a list of history entries (version, mode, params, parent,
    provenance, evidence, publish, canary_pct), the rollout judge's actions, and what the
    fit found (a daily cycle with nothing in flight fits a candidate)."""
    by_number = {v.version: v for v in versions}
    live = next((v for v in versions if v.mode == "live"), None)
    actions = decide(versions, frame, fallback, policy)
    next_version = max(by_number, default=0) + 1
    entries: list[dict[str, Any]] = []

    def entry(version: int, mode: str, params: Params, parent: int | None,
              provenance: dict[str, Any], evidence: dict[str, Any], publish: bool,
              canary_pct: float = 0.0) -> None:
        entries.append(dict(version=version, mode=mode, params=params, parent=parent,
                            provenance=provenance, evidence=evidence, publish=publish,
                            canary_pct=canary_pct))

    def restore(restored: int | None, why: dict[str, Any]) -> int:
        """A new live version with `restored`'s params (the fallback's for None); its number."""
        nonlocal next_version
        params = by_number[restored].params if restored is not None else fallback
        entry(next_version, "live", params, restored,
              {"restores": restored if restored is not None else "fallback", **why}, why, True)
        next_version += 1
        return next_version - 1

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
    undecided = stale(versions, frame, policy) if in_flight and not entries else None
    fitted: dict[str, Any] = {"candidate": None}
    if kind == "daily" and (not in_flight or undecided) and not entries and len(frame) > 0:
        incumbent = live.params if live else fallback
        params, evidence = fit(frame, incumbent, regime,
                                 guardrails or Guardrails(horizon=policy.horizon))
        new, old = params.model_dump(mode="json"), incumbent.model_dump(mode="json")
        # a new calibration map alone is no reason for a version (every fit moves its
        # knots a little); with another change, it is part of what the version changes
        changed = {k for k in new if k != "calibration" and new[k] != old[k]}
        if changed and new.get("calibration") != old.get("calibration"):
            changed.add("calibration")
        fitted = {"candidate": None, "changed": sorted(changed)}
        if isinstance(evidence, dict):  # a scoring model's fit: why it kept what it had
            fitted.update({k: evidence[k] for k in ("why", "judged") if k in evidence})
        if changed and undecided is not None and params == undecided.params:
            changed = set()  # the version in flight already holds this fit: it stays
            fitted["changed"] = []
        parent = live.version if live else None
        if changed:
            sessions = frame["session"]
            if undecided is not None:  # a fit on more history replaces it
                seen = int((sessions.unique() < undecided.evidence_from).sum())
                by = next_version + (undecided.mode == "canary")
                entry(undecided.version, "rejected", undecided.params, undecided.parent, {},
                      {"why": "superseded by a fit on more history",
                       "fitted_sessions": seen, "sessions": sessions.n_unique(),
                       "by": by}, False)
                if undecided.mode == "canary":  # its arm ends: the incumbent for everyone
                    parent = restore(parent, {"ends_canary_of": undecided.version})
            provenance = {
                "window": [str(sessions.min()), str(sessions.max())],
                "decisions": len(frame), "sessions": sessions.n_unique(),
                "parent": parent if parent is not None else "fallback", "regime": regime,
                "fit": evidence,
            }
            entry(next_version, "shadow", params, parent,
                  provenance, {"changed": sorted(changed)}, True)
            fitted["candidate"] = next_version
    return entries, actions, fitted


def explain(row: dict[str, Any]) -> str:
    """A params history row's reason, in a line: what `plan` and the rollout judge
    recorded as its evidence and provenance."""
    evidence: dict[str, Any] = row["evidence"] or {}
    provenance: dict[str, Any] = row["provenance"] or {}
    mode = row["mode"]
    if mode == "shadow":
        window = provenance.get("window") or ["?", "?"]
        return (f"fitted on {provenance.get('decisions')} decisions of {window[0]} .. "
                f"{window[1]}; changed {', '.join(evidence.get('changed') or [])}")
    if mode in ("canary", "live") and "p_not_better" in evidence:
        return (f"beat its incumbent over {evidence['sessions']} sessions: P(not better) "
                f"{evidence['p_not_better']} <= {evidence['needed']}")
    if mode == "rejected" and "fitted_sessions" in evidence:
        return (f"{evidence['why']}: version {evidence.get('by')} fitted on "
                f"{evidence.get('sessions')} sessions, it on {evidence['fitted_sessions']}")
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
    knots = live.params.calibration if live and isinstance(live.params, AdaptiveParams) else []
    confidence = calibrate(knots,
                           recent["confidence"].to_numpy())
    quality["ece"] = expected_calibration_error(confidence, recent["win"].cast(pl.Float64)
                                                .to_numpy())
    acted = recent.filter(pl.col("decision_type").is_in(["BUY", "SELL"]) & ~pl.col("is_synthetic"))
    quality["hit_rate"] = as_float(acted["win"].mean()) if len(acted) else None
    quality["n"] = len(recent)
    return quality


