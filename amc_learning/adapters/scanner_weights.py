"""Learned params in the producer's own file: AMC-Trader's `scanner_weights.json`.

The scanner reads the file once at start, with no schema check, by its keys: every
factor's table (tier → whole points, penalties negative), the outright bonuses, and
`version`, `last_updated`, `update_history` for people. `scanner_weights` writes exactly
those keys, at every level, with the same value types as the file it replaces (`base`,
else the model's declaration): the tiers the learned table changed, the rest as they were;
a `version` of its own that names the base it was learned from (semver build metadata:
`3.3.1+learned.7`); a penalty in the file stays a penalty (at least −1: the learned table
may, on decisive evidence, make it 0); `update_history` extended with an entry per
learned version that changed the table, with each tier's change and its evidence, and —
in that entry, which the scanner never reads — which tables its code reads today.
`structure_differs` is the check a writer makes before it replaces the file (the 3.9
client has its own copy).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from amc_learning.schemas.models import TieredModel
from amc_learning.schemas.params import TieredParams


@dataclass(frozen=True)
class Learned:
    """A learned version that went live: its number, the session it went live on, and
    what its fit said of each tier (`points.propose`'s notes) or component (its IC t)."""

    version: int
    live_since: date
    notes: list[dict[str, Any]] = field(default_factory=list)


def declared_file(model: TieredModel) -> dict[str, Any]:
    """The file as the declaration describes it: each factor's tiers kept in the file,
    the bonuses, the version; no history."""
    out: dict[str, Any] = {}
    for factor in model.factors:
        out[factor.name] = {t.name: t.points for t in factor.tiers if t.in_file}
    out.update(model.bonuses)
    out.update(version=model.version, last_updated="", update_history=[])
    return out


def scanner_weights(params: TieredParams, model: TieredModel, learned: list[Learned],
                    base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The file the scanner loads in place of `base` (its current one; default: the
    declared one) under `params`, with one history entry per version of `learned` (oldest
    first, the last being `params`' own) whose table differs from the one before it."""
    out = copy.deepcopy(base) if base is not None else declared_file(model)
    before = {f: dict(tiers) for f, tiers in out.items() if isinstance(tiers, dict)}
    read = model.read_by_producer
    base_version = str(out.get("version", model.version)).split("+")[0]
    previous = str(out.get("version", model.version))
    for factor in model.factors:
        table = out.get(factor.name)
        if not isinstance(table, dict):
            continue
        for tier, points in params.tables.get(factor.name, {}).items():
            if tier in table:  # a tier the file has (the rest are written in code)
                # a penalty in the file stays one: its key says so to whoever reads it
                table[tier] = min(int(points), -1) if table[tier] < 0 else int(points)
    changed = [(f, t, before[f][t], out[f][t]) for f in before for t in before[f]
               if out[f][t] != before[f][t]]
    if learned and changed:
        last = learned[-1]
        version = f"{base_version}+learned.{last.version}"
        evidence = {(n["factor"], n["tier"]): n for v in learned for n in v.notes}
        unread = sum(1 for f, *_ in changed if f not in read)
        out["update_history"] = [*out.get("update_history", []), {
            "date": str(last.live_since),
            "version": f"{previous} \u2192 {version}",
            "changes": [_change(f, t, old, new, params.tables[f][t], evidence.get((f, t)))
                        for f, t, old, new in changed],
            "trigger": (f"learning engine, params version {last.version}, live since "
                        f"{last.live_since}"),
            "read_by_scanner": read,
            "note": (f"{len(read)} of {len(model.factors) + len(model.bonuses)} tables are "
                     f"read by "
                     f"{model.name} {model.version}; {unread} of {len(changed)} learned "
                     "changes are in tables its code does not read yet"),
        }]
        out["version"] = version
        out["last_updated"] = str(last.live_since)
    return out


def _change(factor: str, tier: str, old: int, new: int, learned: int,
            note: dict[str, Any] | None) -> str:
    text = f"{factor}.{tier}: {old} \u2192 {new}"
    if learned != new:
        text += f" (learned {learned}: kept a penalty)"
    if note is None:
        return text
    return (f"{text} (n {note['n']:,}, effect {note['effect']:+.2%} "
            f"[{note['low']:+.2%}, {note['high']:+.2%}] on the 7-session excess return, "
            f"q {note['q']:.3g})")


def structure_differs(old: Any, new: Any, where: str = "") -> str | None:
    """Where `new` does not have `old`'s keys, at every level, or its value types (a
    bool is no int); None when it has. Lists are checked by their type only (a history
    grows)."""
    if type(old) is not type(new):
        return f"{where or 'the file'}: {type(old).__name__} became {type(new).__name__}"
    if isinstance(old, dict):
        if set(old) != set(new):
            gone, extra = sorted(set(old) - set(new)), sorted(set(new) - set(old))
            return (f"{where or 'the file'}: keys differ"
                    + (f"; missing {', '.join(gone)}" if gone else "")
                    + (f"; new {', '.join(extra)}" if extra else ""))
        for key in old:
            found = structure_differs(old[key], new[key], f"{where}.{key}" if where else key)
            if found:
                return found
    return None
