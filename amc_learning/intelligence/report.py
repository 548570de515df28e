"""The daily intelligence report: one self-contained HTML page from what the learner stored.

`render(ReportData) -> str` is pure: the caller (`store.report.gather`) reads the tables, this
module judges and draws. The page needs no network: inline CSS, inline SVG charts
(`intelligence.charts`) and a few lines of inline script that only sort tables.

The reliability diagram is judged out of sample where it can be: the calibration maps of
the newest snapshot that leaves at least `min_out_of_sample` decisions after its window
are applied to those later decisions only. Where none does, the page says the "after"
curve is in-sample (it is then optimistic by construction).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from html import escape
from typing import Any

import numpy as np
import polars as pl

from amc_learning.intelligence.calibration import apply_map, expected_calibration_error, reliability
from amc_learning.intelligence.charts import (
    Band,
    Bar,
    Bin,
    Mark,
    Series,
    bar_chart,
    empty,
    reliability_chart,
    time_chart,
)

BINS = 10
TREND_BANDS = {"bull": "band-bull", "bear": "band-bear", "neutral": "band-neutral"}
MODE_MARKS = {  # mode: (css class, shape)
    "shadow": ("s4", "circle"),
    "canary": ("s1", "diamond"),
    "live": ("s2", "circle"),
    "rejected": ("muted", "cross"),
    "rolled_back": ("alarm", "cross"),
    "superseded": ("muted", "circle"),
}


@dataclass(frozen=True)
class ReportData:
    """What the report shows, as read from the learning database as of `as_of`.

    decisions: session, decision_source, confidence, win — decisions whose horizon
      outcome was complete at as_of (`analysis.known_by`).
    calibration: the calibration_snapshots rows up to as_of (knots as [[x, y], ...]).
    patterns / failures / features / change_points: the newest pass's rows.
    index: session, close; regimes: session, trend, volatility, regime.
    params: params_history rows; cycles: learning_cycles rows (kind, as_of, ran_at, summary).
    collection: per session, rows stored per table; dead_letters: reason, day, n.
    health: scalar counts (outcomes by type, backlog, totals).
    """

    as_of: date
    generated_at: datetime
    decisions: pl.DataFrame
    calibration: pl.DataFrame
    patterns: pl.DataFrame
    failures: pl.DataFrame
    features: pl.DataFrame
    change_points: pl.DataFrame
    index: pl.DataFrame
    regimes: pl.DataFrame
    params: pl.DataFrame
    cycles: pl.DataFrame
    collection: pl.DataFrame
    dead_letters: pl.DataFrame
    health: dict[str, Any]
    params_name: str = "default"
    min_out_of_sample: int = 100


# --- judgement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationCheck:
    """Raw vs calibrated reliability on one set of decisions."""

    snapshot_as_of: date
    window_end: date
    out_of_sample: bool
    n: int
    before: list[Bin]
    after: list[Bin]
    ece_before: tuple[float, float, float]  # estimate, 90% bootstrap low, high
    ece_after: tuple[float, float, float]


def _bins(prob: np.ndarray, won: np.ndarray) -> list[Bin]:
    table = reliability(prob, won, BINS)
    return [Bin(r["predicted"], r["realised"], r["n"]) for r in table.iter_rows(named=True)]


def _ece(prob: np.ndarray, won: np.ndarray, draws: int = 1000,
         seed: int = 0) -> tuple[float, float, float]:
    """ECE with a 90% bootstrap interval, drawn per bin so its cost does not grow with the
    number of decisions (a daily cycle of a million decisions writes this page).

    Each draw resamples the bin counts (multinomial), each bin's win count (binomial at its
    win rate) and its mean stated probability (normal, with the bin's spread): the
    resampling of decisions, summarised by what ECE depends on."""
    idx = np.minimum((prob * BINS).astype(int), BINS - 1)
    n_b = np.bincount(idx, minlength=BINS).astype(float)
    used = n_b > 0
    n_b = n_b[used]
    mean_p = np.bincount(idx, prob, minlength=BINS)[used] / n_b
    spread = np.sqrt(np.maximum(np.bincount(idx, prob**2, minlength=BINS)[used] / n_b
                                - mean_p**2, 0.0))
    rate = np.bincount(idx, won, minlength=BINS)[used] / n_b
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(prob), n_b / n_b.sum(), size=draws)
    safe = np.maximum(counts, 1)
    stated = mean_p + rng.standard_normal(counts.shape) * spread / np.sqrt(safe)
    realised = rng.binomial(counts, rate) / safe
    boot = (counts * np.abs(realised - stated)).sum(axis=1) / len(prob)
    low, high = np.quantile(boot, [0.05, 0.95])
    return expected_calibration_error(prob, won, BINS), float(low), float(high)


def calibration_check(decisions: pl.DataFrame, snapshots: pl.DataFrame,
                      min_out_of_sample: int = 100) -> CalibrationCheck | None:
    """Apply the per-source maps of a snapshot to decisions it was not fitted on, if any."""
    if decisions.is_empty() or snapshots.is_empty():
        return None
    maps = snapshots.filter(pl.col("grouping") == "decision_source")
    if maps.is_empty():
        return None
    ends = maps.select("as_of", "window_end").unique().sort("as_of", descending=True)
    chosen, test, out = ends.row(0), decisions, False
    for as_of, window_end in ends.iter_rows():
        later = decisions.filter(pl.col("session") > window_end)
        if len(later) >= min_out_of_sample:
            chosen, test, out = (as_of, window_end), later, True
            break
    if not out:
        test = decisions.filter(pl.col("session") <= chosen[1])
    if test.is_empty():
        return None
    knots = {g: k for g, k in maps.filter(pl.col("as_of") == chosen[0])
             .select("group_value", "knots").iter_rows()}
    raw = test["confidence"].to_numpy().astype(float).clip(0.0, 1.0)
    calibrated = raw.copy()
    sources = test["decision_source"].to_numpy()
    for group, pairs in knots.items():
        mask = sources == group
        if mask.any() and pairs:
            xs, ys = zip(*pairs, strict=True)
            calibrated[mask] = apply_map(xs, ys, raw[mask])
    won = test["win"].cast(pl.Float64).to_numpy()
    return CalibrationCheck(chosen[0], chosen[1], out, len(test), _bins(raw, won),
                            _bins(calibrated, won), _ece(raw, won), _ece(calibrated, won))


def _spans(days: Sequence[date], labels: Sequence[str | None]) -> list[tuple[date, date, str]]:
    """Runs of equal consecutive labels as (first day, last day, label); None breaks a run."""
    spans: list[tuple[date, date, str]] = []
    for day, label in zip(days, labels, strict=True):
        if label is None:
            continue
        if spans and spans[-1][2] == label:
            spans[-1] = (spans[-1][0], day, label)
        else:
            spans.append((day, day, label))
    return spans


# --- sections -----------------------------------------------------------------------------


def _f(value: Any, digits: int = 3, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if pct:
        return f"{value * 100:.1f}%"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def _table(headers: Sequence[tuple[str, str]], rows: Sequence[tuple[Sequence[tuple[str, Any]],
                                                                    str]],
           sortable: bool = True) -> str:
    """headers: (title, tooltip); rows: ([(shown html, sort key), ...], row css class)."""
    head = "".join(f'<th title="{escape(tip)}">{escape(title)}</th>' for title, tip in headers)
    body = []
    for cells, cls in rows:
        tds = "".join(
            f'<td data-v="{escape(str(key))}">{shown}</td>' if key is not None
            else f"<td>{shown}</td>" for shown, key in cells)
        body.append(f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>")
    attr = ' class="sortable"' if sortable else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _calibration_section(data: ReportData) -> tuple[str, CalibrationCheck | None]:
    check = calibration_check(data.decisions, data.calibration, data.min_out_of_sample)
    if check is None:
        return (empty("reliability diagram", "no calibration map and outcomes yet", 120)
                + "<p>The learner fits a calibration map once decisions have complete "
                  "outcomes.</p>", None)
    chart = reliability_chart("reliability: stated confidence vs realised win rate",
                              [("raw confidence", check.before),
                               ("after calibration", check.after)])
    b, a = check.ece_before, check.ece_after
    if check.out_of_sample:
        scope = (f"<p class='ok'>Out of sample: the maps of the {check.snapshot_as_of} pass "
                 f"(fitted on decisions up to {check.window_end}) applied to the "
                 f"{check.n:,} later decisions with complete outcomes.</p>")
    else:
        scope = (f"<p class='warn'><b>In-sample</b>: fewer than {data.min_out_of_sample} "
                 f"decisions after any map's window, so the maps of the "
                 f"{check.snapshot_as_of} pass are shown on the {check.n:,} decisions they "
                 "were fitted on. The 'after' curve is optimistic by construction.</p>")
    text = (f"{scope}<p>Expected calibration error (10 bins, 90% bootstrap interval): raw "
            f"<b>{b[0]:.3f}</b> [{b[1]:.3f}, {b[2]:.3f}], calibrated <b>{a[0]:.3f}</b> "
            f"[{a[1]:.3f}, {a[2]:.3f}]. Points on the diagonal are honest; point area "
            "follows the number of decisions in the bin.</p>")
    maps = data.calibration.filter(pl.col("as_of") == check.snapshot_as_of)
    rows = [([(escape(f"{r['grouping']} = {r['group_value']}"), None),
              (escape(r["method"]), None), (_f(r["sample_size"]), r["sample_size"]),
              (_f(r["ece_raw"]), r["ece_raw"])], "")
            for r in maps.sort("grouping", "group_value").iter_rows(named=True)]
    table = _table([("map", "grouping and group"), ("method", "isotonic with ≥ 500 outcomes, "
                    "else Platt scaling"), ("n", "decisions fitted on"),
                    ("raw ECE", "in-sample ECE of the raw confidence")], rows)
    return f'<div class="pair"><div>{chart}</div><div>{text}{table}</div></div>', check


def _patterns_section(data: ReportData) -> str:
    p = data.patterns
    if p.is_empty():
        return "<p>No pattern performance stored yet.</p>"
    failing = set(data.failures["signature"]) if len(data.failures) else set()
    rows = []
    for r in p.sort("q_value", nulls_last=True).iter_rows(named=True):
        flag = "failure mode" if r["pattern_signature"] in failing or r["is_failure_mode"] else ""
        strong = r["q_value"] is not None and r["q_value"] < 0.1
        ci = (f"[{_f(r['win_rate_ci_low'], pct=True)}, {_f(r['win_rate_ci_high'], pct=True)}]")
        rows.append(([
            (f"<code>{escape(r['pattern_signature']).replace('|', '|<wbr>')}</code>",
             r["pattern_signature"]),
            (escape(r["decision_type"] or "–"), r["decision_type"] or ""),
            (escape(r["regime"] or "–"), r["regime"] or ""),
            (_f(r["sample_size"]), r["sample_size"]),
            (_f(r["success_rate"], pct=True), r["success_rate"]),
            (ci, r["win_rate_ci_low"]),
            (_f(r["shrunk_win_rate"], pct=True), r["shrunk_win_rate"]),
            (_f(r["expectancy"], 4), r["expectancy"]),
            (_f(r["profit_factor"], 2), r["profit_factor"]),
            (_f(r["excess_t"], 2), r["excess_t"]),
            (_f(r["q_value"]), r["q_value"]),
            (f'<span class="badge">{flag}</span>' if flag else "", flag),
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
    failures = ""
    if len(data.failures):
        items = "".join(
            f"<li><b>{escape(f['kind'].replace('_', ' '))}</b> <code>{escape(f['signature'])}"
            f"</code> (n = {f['sample_size']:,}): {escape(f['detail'])}</li>"
            for f in data.failures.iter_rows(named=True))
        failures = f"<h3>Failure modes</h3><ul class='failures'>{items}</ul>"
    return (f"<p>{len(p):,} patterns; rows with q &lt; 0.1 in bold, failure modes in red. "
            "Click a column to sort.</p><div class='scroll'>" + _table(headers, rows)
            + "</div>" + failures)


def _features_section(data: ReportData) -> str:
    f = data.features
    if f.is_empty():
        return "<p>No feature attribution stored yet.</p>"
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
                      f"Newey–West t {_f(r['t_stat'], 2)}, IR {_f(r['ir'], 2)}, "
                      f"{r['sessions'] or 0} sessions")
            for r in ic.iter_rows(named=True) if r["value"] is not None]
    perm = f.filter(pl.col("method") == "permutation").sort("value", descending=True,
                                                            nulls_last=True).head(24)
    perm_bars = [Bar(f"{r['feature']} · {r['regime']}", r["value"] or 0.0,
                     cls=palette[r["regime"]],
                     title=f"{r['feature']} in {r['regime']}: R² lost when shuffled "
                           f"{_f(r['value'], 4)}")
                 for r in perm.iter_rows(named=True) if r["value"] is not None]
    return ("<p>Mean daily rank IC of each feature with the horizon return, per regime "
            "(whiskers: ±1.96 Newey–West standard errors; sorted by |t|). An interval "
            "that crosses zero is no evidence.</p>"
            + bar_chart("feature rank IC by regime", bars, x_label="mean rank IC")
            + "<p>Walk-forward permutation importance: out-of-sample R² lost when the "
              "feature is shuffled.</p>"
            + bar_chart("permutation importance", perm_bars, x_label="R² lost"))


def _regime_section(data: ReportData) -> str:
    idx = data.index
    if idx.is_empty():
        return empty("regime timeline", "no index bars stored yet", 120)
    days = idx["session"].to_list()
    regimes = data.regimes
    bands, strip = [], []
    if len(regimes):
        rd = regimes["session"].to_list()
        bands = [Band(a, b, TREND_BANDS.get(t, "band-neutral"), f"{t}: {a} .. {b}")
                 for a, b, t in _spans(rd, regimes["trend"].to_list())]
        strip = [Band(a, b, "band-highvol", f"high volatility: {a} .. {b}")
                 for a, b, v in _spans(rd, regimes["volatility"].to_list()) if v == "high_vol"]
    rules = [(r["alarm_session"], f"CUSUM alarm on {r['stream']} (pass of {r['as_of']})")
             for r in data.change_points.iter_rows(named=True) if r["alarm_session"]]
    chart = time_chart("index close with trend regimes", [Series("^IXIC", days,
                                                                  idx["close"].to_list())],
                       y_label="index close (log)", bands=bands, strip=strip, rules=rules,
                       log_y=True, height=280)
    current = regimes.row(-1, named=True) if len(regimes) else None
    now = (f"Current regime: <b>{escape(str(current['regime']))}</b> (since "
           f"{_current_since(regimes)})." if current else "No regime labels yet.")
    legend = ('<span class="swatch band-bull"></span> bull <span class="swatch band-bear">'
              '</span> bear <span class="swatch band-neutral"></span> neutral '
              '<span class="swatch band-highvol"></span> high volatility (strip) '
              '<span class="swatch rule-key"></span> change-point alarm')
    return (f"<p>{now} Labels are causal: each session's label uses only bars up to it, "
            f"and is never rewritten.</p>{chart}<p class='legend'>{legend}</p>")


def _current_since(regimes: pl.DataFrame) -> str:
    spans = _spans(regimes["session"].to_list(), regimes["regime"].to_list())
    return str(spans[-1][0]) if spans else "–"


def _params_section(data: ReportData) -> str:
    p = data.params
    if p.is_empty():
        return "<p>No parameter version issued yet: the trading engine runs on the fallback.</p>"
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
    keys = "".join(f'<span class="key-mark {cls}">{"✕" if shape == "cross" else "◆" if shape == "diamond" else "●"}</span> {mode.replace("_", " ")} '  # noqa: E501
                   for mode, (cls, shape) in MODE_MARKS.items())
    rows = []
    for r in p.sort("recorded_at", "version", descending=True).head(30).iter_rows(named=True):
        evidence = r["evidence"] if isinstance(r["evidence"], dict) else {}
        why = ", ".join(f"{k}: {_short(v)}" for k, v in evidence.items())
        cls = "fail" if r["mode"] == "rolled_back" else ""
        rows.append(([
            (str(r["as_of"]), str(r["as_of"])), (_f(r["version"]), r["version"]),
            (escape(r["mode"]) + (f" {r['canary_pct']:g}%" if r["mode"] == "canary" else ""),
             r["mode"]),
            (_f(r["parent_version"]) if r["parent_version"] else "fallback",
             r["parent_version"] or 0),
            ("yes" if r["published"] else "record only", int(r["published"])),
            (escape(why), None)], cls))
    table = _table([("as of", "session of the cycle"), ("version", ""), ("mode", ""),
                    ("parent", "the live version it was judged against"),
                    ("published", "sent on the params topic"), ("evidence", "why")], rows)
    return (f"{chart}<p class='legend'>{keys} — line: the live version</p>"
            f"<h3>Latest changes</h3>{table}")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)[:80]
    return str(value)


def _health_section(data: ReportData) -> str:
    c = data.collection
    h = data.health
    parts = []
    if len(c):
        days = c["session"].to_list()
        names = [n for n in c.columns if n != "session"]
        parts.append(time_chart("rows stored per session", [
            Series(n.replace("_", " "), days,
                   [v if v else None for v in c[n].to_list()]) for n in names],
            y_label="rows per session (log)", log_y=True, height=240))
        quiet = c.filter(pl.sum_horizontal(names) == 0)
        if len(quiet):
            parts.append(f"<p class='warn'>{len(quiet)} sessions with nothing stored.</p>")
    stored, rejected = h.get("stored", 0), h.get("rejected", 0)
    rate = stored / (stored + rejected) if stored + rejected else None
    cards = [
        ("collection success", _f(rate, pct=True) if rate is not None else "–",
         f"{stored:,} stored, {rejected:,} dead letters", rate is not None and rate >= 0.99),
        ("outcomes open / matured / closed",
         f"{h.get('open', 0):,} / {h.get('matured', 0):,} / {h.get('closed', 0):,}", "", True),
        ("outcome backlog", f"{h.get('backlog', 0):,}",
         f"oldest {h['backlog_oldest']}" if h.get("backlog_oldest") else "waiting for decisions",
         not h.get("backlog")),
    ]
    parts.append(_cards(cards))
    d = data.dead_letters
    if len(d):
        by_reason = d.group_by("reason").agg(pl.col("n").sum(), pl.col("day").max()) \
            .sort("n", descending=True)
        rows = [([(escape(r["reason"]), r["reason"]), (_f(r["n"]), r["n"]),
                  (str(r["day"]), str(r["day"]))], "")
                for r in by_reason.iter_rows(named=True)]
        parts.append("<h3>Dead letters by reason</h3>" + _table(
            [("reason", "why the input was rejected"), ("count", ""),
             ("last", "day of the last rejection (wall clock)")], rows))
    cycles = data.cycles
    if len(cycles):
        rows = []
        for r in cycles.sort("ran_at", descending=True).head(10).iter_rows(named=True):
            summary = r["summary"] if isinstance(r["summary"], dict) else {}
            analysis = summary.get("analysis")
            ok = isinstance(analysis, dict)
            rows.append(([(escape(r["kind"]), r["kind"]), (str(r["as_of"]), str(r["as_of"])),
                          (r["ran_at"].strftime("%Y-%m-%d %H:%M"), str(r["ran_at"])),
                          ("stored" if ok else escape(str(analysis or "–")), int(ok))],
                         "" if ok else "fail"))
        parts.append("<h3>Latest learning cycles</h3>" + _table(
            [("kind", ""), ("as of", "session"), ("ran at", "wall clock, UTC"),
             ("analysis", "what the pass stored, or why it did not")], rows))
    return "".join(parts)


def _cards(cards: Sequence[tuple[str, str, str, bool]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card {"" if good else "bad"}"><div class="k">{escape(k)}</div>'
        f'<div class="v">{v}</div><div class="n">{escape(n)}</div></div>'
        for k, v, n, good in cards) + "</div>"


def _summary(data: ReportData, check: CalibrationCheck | None) -> str:
    p = data.params
    live = p.filter(pl.col("mode") == "live").sort("as_of") if len(p) else p
    if len(live):
        last = live.row(-1, named=True)
        rolled = p.filter((pl.col("mode") == "rolled_back") & (pl.col("as_of") > last["as_of"]))
        age = (data.as_of - last["as_of"]).days
        params = (f"v{last['version']}", f"live since {last['as_of']} ({age} days)",
                  rolled.is_empty())
    else:
        params = ("fallback", "no live version yet: conservative defaults", True)
    ece = (f"{check.ece_before[0]:.3f} → {check.ece_after[0]:.3f}",
           ("out of sample, " if check.out_of_sample else "in-sample, ")
           + f"n = {check.n:,}",
           check.out_of_sample and check.ece_after[0] <= check.ece_before[1]) \
        if check else ("–", "no map yet", True)
    regime = data.regimes.row(-1, named=True)["regime"] if len(data.regimes) else "–"
    cards = [
        ("decisions with outcomes", f"{len(data.decisions):,}",
         f"complete at {data.as_of}", True),
        ("live params", params[0], params[1], params[2]),
        ("ECE raw → calibrated", ece[0], ece[1], ece[2]),
        ("failure modes", f"{len(data.failures):,}", "newest pass", data.failures.is_empty()),
        ("regime", escape(str(regime)), "today's causal label", True),
    ]
    return _cards(cards)


STYLE = """
:root{--bg:#fff;--fg:#1d2330;--muted:#6b7280;--grid:#e5e7eb;--card:#f6f7f9;--bad:#b42318;
--ok:#027a48;--s0:#0072b2;--s1:#e69f00;--s2:#009e73;--s3:#cc79a7;--s4:#56b4e9;--s5:#d55e00;
--bull:rgba(0,158,115,.13);--bear:rgba(213,94,0,.16);--neutral:rgba(107,114,128,.07);
--hv:rgba(120,60,160,.55)}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--fg:#e6e8eb;--muted:#9aa3b2;
--grid:#2a2f3a;--card:#1b1f27;--bad:#f97066;--ok:#32d583;--bull:rgba(50,213,131,.12);
--bear:rgba(249,112,102,.16);--neutral:rgba(154,163,178,.06)}}
body{background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:20px 28px 60px}
h1{font-size:22px;margin:0 0 2px}h2{font-size:17px;margin:34px 0 8px;padding-top:10px;
border-top:1px solid var(--grid)}h3{font-size:14px;margin:18px 0 6px}
.sub{color:var(--muted);margin:0 0 14px}nav a{margin-right:14px;color:var(--s0)}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:var(--card);border-radius:8px;padding:10px 14px;min-width:150px;flex:1;
border-left:4px solid var(--ok)}.card.bad{border-left-color:var(--bad)}
.card .k{color:var(--muted);font-size:12px}.card .v{font-size:20px;font-weight:600}
.card .n{color:var(--muted);font-size:12px}
svg.chart{width:100%;height:auto;display:block;margin:6px 0}
.tick{fill:var(--muted);font-size:11px}.label{fill:var(--muted);font-size:12px}
.note{fill:var(--muted);font-size:13px}
.grid{stroke:var(--grid);stroke-width:1}.axis{stroke:var(--muted);stroke-width:1}
.diagonal{stroke:var(--muted);stroke-dasharray:4 4}.line{stroke-width:2}
.rule{stroke:var(--bad);stroke-width:1.5;stroke-dasharray:3 3}
.whisker{stroke:var(--fg);stroke-width:1.2;fill:none}.mark{stroke-width:2}
.band-bull{fill:var(--bull)}.band-bear{fill:var(--bear)}.band-neutral{fill:var(--neutral)}
.band-highvol{fill:var(--hv)}
""" + "".join(
    f".line.s{i},.key.s{i}{{stroke:var(--s{i});fill:var(--s{i})}}.line.s{i}{{fill:none}}"
    f".dot.s{i},.bar.s{i},circle.mark.s{i},path.mark.s{i}{{fill:var(--s{i});"
    f"stroke:var(--s{i})}}.key-mark.s{i}{{color:var(--s{i})}}" for i in range(6)) + """
