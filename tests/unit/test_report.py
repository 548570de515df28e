"""The intelligence report's pure core: the out-of-sample calibration check, the charts and
the page (self-contained, every section present, problems highlighted)."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import polars as pl
import pytest

from amc_learning.intelligence.report import ModelParams, ReportData, calibration_check
from amc_learning.pages.charts import (
    Bar,
    Series,
    bar_chart,
    date_ticks,
    nice_ticks,
    time_chart,
)
from amc_learning.pages.report import render
from amc_learning.schemas.models import ComponentModel, TieredModel, shipped
from amc_learning.schemas.params import ComponentParams, TieredParams

START = date(2024, 1, 2)


def _decisions(n: int = 4000, seed: int = 1) -> pl.DataFrame:
    """Overconfident thesis scores: the true win probability is 0.3 + 0.4 * confidence."""
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0, 1, n)
    win = rng.uniform(0, 1, n) < 0.3 + 0.4 * confidence
    sessions = [START + timedelta(days=int(d)) for d in np.sort(rng.integers(0, 200, n))]
    return pl.DataFrame({"session": sessions, "decision_source": ["thesis"] * n,
                         "confidence": confidence, "win": win})


def _snapshot(as_of: date, window_end: date, knots: list[list[float]]) -> dict:
    return {"as_of": as_of, "window_end": window_end, "grouping": "decision_source",
            "group_value": "thesis", "method": "isotonic", "sample_size": 1000,
            "ece_raw": 0.1, "knots": knots}


HONEST_MAP = [[0.0, 0.3], [1.0, 0.7]]  # the planted truth
IDENTITY = [[0.0, 0.0], [1.0, 1.0]]


def test_the_check_is_out_of_sample_on_the_newest_map_that_leaves_enough_later_decisions():
    decisions = _decisions()
    early, late = START + timedelta(days=100), START + timedelta(days=199)
    snapshots = pl.DataFrame([_snapshot(early + timedelta(days=7), early, HONEST_MAP),
                              _snapshot(late + timedelta(days=7), late, IDENTITY)])
    check = calibration_check(decisions, snapshots, min_out_of_sample=100)
    assert check is not None and check.out_of_sample
    assert check.window_end == early  # the newer map leaves no later decisions
    assert check.n == len(decisions.filter(pl.col("session") > early))
    ece_raw, ece_after = check.ece_before, check.ece_after
    assert ece_after[0] < ece_raw[1] and ece_raw[0] > 0.08 and ece_after[0] < 0.04
    assert ece_raw[1] <= ece_raw[0] <= ece_raw[2]
    assert sum(b.n for b in check.before) == check.n == sum(b.n for b in check.after)


def test_without_later_decisions_the_check_says_it_is_in_sample():
    decisions = _decisions()
    end = START + timedelta(days=199)
    check = calibration_check(decisions, pl.DataFrame([_snapshot(end, end, IDENTITY)]))
    assert check is not None and not check.out_of_sample and check.n == len(decisions)
    assert [b.realised for b in check.before] == [b.realised for b in check.after]


def test_no_maps_or_no_decisions_means_no_check():
    assert calibration_check(_decisions(), pl.DataFrame()) is None
    assert calibration_check(_decisions().clear(), pl.DataFrame([_snapshot(
        START, START, IDENTITY)])) is None


@pytest.mark.parametrize("lo, hi", [(0, 1), (3981.2, 5012.7), (-0.13, 0.11), (1, 1e6)])
def test_ticks_are_round_and_cover_the_range(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 12 and ticks == sorted(ticks)
    assert ticks[0] >= lo - 1e-9 and ticks[-1] <= hi + 1e-9
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    mantissa = float(f"{steps.pop():e}".split("e")[0])
    assert mantissa in (1.0, 2.0, 2.5, 5.0)


def test_date_ticks_are_month_starts_within_the_range():
    ticks = date_ticks(date(2014, 1, 2), date(2016, 4, 25))
    assert 3 <= len(ticks) <= 8 and all(t.day == 1 for t in ticks)
    assert date(2014, 1, 2) < ticks[0] and ticks[-1] <= date(2016, 4, 25)


def _well_formed(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_charts_are_well_formed_svg_with_tooltips():
    days = [START + timedelta(days=i) for i in range(50)]
    line = time_chart("a", [Series("x", days, [float(i) for i in range(50)]),
                            Series("y", days, [None] * 10 + [1.0] * 40)], y_label="v")
    root = _well_formed(line)
    assert root.find("{http://www.w3.org/2000/svg}title").text == "a"
    bars = bar_chart("b", [Bar("f1 <&>", 0.1, -0.02, 0.2), Bar("f2", -0.05)], x_label="ic")
    assert "f1 &lt;&amp;&gt;" in bars and _well_formed(bars) is not None
    assert "no data yet" in time_chart("c", [], y_label="v")


def _report_data(**overrides) -> ReportData:
    decisions = _decisions()
    end = START + timedelta(days=100)
    sessions = [START + timedelta(days=i) for i in range(200)]
    base = dict(
        as_of=START + timedelta(days=206),
        generated_at=datetime(2026, 1, 1, tzinfo=UTC),
        decisions=decisions,
        calibration=pl.DataFrame([_snapshot(end, end, HONEST_MAP)]),
        patterns=pl.DataFrame([
            {"pattern_signature": sig, "decision_type": "BUY", "regime": "bull",
             "window_start": START, "window_end": end, "sample_size": n, "success_rate": w,
             "win_rate_ci_low": w - 0.05, "win_rate_ci_high": w + 0.05, "shrunk_win_rate": w,
             "expectancy": e, "profit_factor": 1.2, "excess_t": 2.0, "p_value": 0.01,
             "q_value": q, "is_failure_mode": fm}
            for sig, n, w, e, q, fm in [("a=q1|bull|BUY", 300, 0.41, -0.004, 0.02, True),
                                        ("a=q3|bull|BUY", 280, 0.58, 0.006, 0.04, False),
                                        ("a=q2|bull|BUY", 12, 0.5, 0.0, None, False)]]),
        failures=pl.DataFrame([{"kind": "systematic_loser", "signature": "a=q1|bull|BUY",
                                "sample_size": 300, "detail": "expectancy -0.004"}]),
        features=pl.DataFrame([
            {"feature": f, "regime": r, "method": m, "value": v, "t_stat": t, "ir": 0.1,
             "sessions": 90}
            for f, r, m, v, t in [("catalyst", "bull", "ic", 0.08, 3.1),
                                  ("noise", "bull", "ic", 0.001, 0.1),
                                  ("catalyst", "bull", "permutation", 0.02, None)]]),
        change_points=pl.DataFrame([{"as_of": end, "stream": "mean_return",
                                     "alarm_session": START + timedelta(days=150)}]),
        index=pl.DataFrame({"session": sessions, "close": np.linspace(4000, 5000, 200)}),
        regimes=pl.DataFrame({"session": sessions,
                              "trend": ["bull"] * 120 + ["bear"] * 80,
                              "volatility": ["low_vol"] * 150 + ["high_vol"] * 50,
                              "regime": ["bull_low_vol"] * 120 + ["bear_low_vol"] * 30
                              + ["bear_high_vol"] * 50}),
        params=pl.DataFrame([
            {"version": v, "mode": m, "canary_pct": c, "as_of": START + timedelta(days=d),
             "parent_version": p, "published": True, "evidence": {"why": why},
             "recorded_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=d)}
            for v, m, c, d, p, why in [(1, "shadow", 0.0, 30, None, "fit"),
                                       (1, "canary", 10.0, 60, None, "better"),
                                       (1, "live", 0.0, 90, None, "better"),
                                       (2, "live", 0.0, 120, 1, "better"),
                                       (3, "rolled_back", 0.0, 160, 2, "loss streak")]],
            schema_overrides={"evidence": pl.Object}),
        cycles=pl.DataFrame([{"kind": "daily", "as_of": end,
                              "ran_at": datetime(2026, 1, 1, tzinfo=UTC),
                              "summary": {"analysis": {"pattern_performance": 3}}}],
                            schema_overrides={"summary": pl.Object}),
        collection=pl.DataFrame({"session": sessions, "decisions": [20] * 200,
                                 "candidates": [0] * 5 + [200] * 195,
                                 "trades": [5] * 200, "price_bars": [100] * 200}),
        dead_letters=pl.DataFrame({"reason": ["invalid_event"], "day": [START], "n": [7]}),
        health={"open": 10, "matured": 3000, "closed": 50, "backlog": 0, "rejected": 7,
                "stored": 100_000},
    )
    return ReportData(**{**base, **overrides})


def test_the_page_is_self_contained_and_shows_every_section():
    page = render(_report_data())
    for section in ("calibration", "patterns", "features", "regimes", "params", "health"):
        assert f'<section id="{section}">' in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * len(
        re.findall("<svg", page))
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        _well_formed(svg)
    assert page.count("<svg") == 6  # reliability, IC, importance, regimes, params, collection


def test_the_page_highlights_what_needs_attention():
    page = render(_report_data())
    fail_rows = re.findall(r'<tr class="fail">(.*?)</tr>', page)
    assert any("a=q1|bull|BUY" in row for row in fail_rows)  # the failure mode
    assert any("rolled_back" in row for row in fail_rows)  # the rollback
    assert "Out of sample" in page and "In-sample" not in page
    assert 'class="rule"' in page  # the change-point alarm on the regime chart
    assert "band-bear" in page and "band-highvol" in page


def test_an_undeclared_scoring_model_is_said_so_at_the_top():
    said = "<strong>undeclared</strong>"
    assert said not in render(_report_data())
    page = render(_report_data(scoring_model="amc-scanner 3.2_explosive", model_declared=False))
    top = page[page.index("<h1>"):page.index("<nav>")]
    assert "amc-scanner 3.2_explosive" in top and said in top


def test_a_page_with_nothing_learned_yet_still_renders_and_says_so():
    empty = pl.DataFrame()
    data = _report_data(decisions=_decisions().clear(), calibration=empty, patterns=empty,
                        failures=empty, features=empty, change_points=pl.DataFrame(
                            schema={"as_of": pl.Date, "stream": pl.Utf8,
                                    "alarm_session": pl.Date}),
                        index=pl.DataFrame(schema={"session": pl.Date, "close": pl.Float64}),
                        regimes=pl.DataFrame(schema={"session": pl.Date, "trend": pl.Utf8,
                                                     "volatility": pl.Utf8, "regime": pl.Utf8}),
                        params=empty, cycles=empty, collection=empty,
                        dead_letters=empty, health={})
    page = render(data)
    assert "no calibration map and outcomes yet" in page
    assert "runs on the fallback" in page and "No pattern performance stored yet" in page


def _hostile(field: str) -> str:
    return f"<script>alert('{field}')</script><img src=x onerror=1>"


class _Page(HTMLParser):
    """Collects the elements a browser would build, and all text and attribute values."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.texts.extend(v for _, v in attrs if v)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def test_text_a_producer_sent_reaches_the_page_as_text_never_as_markup():
    """Every producer-supplied text that reaches the page (symbols aside: validated) carries
    a script and an image; the page must show them and never run them."""
    base = _report_data()
    source = _hostile("decision_source")
    decisions = base.decisions.with_columns(pl.lit(source).alias("decision_source"))
    calibration = base.calibration.with_columns(pl.lit(source).alias("group_value"))
    signature = f"{_hostile('feature')}=q1|bull|BUY"
    patterns = base.patterns.with_columns(
        pl.lit(_hostile("decision_type")).alias("decision_type"),
        pl.lit(_hostile("regime")).alias("regime"),
        pl.lit(signature).alias("pattern_signature"))
    failures = base.failures.with_columns(pl.lit(signature).alias("signature"),
                                          pl.lit(_hostile("detail")).alias("detail"))
    features = base.features.with_columns(pl.lit(_hostile("feature")).alias("feature"),
                                          pl.lit(_hostile("regime")).alias("regime"))
    regimes = base.regimes.with_columns(pl.lit(_hostile("regime")).alias("regime"))
    change_points = base.change_points.with_columns(pl.lit(_hostile("stream")).alias("stream"))
    params = base.params.with_columns(pl.Series(
        "evidence", [{"why": _hostile("evidence")}] * len(base.params), dtype=pl.Object))
    cycles = pl.DataFrame([{"kind": "daily", "as_of": START, "ran_at": datetime(2026, 1, 1,
                                                                               tzinfo=UTC),
                            "summary": {"analysis": _hostile("cycle")}}],
                          schema_overrides={"summary": pl.Object})
    dead = base.dead_letters.with_columns(pl.lit(_hostile("reason")).alias("reason"))
    page = render(_report_data(decisions=decisions, calibration=calibration, patterns=patterns,
                               failures=failures, features=features, regimes=regimes,
                               change_points=change_points, params=params, cycles=cycles,
                               dead_letters=dead, params_name=_hostile("params_name")))
    parsed = _Page()
    parsed.feed(page)
    assert parsed.tags.count("script") == 1  # the page's own table sorter
    assert "img" not in parsed.tags
    shown = "\n".join(parsed.texts)
    for field in ("decision_source", "feature", "decision_type", "regime", "detail", "stream",
                  "evidence", "cycle", "reason", "params_name"):
        assert f"<script>alert('{field}')</script>" in shown, field
        assert f"alert(&#39;{field}&#39;)" in page or f"alert('{field}')" in page
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        _well_formed(svg)  # escaped inside the charts too


