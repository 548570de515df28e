"""The daily intelligence report as one self-contained HTML page.

`render(ReportData) -> str`: this module turns what `intelligence.report` judged into
plain values per section (rows of cells, chart markup, cards); the Jinja2 template
`templates/report.html.j2` lays them out with autoescaping on, so any text a producer
sent (a decision source, a feature name, a dead letter's reason) reaches the page as
text. The page needs no network: inline CSS, inline SVG charts (`pages.charts`) and a
few lines of inline script that only sort tables.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import jinja2
import numpy as np
import polars as pl
from markupsafe import Markup

from amc_learning.intelligence.report import (
    CalibrationCheck,
    ReportData,
    calibration_check,
    spans,
)
from amc_learning.pages.cells import Table, arms_table, num
from amc_learning.pages.charts import (
    Band,
    Bar,
    Mark,
    Series,
    bar_chart,
    empty,
    reliability_chart,
    time_chart,
)
from amc_learning.pages.models import models

TREND_BANDS = {"bull": "band-bull", "bear": "band-bear", "neutral": "band-neutral"}
MODE_MARKS = {  # mode: (css class, shape, key glyph)
    "shadow": ("s4", "circle", "●"),
    "canary": ("s1", "diamond", "◆"),
    "live": ("s2", "circle", "●"),
    "rejected": ("muted", "cross", "✕"),
    "rolled_back": ("alarm", "cross", "✕"),
    "superseded": ("muted", "circle", "●"),
}
SECTIONS = (
    ("calibration", "Are confidence scores honest?"),
    ("patterns", "Which patterns work"),
    ("features", "Which features drive returns"),
    ("regimes", "Market regime"),
    ("params", "Adaptive parameters"),
    ("models", "Scoring models' own parameters"),
    ("health", "Data-collection health"),
)


@dataclass(frozen=True)
class Card:
    key: str
    value: str
    note: str
    good: bool


def _calibration(data: ReportData) -> dict[str, Any]:
    check = calibration_check(data.decisions, data.calibration, data.min_out_of_sample)
    if check is None:
        return {"check": None, "chart": empty("reliability diagram",
                                              "no calibration map and outcomes yet", 120)}
    chart = reliability_chart("reliability: stated confidence vs realised win rate",
                              [("raw confidence", check.before),
                               ("after calibration", check.after)])
    maps = data.calibration.filter(pl.col("as_of") == check.snapshot_as_of)
    table = Table(
        [("map", "grouping and group"),
         ("method", "isotonic with ≥ 500 outcomes, else Platt scaling"),
         ("n", "decisions fitted on"), ("raw ECE", "in-sample ECE of the raw confidence")],
        [([(f"{r['grouping']} = {r['group_value']}", None), (r["method"], None),
           (num(r["sample_size"]), r["sample_size"]), (num(r["ece_raw"]), r["ece_raw"])], "")
         for r in maps.sort("grouping", "group_value").iter_rows(named=True)])
    return {"check": check, "chart": chart, "table": table}


def _patterns(data: ReportData) -> dict[str, Any]:
    p = data.patterns
    if p.is_empty():
        return {"n": 0}
    failing = set(data.failures["signature"]) if len(data.failures) else set()
    rows = []
    for r in p.sort("q_value", nulls_last=True).iter_rows(named=True):
        flag = "failure mode" if r["pattern_signature"] in failing or r["is_failure_mode"] else ""
        strong = r["q_value"] is not None and r["q_value"] < 0.1
        signature = Markup("<code>{}</code>").format(
            Markup("|<wbr>").join(r["pattern_signature"].split("|")))
        rows.append(([
            (signature, r["pattern_signature"]),
            (r["decision_type"] or "–", r["decision_type"] or ""),
            (r["regime"] or "–", r["regime"] or ""),
            (num(r["sample_size"]), r["sample_size"]),
            (num(r["success_rate"], pct=True), r["success_rate"]),
            (f"[{num(r['win_rate_ci_low'], pct=True)}, {num(r['win_rate_ci_high'], pct=True)}]",
             r["win_rate_ci_low"]),
            (num(r["shrunk_win_rate"], pct=True), r["shrunk_win_rate"]),
            (num(r["expectancy"], 4), r["expectancy"]),
            (num(r["profit_factor"], 2), r["profit_factor"]),
            (num(r["excess_t"], 2), r["excess_t"]),
            (num(r["q_value"]), r["q_value"]),
            (Markup('<span class="badge">{}</span>').format(flag) if flag else "", flag),
        ], "fail" if flag else ("strong" if strong else "")))
    headers = [
        ("signature", "tercile bins of the signature features"),
        ("type", "decision type"), ("regime", "market regime"),
        ("n", "decisions with a complete outcome"),
        ("win rate", "share with a positive side-adjusted return over the horizon"),
        ("95% CI", "Wilson interval of the win rate"),
        ("shrunk", "win rate shrunk toward its peers (empirical Bayes)"),
        ("expectancy", "mean side-adjusted return per decision"),
        ("profit factor", "gross gains / gross losses"),
        ("excess t", "Newey–West t of the excess return over peers"),
        ("q", "Benjamini–Hochberg q-value of the excess"),
        ("flag", "identified as a failure mode"),
    ]
    failures = [{**f, "kind": f["kind"].replace("_", " ")}
                for f in data.failures.iter_rows(named=True)] if len(data.failures) else []
    return {"n": len(p), "table": Table(headers, rows), "failures": failures}


def _features(data: ReportData) -> dict[str, Any]:
    f = data.features
    if f.is_empty():
        return {}
    regimes = sorted(f["regime"].unique().to_list())
    palette = {r: f"s{i % 6}" for i, r in enumerate(regimes)}
    ic = f.filter(pl.col("method") == "ic").with_columns(
        (pl.col("value") / pl.col("t_stat")).abs().alias("se"))
    ic = ic.sort(pl.col("t_stat").abs(), descending=True, nulls_last=True).head(24)

    def whiskers(r: dict[str, Any]) -> tuple[float | None, float | None]:
        se = r["se"]
        if se is None or not np.isfinite(se):
            return None, None
        return r["value"] - 1.96 * se, r["value"] + 1.96 * se

    bars = [Bar(f"{r['feature']} · {r['regime']}", r["value"] or 0.0, *whiskers(r),
                cls=palette[r["regime"]],
                title=f"{r['feature']} in {r['regime']}: mean IC {r['value']:+.4f}, "
                      f"Newey–West t {num(r['t_stat'], 2)}, IR {num(r['ir'], 2)}, "
                      f"{r['sessions'] or 0} sessions")
            for r in ic.iter_rows(named=True) if r["value"] is not None]
    perm = f.filter(pl.col("method") == "permutation").sort("value", descending=True,
                                                            nulls_last=True).head(24)
    perm_bars = [Bar(f"{r['feature']} · {r['regime']}", r["value"] or 0.0,
                     cls=palette[r["regime"]],
                     title=f"{r['feature']} in {r['regime']}: R² lost when shuffled "
                           f"{num(r['value'], 4)}")
                 for r in perm.iter_rows(named=True) if r["value"] is not None]
    return {"ic": bar_chart("feature rank IC by regime", bars, x_label="mean rank IC"),
            "importance": bar_chart("permutation importance", perm_bars, x_label="R² lost")}


def _regimes(data: ReportData) -> dict[str, Any]:
    idx = data.index
    if idx.is_empty():
        return {"chart": empty("regime timeline", "no index bars stored yet", 120),
                "empty": True}
    days = idx["session"].to_list()
    regimes = data.regimes
    bands, strip = [], []
    if len(regimes):
        rd = regimes["session"].to_list()
        bands = [Band(a, b, TREND_BANDS.get(t, "band-neutral"), f"{t}: {a} .. {b}")
                 for a, b, t in spans(rd, regimes["trend"].to_list())]
        strip = [Band(a, b, "band-highvol", f"high volatility: {a} .. {b}")
                 for a, b, v in spans(rd, regimes["volatility"].to_list()) if v == "high_vol"]
    rules = [(r["alarm_session"], f"CUSUM alarm on {r['stream']} (pass of {r['as_of']})")
             for r in data.change_points.iter_rows(named=True) if r["alarm_session"]]
    chart = time_chart("index close with trend regimes",
                       [Series(data.index_symbol, days, idx["close"].to_list())],
                       y_label="index close (log)", bands=bands, strip=strip, rules=rules,
                       log_y=True, height=280)
    current, since = None, None
    if len(regimes):
        current = regimes.row(-1, named=True)["regime"]
        runs = spans(regimes["session"].to_list(), regimes["regime"].to_list())
        since = runs[-1][0] if runs else None
    return {"chart": chart, "current": current, "since": since, "empty": False}


def _params(data: ReportData) -> dict[str, Any]:
    p = data.params
    if p.is_empty():
        return {}
    marks = [Mark(r["as_of"], float(r["version"]), MODE_MARKS[r["mode"]][0],
                  f"version {r['version']} {r['mode']} as of {r['as_of']}",
                  MODE_MARKS[r["mode"]][1])
             for r in p.iter_rows(named=True)]
    live = p.filter(pl.col("mode") == "live").sort("as_of")
    series = []
    if len(live):
        days: list[date] = []
        values: list[float | None] = []
        for r in live.iter_rows(named=True):
            if days:
                days.append(r["as_of"])
                values.append(values[-1])
            days.append(r["as_of"])
            values.append(float(r["version"]))
        days.append(max(data.as_of, days[-1]))
        values.append(values[-1])
        series = [Series("live version", days, values)]
    chart = time_chart("params versions by mode", series, y_label="version", marks=marks,
                       height=200)
    rows = []
    for r in p.sort("recorded_at", "version", descending=True).head(30).iter_rows(named=True):
        evidence = r["evidence"] if isinstance(r["evidence"], dict) else {}
        rows.append(([
            (str(r["as_of"]), str(r["as_of"])), (num(r["version"]), r["version"]),
            (r["mode"] + (f" {r['canary_pct']:g}%" if r["mode"] == "canary" else ""),
             r["mode"]),
            (num(r["parent_version"]) if r["parent_version"] else "fallback",
             r["parent_version"] or 0),
            ("yes" if r["published"] else "record only", int(r["published"])),
            (", ".join(f"{k}: {_short(v)}" for k, v in evidence.items()), None)],
            "fail" if r["mode"] == "rolled_back" else ""))
    table = Table([("as of", "session of the cycle"), ("version", ""), ("mode", ""),
                   ("parent", "the live version it was judged against"),
                   ("published", "sent on the params topic"), ("evidence", "why")], rows)
    keys = [(cls, glyph, mode.replace("_", " ")) for mode, (cls, _, glyph) in MODE_MARKS.items()]
    return {"chart": chart, "legend": keys, "table": table, "arms": arms_table(data.arms)}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)[:80]
    return str(value)


def _bars(bars: dict[str, Any], cards: list[Card]) -> dict[str, Any]:
    """The market-data bridge: its last sync, and the symbols waiting for bars (only where
    it is in use: a simulation publishes its own bars)."""
    last, waiting = bars.get("last_sync"), bars.get("waiting") or []
    if last is None:
        return {"bridge": None, "waiting": None}
    longest = f"the longest for {waiting[0]['waiting_h']:,.0f} h" if waiting else "none"
    cards.append(Card("symbols waiting for bars", f"{len(waiting):,}", longest, not waiting))
    finished = last["finished_at"]
    bridge = (f"Last prices sync: {finished:%Y-%m-%d %H:%M} UTC from {last['provider']}, "
              f"{last.get('published', 0):,} bars for {last.get('symbols', 0):,} symbols; "
              f"{last.get('throttled', 0):,} answers throttled, {last.get('waited_s', 0):,.1f} s "
              f"waited; {len(last.get('failed') or {}):,} symbols refused. Regimes: "
              f"{last.get('regimes') or '–'}.")
    table = Table(
        [("symbol", ""), ("sessions", "sessions with no bar yet"),
         ("oldest", "the oldest session waiting"), ("waiting", "hours since its close")],
        [([(r["symbol"], r["symbol"]), (num(r["sessions"]), r["sessions"]),
           (str(r["oldest"]), str(r["oldest"])), (f"{r['waiting_h']:,.0f} h", r["waiting_h"])],
          "fail" if r["waiting_h"] > 48 else "") for r in waiting[:30]]) if waiting else None
    return {"bridge": bridge, "waiting": table}


def _health(data: ReportData) -> dict[str, Any]:
    c, h = data.collection, data.health
    out: dict[str, Any] = {"chart": None, "quiet": 0, "dead_letters": None, "cycles": None}
    if len(c):
        days = c["session"].to_list()
        names = [n for n in c.columns if n != "session"]
        out["chart"] = time_chart("rows stored per session", [
            Series(n.replace("_", " "), days, [v if v else None for v in c[n].to_list()])
            for n in names], y_label="rows per session (log)", log_y=True, height=240)
        out["quiet"] = len(c.filter(pl.sum_horizontal(names) == 0))
    stored, rejected = h.get("stored", 0), h.get("rejected", 0)
    rate = stored / (stored + rejected) if stored + rejected else None
    out["cards"] = [
        Card("collection success", num(rate, pct=True) if rate is not None else "–",
             f"{stored:,} stored, {rejected:,} dead letters", rate is not None and rate >= 0.99),
        Card("outcomes open / matured / closed",
             f"{h.get('open', 0):,} / {h.get('matured', 0):,} / {h.get('closed', 0):,}", "",
             True),
        Card("outcome backlog", f"{h.get('backlog', 0):,}",
             f"oldest {h['backlog_oldest']}" if h.get("backlog_oldest")
             else "waiting for decisions", not h.get("backlog")),
    ]
    d = data.dead_letters
    if len(d):
        by_reason = d.group_by("reason").agg(pl.col("n").sum(), pl.col("day").max()) \
            .sort("n", descending=True)
        out["dead_letters"] = Table(
            [("reason", "why the input was rejected"), ("count", ""),
             ("last", "day of the last rejection (wall clock)")],
            [([(r["reason"], r["reason"]), (num(r["n"]), r["n"]), (str(r["day"]), str(r["day"]))],
              "") for r in by_reason.iter_rows(named=True)])
    out.update(_bars(data.bars, out["cards"]))
    out["quality"], out["quality_as_of"] = _quality(data.cycles)
    if len(data.cycles):
        rows = []
        for r in data.cycles.sort("ran_at", descending=True).head(10).iter_rows(named=True):
            summary = r["summary"] if isinstance(r["summary"], dict) else {}
            analysis = summary.get("analysis")
            ok = isinstance(analysis, dict)
            rows.append(([(r["kind"], r["kind"]), (str(r["as_of"]), str(r["as_of"])),
                          (r["ran_at"].strftime("%Y-%m-%d %H:%M"), str(r["ran_at"])),
                          ("stored" if ok else str(analysis or "–"), int(ok))],
                         "" if ok else "fail"))
        out["cycles"] = Table([("kind", ""), ("as of", "session"), ("ran at", "wall clock, UTC"),
                               ("analysis", "what the pass stored, or why it did not")], rows)
    return out


def _quality(cycles: pl.DataFrame) -> tuple[Table | None, str | None]:
    """The field findings of the newest daily cycle that checked them."""
    if not len(cycles):
        return None, None
    for r in cycles.sort("ran_at", descending=True).iter_rows(named=True):
        summary = r["summary"] if isinstance(r["summary"], dict) else {}
        if r["kind"] != "daily" or "data_quality" not in summary:
            continue
        findings = summary["data_quality"]
        table = Table([("producer", ""), ("scoring model", ""), ("field", ""),
                       ("finding", "stuck, missing_rise or out_of_scale"), ("detail", "")],
                      [([(f[k], f[k]) for k in ("producer", "scoring_model", "field", "kind",
                                                 "detail")], "fail") for f in findings])
        return (table if findings else None), str(r["as_of"])
    return None, None


def _summary(data: ReportData, check: CalibrationCheck | None) -> list[Card]:
    p = data.params
    live = p.filter(pl.col("mode") == "live").sort("as_of") if len(p) else p
    if len(live):
        last = live.row(-1, named=True)
        rolled = p.filter((pl.col("mode") == "rolled_back") & (pl.col("as_of") > last["as_of"]))
        age = (data.as_of - last["as_of"]).days
        params = Card("live params", f"v{last['version']}",
                      f"live since {last['as_of']} ({age} days)", rolled.is_empty())
    else:
        params = Card("live params", "fallback", "no live version yet: conservative defaults",
                      True)
    if check:
        ece = Card("ECE raw → calibrated", f"{check.ece_before[0]:.3f} → {check.ece_after[0]:.3f}",
                   ("out of sample, " if check.out_of_sample else "in-sample, ")
                   + f"n = {check.n:,}",
                   check.out_of_sample and check.ece_after[0] <= check.ece_before[1])
    else:
        ece = Card("ECE raw → calibrated", "–", "no map yet", True)
    regime = data.regimes.row(-1, named=True)["regime"] if len(data.regimes) else "–"
    return [
        Card("decisions with outcomes", f"{len(data.decisions):,}", f"complete at {data.as_of}",
             True),
        params, ece,
        Card("failure modes", f"{len(data.failures):,}", "newest pass", data.failures.is_empty()),
        Card("regime", str(regime), "today's causal label", True),
    ]


@functools.cache
def environment() -> jinja2.Environment:
    """The pages' templates: autoescaped, strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("amc_learning.pages", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    env.filters["num"] = num
    return env


def _template() -> jinja2.Template:
    return environment().get_template("report.html.j2")


def render(data: ReportData) -> str:
    """The whole page."""
    calibration = _calibration(data)
    window = None
    if len(data.patterns):
        window = (data.patterns["window_start"].min(), data.patterns["window_end"].max())
    return _template().render(
        data=data, sections=SECTIONS, window=window,
        generated=data.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        summary=_summary(data, calibration["check"]), calibration=calibration,
        patterns=_patterns(data), features=_features(data), regimes=_regimes(data),
        params=_params(data), models=models(data), health=_health(data))