.dot{fill-opacity:.75}.mark.muted{stroke:var(--muted);fill:var(--muted)}
.mark.alarm{stroke:var(--bad);fill:var(--bad)}.key-mark.muted{color:var(--muted)}
.key-mark.alarm{color:var(--bad)}
.pair{display:grid;grid-template-columns:minmax(300px,400px) 1fr;gap:20px;align-items:start}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{padding:4px 8px;border-bottom:1px solid var(--grid);text-align:right}
th:first-child,td:first-child{text-align:left}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:hover{color:var(--s0)}
th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}
tr.strong td{font-weight:600}tr.fail td{color:var(--bad)}
.badge{background:var(--bad);color:var(--bg);border-radius:4px;padding:0 6px;font-size:11px}
.warn{color:var(--bad)}.ok{color:var(--ok)}.legend{color:var(--muted);font-size:12px}
.swatch{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-left:8px}
.swatch.band-bull{background:var(--bull)}.swatch.band-bear{background:var(--bear)}
.swatch.band-neutral{background:var(--neutral);outline:1px solid var(--grid)}
.swatch.band-highvol{background:var(--hv)}.swatch.rule-key{border-left:2px dashed var(--bad)}
code{font-size:12px}ul.failures li{margin:3px 0}td{white-space:nowrap}
td:last-child{white-space:normal;text-align:left}th:last-child{text-align:left}
td:first-child{white-space:normal;min-width:180px}
.scroll{max-height:480px;overflow:auto;border:1px solid var(--grid);border-radius:6px}
.scroll thead th{position:sticky;top:0;background:var(--bg)}
"""

SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var asc = !th.classList.contains('asc');
    th.parentNode.querySelectorAll('th').forEach(function (h) {
      h.classList.remove('asc', 'desc'); });
    th.classList.add(asc ? 'asc' : 'desc');
    var key = function (row) {
      var cell = row.cells[th.cellIndex], v = cell.getAttribute('data-v');
      if (v === null) v = cell.textContent;
      var n = parseFloat(v);
      return isNaN(n) || v === '' ? v.toLowerCase() : n; };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
        : (typeof x === 'number' ? -1 : 1);
      return asc ? c : -c; }).forEach(function (r) { body.appendChild(r); });
  });
});
"""

