"""A scoring model's learned params as the file its producer loads (`params export`, the
API's `?format=`): AMC-Trader's `scanner_weights.json` for a tiered model, AlphaStack's
weights and bar for a component model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from amc_learning.adapters.component_weights import component_weights
from amc_learning.adapters.scanner_weights import Learned, declared_file, scanner_weights
from amc_learning.schemas.models import ComponentModel
from amc_learning.schemas.params import ComponentParams, ModelParams, TieredParams, param_set
from amc_learning.service.models import find
from amc_learning.store.database import UnitOfWork

#: format -> the kind of model it holds
FORMATS = {"amc-scanner-weights": "tiered", "alphastack-weights": "component"}


class NotExportable(ValueError):
    """The model, format or mode asked for cannot be exported (the message says why)."""


@dataclass(frozen=True)
class Export:
    body: dict[str, Any]
    #: the params version written (None: nothing learned, the declared table)
    version: int | None
    mode: str | None
    #: what the operator should know, in a line each
    notes: list[str]


@dataclass(frozen=True)
class Held:
    """A version a reader holds (the API's): its number, params and the day it was issued."""

    version: int
    params: ModelParams
    mode: str
    since: date


def export(uow: UnitOfWork, scoring_model: str, fmt: str | None = None,
           mode: str = "live", base: dict[str, Any] | None = None,
           held: Held | None = None) -> Export:
    """The file of `scoring_model`'s params ("name version"): the live version's (`mode`
    "live"), or the newest one in flight, else the live one ("proposed"), or the version
    a reader `held` (the history gives its evidence where it has it); the declared table
    while nothing learned is. `base`: the producer's current file, whose keys, types and
    history the export keeps."""
    if fmt is not None and fmt not in FORMATS:
        raise NotExportable(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    name, _, model_version = scoring_model.strip().partition(" ")
    found = find(uow, name, model_version)
    if found is None:
        raise NotExportable(f"no declaration of {scoring_model!r} (\"name version\", e.g. "
                            "\"amc-scanner 3.3.1\"); `amc-learning models list` shows them")
    model = found.model
    fmt = fmt or next(f for f, kind in FORMATS.items() if kind == model.kind)
    if model.kind != FORMATS[fmt]:
        raise NotExportable(f"{scoring_model} is a {model.kind} model: the {fmt} format "
                            f"holds a {FORMATS[fmt]} model's params")
    if mode not in ("live", "proposed"):
        raise NotExportable(f"mode {mode!r}: live or proposed")
    versions = uow.params.versions(param_set(scoring_model))
    rows = uow.params.history(param_set(scoring_model))
    fits = {r["version"]: _notes((r["provenance"] or {}).get("fit") or {})
            for r in rows if r["mode"] == "shadow"}
    dates = {r["version"]: r["as_of"] for r in rows if r["mode"] in ("live", "shadow")}
    if held is None:
        chosen = next((v for v in reversed(versions) if v.mode == "live"), None)
        if mode == "proposed":
            chosen = next((v for v in reversed(versions) if v.mode in ("shadow", "canary")),
                          chosen)
        if chosen is not None:
            if not isinstance(chosen.params, TieredParams | ComponentParams):
                raise NotExportable(f"version {chosen.version} holds no model's params")
            held = Held(chosen.version, chosen.params, chosen.mode, dates[chosen.version])
    live = sorted({r["version"] for r in rows if r["mode"] == "live"})
    learned = [] if held is None else [
        Learned(v, dates[v], fits.get(v, [])) for v in live if v < held.version]
    if held is not None:
        learned.append(Learned(held.version, dates.get(held.version, held.since),
                               fits.get(held.version, [])))
    if isinstance(model, ComponentModel):
        weights = held.params if held is not None else ComponentParams.declared(model)
        assert isinstance(weights, ComponentParams)
        body = component_weights(weights, model, learned, base)
        notes = [f"{model.name} {model.version} keeps its weights and bar in its code: it "
                 "reads no file of them yet"]
        if held is None:
            notes.append("nothing learned is live: the declared weights")
        return Export(body, held.version if held else None, held.mode if held else None,
                      notes)
    params = held.params if held is not None else TieredParams.declared(model)
    assert isinstance(params, TieredParams)
    before = base if base is not None else declared_file(model)
    body = scanner_weights(params, model, learned, base)
    changed = [f for f, tiers in before.items() if isinstance(tiers, dict)
               for t in tiers if body[f][t] != tiers[t]]
    read = model.read_by_producer
    notes = [f"{len(read)} of {len(model.factors) + len(model.bonuses)} tables are read by "
             f"{model.name} {model.version} ({', '.join(read)})"]
    if held is None:
        notes.append("nothing learned is live: the declared table")
    else:
        if params.entry_threshold != model.entry_threshold:
            notes.append(f"the learned entry threshold {params.entry_threshold:g} (declared "
                         f"{model.entry_threshold:g}) is not in the file: the scanner keeps "
                         "its bar in its code")
        unread = sum(1 for f in changed if f not in read)
        notes.append(f"params version {held.version} ({held.mode}): {len(changed)} "
                     f"learned changes, {unread} of them in tables its code does not read yet")
    return Export(body, held.version if held else None, held.mode if held else None, notes)


def _notes(fit: dict[str, Any]) -> list[dict[str, Any]]:
    """What a fit said of each tier (the points fit) or component (its IC t)."""
    if "ic_t" in fit:
        return [{"component": c, "ic_t": t} for c, t in fit["ic_t"].items()]
    return list(fit.get("tiers") or [])