def test_the_page_shows_what_trading_made_under_each_version():
    arms = pl.DataFrame({"arm": ["fallback", "v1 canary", "v1 live"], "decisions": [300, 4, 90],
                         "trades": [200, 3, 60], "marked": [200, 3, 52],
                         "pnl_pct": [1.25, 0.01, 0.5],
                         "first": [START, START + timedelta(days=60), START + timedelta(days=90)],
                         "last": [START + timedelta(days=89)] * 2 + [START + timedelta(days=199)]})
    page = render(_report_data(arms=arms))
    section = page[page.index("What trading made under each version"):]
    rows = re.findall(r"<tr>(<td.*?)</tr>", section)[:3]
    assert [re.sub(r"<[^>]+>", "|", r).split("|")[1] for r in rows] == [
        "fallback", "v1 canary", "v1 live"]
    assert "+0.50" in rows[2] and "+1.0" in rows[2]  # 0.5 % over 52 trades: 0.96 bp each
    assert "What trading made" not in render(_report_data())  # no decisions name params


SCANNER = next(m for m in shipped() if (m.name, m.version) == ("amc-scanner", "3.3.1"))
STACK = next(m for m in shipped() if (m.name, m.version) == ("alphastack", "4.1"))


def _scanner_section() -> ModelParams:
    assert isinstance(SCANNER, TieredModel)
    declared = TieredParams.declared(SCANNER)
    live = TieredParams.declared(SCANNER)
    live.tables["chase_risk"]["high_moved"] = -15
    proposed = TieredParams.declared(SCANNER)
    proposed.tables["chase_risk"]["high_moved"] = -5
    proposed.tables["gap"]["huge"] = 10
    notes = [{"factor": "chase_risk", "tier": "high_moved", "n": 900, "effect": 0.001,
              "low": -0.004, "high": 0.006, "q": 0.04, "target": 2.0, "why": "moved"},
             {"factor": "gap", "tier": "huge", "n": 700, "effect": -0.01, "low": -0.015,
              "high": -0.005, "q": 0.001, "target": -30.0, "why": "moved"}]
    history = pl.DataFrame({"version": [1, 1, 2], "mode": ["shadow", "live", "canary"],
                            "as_of": [START, START + timedelta(days=30),
                                      START + timedelta(days=60)]})
    arms = pl.DataFrame({"arm": ["fallback", "v1 live"], "decisions": [120, 80],
                         "trades": [30, 20], "marked": [30, 18], "pnl_pct": [0.9, 1.44],
                         "first": [START, START + timedelta(days=31)],
                         "last": [START + timedelta(days=30), START + timedelta(days=90)]})
    return ModelParams("amc-scanner 3.3.1", "amc-scanner:3.3.1", "tiered", declared,
                       (1, live), (2, "canary", proposed), notes,
                       {"points_per_unit_return": 2000.0}, SCANNER.read_by_producer,
                       history, tables=18, arms=arms)