SECTIONS = (
    ("calibration", "Are confidence scores honest?"),
    ("patterns", "Which patterns work"),
    ("features", "Which features drive returns"),
    ("regimes", "Market regime"),
    ("params", "Adaptive parameters"),
    ("health", "Data-collection health"),
)


def render(data: ReportData) -> str:
    """The whole page."""
    calibration, check = _calibration_section(data)
    bodies = {
        "calibration": calibration,
        "patterns": _patterns_section(data),
        "features": _features_section(data),
        "regimes": _regime_section(data),
        "params": _params_section(data),
        "health": _health_section(data),
    }
    window = ""
    if len(data.patterns):
        start = data.patterns["window_start"].min()
        end = data.patterns["window_end"].max()
        window = f" · newest pass on decisions of {start!s} .. {end!s}"
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title in SECTIONS)
    sections = "".join(f'<section id="{key}"><h2>{escape(title)}</h2>{bodies[key]}</section>'
                       for key, title in SECTIONS)
    generated = data.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta name='color-scheme' content='light dark'>"
        f"<title>Learning report {data.as_of}</title><style>{STYLE}</style></head><body>"
        f"<h1>Learning intelligence report · {data.as_of}</h1>"
        f"<p class='sub'>param set <code>{escape(data.params_name)}</code>{window} · "
        f"generated {generated}</p><nav>{nav}</nav>{_summary(data, check)}{sections}"
        f"<script>{SCRIPT}</script></body></html>"
    )

