"""The scoring-model registry: the declarations that ship with the engine and those a user
registered (`amc-learning models register FILE`). A model a candidate names but the
registry does not know is *undeclared*: it is stored and learned from, and the cycle's
summary and the report say so."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amc_learning.intelligence.inference import Inferred, NotInferable, infer_component_model
from amc_learning.schemas.models import ComponentModel, TieredModel, parse, shipped
from amc_learning.store.database import UnitOfWork

Declaration = TieredModel | ComponentModel
#: The engine's own contract (six 0-1 components) and decisions no model informed: not a
#: producer's model, never declared (`service.analysis`).
OWN = ("native", "unscored")


@dataclass(frozen=True)
class Known:
    model: Declaration
    source: str  # "shipped" | "registered"

    @property
    def key(self) -> str:
        return f"{self.model.name} {self.model.version}"


def known(uow: UnitOfWork) -> list[Known]:
    """Every declaration, shipped first where a name and version are both."""
    found = {f"{m.name} {m.version}": Known(m, "shipped") for m in shipped()}
    for m in uow.models.all():
        found.setdefault(f"{m.name} {m.version}", Known(m, "registered"))
    return sorted(found.values(), key=lambda k: (k.model.name, k.model.version))


def find(uow: UnitOfWork, name: str, version: str) -> Known | None:
    return next((k for k in known(uow) if (k.model.name, k.model.version) == (name, version)),
                None)


def declared(uow: UnitOfWork, scoring_model: str) -> bool:
    """Is "name version" (a decision frame's `scoring_model`) declared? The engine's own
    contract counts as declared; a model of no producer's ("unscored") too."""
    if scoring_model in OWN:
        return True
    name, _, version = scoring_model.partition(" ")
    return find(uow, name, version) is not None


def register(uow: UnitOfWork, text: str) -> tuple[Known, bool]:
    """Register the declaration in `text` (JSON); (it, True) when new, False when the same
    declaration was there already. ValueError says which field is wrong, or that the name
    and version hold another declaration (a changed model is a new version)."""
    model = parse(text)
    ship = next((m for m in shipped() if (m.name, m.version) == (model.name, model.version)),
                None)
    if ship is not None:
        if ship != model:
            raise ValueError(f"{model.name} {model.version} ships with the engine with another"
                             " declaration: a changed model is a new version")
        return Known(ship, "shipped"), False
    return Known(model, "registered"), uow.models.register(model)


def infer(uow: UnitOfWork, scoring_model: str) -> Inferred:
    """The component declaration an undeclared model's stored candidates imply
    (`intelligence.inference`); NotInferable says why there is none."""
    name, _, version = scoring_model.partition(" ")
    rows = uow.frames.scores_of(name, version)
    if not rows:
        raise NotInferable(f"{scoring_model}: no candidate of it is stored")
    names = sorted({c for r in rows for c in r["components"]})
    raw = np.array([r["raw_score"] if r["raw_score"] is not None else np.nan for r in rows],
                   dtype=float)
    values = {c: np.array([_number(r["components"].get(c)) for r in rows]) for c in names}
    lows = [r["raw_low"] for r in rows if r["raw_low"] is not None]
    highs = [r["raw_high"] for r in rows if r["raw_high"] is not None]
    scale = (min(lows, default=float(np.nanmin(raw))), max(highs, default=float(np.nanmax(raw))))
    return infer_component_model(name, version, raw, scale, values,
                                 np.array([bool(r["passed"]) for r in rows]))


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else np.nan