def test_each_scoring_model_shows_its_tables_side_by_side_with_the_evidence():
    assert isinstance(STACK, ComponentModel)
    weights = ComponentParams.declared(STACK)
    stack = ModelParams("alphastack 4.1", "alphastack:4.1", "component", weights, None,
                        None, [], {}, [], pl.DataFrame(schema={"version": pl.Int64,
                                                               "mode": pl.Utf8,
                                                               "as_of": pl.Date}))
    page = render(_report_data(models=[_scanner_section(), stack]))
    section = page[page.index('<section id="models">'):]
    section = section[:section.index("</section>")]
    assert "amc-scanner 3.3.1" in section and "alphastack 4.1" in section
    assert "live: version 1; proposed: version 2 (canary)" in section
    assert "4 of 18 tables are read by its code" in section
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", section, flags=re.S)
    high = next(r for r in rows if "chase_risk.high_moved" in r)
    assert re.findall(r'data-v="(-?\d+)">', high)[:3] == ["-25", "-15", "-5"]
    gap = next(r for r in rows if "gap.huge" in r)
    assert "not yet" in gap and "-1.00% [-1.50%, -0.50%]" in gap
    chart = re.findall(r"<svg.*?</svg>", section, flags=re.S)
    assert len(chart) == 1
    _well_formed(chart[0])
    assert "gap.huge learned" in chart[0] and "the fit&#39;s target -30 [-40, -20]" in chart[0]
    assert "volume_momentum" in section and "0.3" in section  # AlphaStack's own weight
    # what trading made under each of the scanner's versions (none for AlphaStack's)
    assert section.count("What trading made under each version") == 1
    v1 = next(r for r in rows if "v1 live" in r)
    assert "+1.44" in v1 and "+8.0" in v1  # P&L %, and 1.44 / 18 marked = 8.0 bp a trade
