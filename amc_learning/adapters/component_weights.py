"""Learned params in a component model's own shape: AlphaStack's weights.

AlphaStack 4.1 keeps its six weights in its code (`ScoringEngine.BASE_WEIGHTS`, keyed
S1..S6, summing to 1) and its trade-ready bar beside them (75 on 0–100); it reads no file
of them yet. `component_weights` writes what would replace them, in that shape:
`BASE_WEIGHTS` under the producer's own keys (the declaration's `key`, else the
component's name), `TRADE_READY_SCORE`, which component each key is, a `version` naming
the base it was learned from (`4.1+learned.3`), `last_updated`, and `update_history` with
an entry per learned version that changed them: each weight's change with the fit's
evidence (its IC t), the trigger, and that the producer's code does not read the file.
"""

from __future__ import annotations

import copy
from typing import Any

from amc_learning.adapters.scanner_weights import Learned
from amc_learning.schemas.models import ComponentModel
from amc_learning.schemas.params import ComponentParams

WEIGHTS, THRESHOLD = "BASE_WEIGHTS", "TRADE_READY_SCORE"


def declared_weights(model: ComponentModel) -> dict[str, Any]:
    """The weights as the declaration describes them; no history."""
    return {WEIGHTS: {c.key or c.name: c.weight for c in model.components},
            THRESHOLD: float(model.threshold),
            "components": {c.key or c.name: c.name for c in model.components},
            "version": model.version, "last_updated": "", "update_history": []}


def component_weights(params: ComponentParams, model: ComponentModel,
                      learned: list[Learned],
                      base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The weights in place of `base` (default: the declared ones) under `params`, with a
    history entry for the last version of `learned` when they changed."""
    out = copy.deepcopy(base) if base is not None else declared_weights(model)
    before, threshold_before = dict(out[WEIGHTS]), out[THRESHOLD]
    keys = {c.name: c.key or c.name for c in model.components}
    out[WEIGHTS] = {keys[c]: round(w, 4) for c, w in params.weights.items()}
    out[THRESHOLD] = float(params.threshold)
    changed = [(k, before.get(k), w) for k, w in out[WEIGHTS].items() if before.get(k) != w]
    if learned and (changed or out[THRESHOLD] != threshold_before):
        last = learned[-1]
        base_version = str(out.get("version", model.version)).split("+")[0]
        version = f"{base_version}+learned.{last.version}"
        ic_t = {n["component"]: n["ic_t"] for n in last.notes}
        names = {v: k for k, v in keys.items()}
        out["update_history"] = [*out.get("update_history", []), {
            "date": str(last.live_since),
            "version": f"{out.get('version', model.version)} \u2192 {version}",
            "changes": [f"{k} ({names[k]}): {old} \u2192 {new}"
                        + (f" (IC t {ic_t[names[k]]:+.2f})" if names[k] in ic_t else "")
                        for k, old, new in changed]
            + ([f"{THRESHOLD}: {threshold_before:g} \u2192 {out[THRESHOLD]:g}"]
               if out[THRESHOLD] != threshold_before else []),
            "trigger": (f"learning engine, params version {last.version}, live since "
                        f"{last.live_since}"),
            "note": (f"{model.name} {model.version} keeps its weights and bar in its code "
                     "(ScoringEngine.BASE_WEIGHTS): it reads no file of them yet"),
        }]
        out["version"] = version
        out["last_updated"] = str(last.live_since)
    return out
