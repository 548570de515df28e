"""Scoring models as data: what a producer's scanner is, in its own terms.

A *tiered points* model (AMC-Trader's scanner 3.3.1) puts each factor's measurement into
a tier and adds up the tiers' points into a net score on its own scale, with an entry
threshold (60 points) and bands. A *component* model (AlphaStack 4.1) weighs named
components on a declared scale into a total, with a trade-ready threshold. A declaration
says which tables the producer's code really reads (AMC-Trader 3.3.1 reads four from its
file; the rest are written in its code): a learned change to any other table is shown,
never delivered as if it changed something.

`tier_of` is the one reading of a declaration's boundaries: the first tier whose bounds
hold for the measurement, or whose labels name the producer's label; none where the
measurement is missing (never the lowest tier: a missing factor is missing). `tiers_of`
reads every factor of a candidate: the tier the producer sent when it names a declared
one, else the measurement's; `UNTIERED` where a measurement falls in no declared tier
(the producer's code gives it no points: AMC-Trader's coil score 0, its POWER HOUR).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Annotated, Literal

from pydantic import Field, model_validator

from amc_learning.schemas.common import (
    Contract,
    FeatureName,
    Identifier,
    Label,
    ShortText,
    ordered_scale,
)


class Bounds(Contract):
    """Where a tier holds on its factor's measurement: every given bound holds."""

    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None

    def hold(self, value: float) -> bool:
        return ((self.at_least is None or value >= self.at_least)
                and (self.above is None or value > self.above)
                and (self.at_most is None or value <= self.at_most)
                and (self.below is None or value < self.below))


class TierRule(Contract):
    """A tier: its name, its points (negative: a penalty), and when a measurement falls in
    it (`bounds`) or which of the producer's labels it is (`labels`)."""

    name: Label
    points: int
    bounds: Bounds | None = None
    labels: list[ShortText] = Field(default_factory=list, max_length=32)
    #: False for a state the producer's code scores (0, mostly) under no key of its file
    in_file: bool = True


class Factor(Contract):
    """A scored factor: the measurement its tiers are read from (or the producer's label
    for it), its tiers in the order the producer tries them, and whether the producer's
    code reads its points from the file (`read_from_file`) or has them written in."""

    name: FeatureName
    measurement: FeatureName
    description: ShortText = ""
    tiers: list[TierRule] = Field(min_length=1, max_length=32)
    read_from_file: bool = False

    @model_validator(mode="after")
    def _distinct(self) -> Factor:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"factor {self.name}: a tier is declared twice")
        return self


class Scale(Contract):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        ordered_scale(self.low, self.high)
        return self


class TieredModel(Contract):
    """A points scorecard: factors with tiers worth points, summed into a net score."""

    kind: Literal["tiered"]
    name: Identifier
    version: Identifier
    description: ShortText = ""
    scale: Scale
    entry_threshold: float
    bands: list[float] = Field(default_factory=list, max_length=8)
    factors: list[Factor] = Field(min_length=1, max_length=64)
    #: points added outright when their condition holds (AMC-Trader's sector_hot)
    bonuses: dict[FeatureName, int] = Field(default_factory=dict, max_length=16)

    @model_validator(mode="after")
    def _consistent(self) -> TieredModel:
        names = [f.name for f in self.factors]
        if len(set(names)) != len(names):
            raise ValueError("a factor is declared twice")
        if not self.scale.low <= self.entry_threshold <= self.scale.high:
            raise ValueError(f"the entry threshold {self.entry_threshold} is outside the "
                             f"scale [{self.scale.low}, {self.scale.high}]")
        return self

    def factor(self, name: str) -> Factor:
        found = next((f for f in self.factors if f.name == name), None)
        if found is None:
            raise KeyError(f"{self.name} {self.version} declares no factor {name!r}")
        return found

    @property
    def read_by_producer(self) -> list[str]:
        return [f.name for f in self.factors if f.read_from_file]


class Component(Contract):
    name: FeatureName
    weight: float = Field(ge=0.0)
    description: ShortText = ""
    #: the producer's own name for this weight, where it differs (AlphaStack's "S1")
    key: Identifier | None = None


class ComponentModel(Contract):
    """Named components on a declared scale, weighed into a total with a threshold."""

    kind: Literal["component"]
    name: Identifier
    version: Identifier
    description: ShortText = ""
    scale: Scale
    threshold: float
    components: list[Component] = Field(min_length=1, max_length=32)

    @model_validator(mode="after")
    def _consistent(self) -> ComponentModel:
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError("a component is declared twice")
        if abs(sum(c.weight for c in self.components) - 1.0) > 1e-6:
            raise ValueError("the component weights must sum to 1")
        if not self.scale.low <= self.threshold <= self.scale.high:
            raise ValueError(f"the threshold {self.threshold} is outside the scale")
        return self


Declaration = Annotated[TieredModel | ComponentModel, Field(discriminator="kind")]


class Declared(Contract):
    """A declaration file: one model."""

    model: Declaration


def parse(text: str) -> TieredModel | ComponentModel:
    """A declaration from its JSON text (ValueError, with the field, when it is not one)."""
    return Declared.model_validate_json(json.dumps({"model": json.loads(text)})).model


@cache
def shipped() -> tuple[TieredModel | ComponentModel, ...]:
    """The declarations that ship with the engine (AMC-Trader 3.3.1, AlphaStack 4.1),
    read once per process (they are frozen)."""
    folder = files("amc_learning.schemas") / "declarations"
    return tuple(parse(p.read_text()) for p in sorted(folder.iterdir(), key=lambda p: p.name)
                 if p.name.endswith(".json"))


def tier_of(factor: Factor, measurements: Mapping[str, float | str | None]) -> str | None:
    """The tier a candidate's factor falls in: the first whose labels name the producer's
    label for it, or whose bounds hold for its measurement; None when neither is there."""
    value = measurements.get(factor.measurement)
    if value is None:
        return None
    for tier in factor.tiers:
        if isinstance(value, str):
            if value in tier.labels:
                return tier.name
        elif tier.bounds is not None and tier.bounds.hold(float(value)):
            return tier.name
    return None


#: A factor measured but in none of its declared tiers: it scores no points.
UNTIERED = "untiered"
#: The column of a factor's tier in a learning frame of a tiered model.
TIER = "tier:{}"
#: The column of the tier (name or label) a producer sent for a factor, as stored.
SENT = "sent:{}"
#: The column of a component's value (on its model's scale) in a component model's frame.
COMPONENT = "component:{}"


def tiers_of(model: TieredModel, sent: Mapping[str, str],
             measurements: Mapping[str, float | str | None]) -> dict[str, str | None]:
    """Every factor's tier for one candidate: the tier the producer sent (`sent`, factor →
    its tier name or label), when it names one the declaration has; else the one its
    measurement falls in (`UNTIERED` when none holds); None where neither is there, or the
    producer sent a tier the declaration does not know."""
    out: dict[str, str | None] = {}
    for factor in model.factors:
        label = sent.get(factor.name)
        if label is not None:
            out[factor.name] = next((t.name for t in factor.tiers
                                     if label == t.name or label in t.labels), None)
        elif measurements.get(factor.measurement) is None:
            out[factor.name] = None
        else:
            out[factor.name] = tier_of(factor, measurements) or UNTIERED
    return out


def declared_table(model: TieredModel) -> dict[str, dict[str, int]]:
    """The model's points as declared: factor → tier → points."""
    return {f.name: {t.name: t.points for t in f.tiers} for f in model.factors}
