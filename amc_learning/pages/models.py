"""The report's section per scoring model: what its producer declared and what was
learned of it, side by side, with the evidence and a chart of the changed tiers."""

from __future__ import annotations

from typing import Any

from amc_learning.intelligence.report import ReportData
from amc_learning.pages.cells import Table, arms_table, num
from amc_learning.pages.charts import Bar, bar_chart


def models(data: ReportData) -> list[dict[str, Any]]:
    """Per declared scoring model with a set of its own: its declared, live and proposed
    parameters side by side, each change with its evidence, a chart of the changed tiers
    (declared vs learned, with the fit's interval), its versions, and what trading made
    under each version its decisions name."""
    out = []
    for m in data.models:
        live = m.live[1] if m.live else None
        proposed = m.proposed[2] if m.proposed else None
        head = (f"live: version {m.live[0]}" if m.live else "live: nothing learned, the "
                "producer's own") + (f"; proposed: version {m.proposed[0]} ({m.proposed[1]})"
                                     if m.proposed else "; nothing in flight")
        section: dict[str, Any] = {"model": m.scoring_model, "name": m.name, "head": head}
        if m.kind == "tiered":
            section.update(_tiered(m, live, proposed))
        else:
            section.update(_weights(m, live, proposed))
        history = [([(str(r["as_of"]), str(r["as_of"])), (num(r["version"]), r["version"]),
                     (r["mode"], r["mode"])], "fail" if r["mode"] == "rolled_back" else "")
                   for r in m.history.sort("as_of", "version", descending=True).head(20)
                   .iter_rows(named=True)]
        section["history"] = Table([("as of", ""), ("version", ""), ("mode", "")], history)
        section["arms"] = arms_table(m.arms)
        out.append(section)
    return out


def _tiered(m: Any, live: Any, proposed: Any) -> dict[str, Any]:
    declared = m.declared.tables
    notes = {(n["factor"], n["tier"]): n for n in m.notes}
    rate = float(m.evidence.get("points_per_unit_return") or 0.0)
    read = set(m.read_by_producer)
    rows, bars = [], []
    for factor, tiers in declared.items():
        for tier, points in tiers.items():
            now = live.tables[factor][tier] if live else points
            new = proposed.tables[factor][tier] if proposed else now
            note = notes.get((factor, tier))
            if now == points and new == now and not (note and note["why"] == "moved"):
                continue
            effect = (f"{note['effect']:+.2%} [{note['low']:+.2%}, {note['high']:+.2%}]"
                      if note else "–")
            rows.append(([(f"{factor}.{tier}", f"{factor}.{tier}"), (num(points), points),
                          (num(now), now), (num(new), new),
                          (num(note["n"]) if note else "–", note["n"] if note else 0),
                          (effect, note["effect"] if note else 0),
                          (num(note["q"]) if note else "–", note["q"] if note else 1),
                          ("yes" if factor in read else "not yet", int(factor in read)),
                          (note["why"] if note else "", None)],
                         "" if factor in read else "muted"))
            label = f"{factor}.{tier}"
            bars.append(Bar(f"{label} declared", float(points), cls="s0"))
            low = high = None
            if note and rate:
                low = note["target"] + rate * (note["low"] - note["effect"])
                high = note["target"] + rate * (note["high"] - note["effect"])
            bars.append(Bar(f"{label} learned", float(new), low, high, cls="s2",
                            title=f"{label}: learned {new} (declared {points})"
                            + (f"; the fit's target {note['target']:.0f} "
                               f"[{low:.0f}, {high:.0f}]" if low is not None and note
                               else "")))
    table = Table([("tier", "factor.tier"), ("declared", "the producer's own points"),
                   ("live", "the points live now"), ("proposed", "the version in flight"),
                   ("n", "candidates in the tier"),
                   ("effect", "on the 7-session excess return, against the factor's most "
                              "common state, 95 % interval"),
                   ("q", "Benjamini-Hochberg across all tiers tested"),
                   ("read", "does the producer's code read this table from its file?"),
                   ("why", "what the guardrails did")], rows)
    chart = bar_chart(f"{m.scoring_model}: changed tiers, declared vs learned", bars,
                      x_label="points (whiskers: the fit's target and its interval)")
    read_note = (f"{len(m.read_by_producer)} of {m.tables} tables are read by its code "
                 f"({', '.join(m.read_by_producer)}); a change to another table is shown "
                 "here, and delivered in its file, but changes nothing until the code "
                 "reads it." if m.read_by_producer else "")
    return {"table": table if rows else None, "chart": chart if bars else None,
            "read": read_note}


def _weights(m: Any, live: Any, proposed: Any) -> dict[str, Any]:
    ic_t = m.evidence.get("ic_t") or {}
    rows = []
    for name, weight in m.declared.weights.items():
        now = live.weights[name] if live else weight
        new = proposed.weights[name] if proposed else now
        rows.append(([(name, name), (num(weight), weight), (num(now), now), (num(new), new),
                      (num(ic_t.get(name)), ic_t.get(name) or 0)], ""))
    rows.append(([("threshold", "~"), (num(m.declared.threshold), m.declared.threshold),
                  (num(live.threshold if live else m.declared.threshold), 0),
                  (num(proposed.threshold if proposed else None), 0), ("", None)], ""))
    table = Table([("component", ""), ("declared", "the producer's own"), ("live", ""),
                   ("proposed", "the version in flight"),
                   ("IC t", "Newey-West t of the component's daily rank IC")], rows)
    return {"table": table, "chart": None, "read": ""}
