"""The backtest's page: both arms' cumulative P&L and the version path on one chart."""

from __future__ import annotations

from datetime import date
from typing import Any

from markupsafe import Markup

from amc_learning.pages.charts import Series, time_chart
from amc_learning.pages.report import environment

#: the modes a version path marks on the chart
MARKED = ("canary", "live", "rejected", "rolled_back", "superseded")


def _cumulative(values: list[float]) -> list[float | None]:
    total, out = 0.0, list[float | None]()
    for v in values:
        total += v * 100
        out.append(round(total, 4))
    return out


def chart(result: dict[str, Any]) -> Markup:
    """Both arms' cumulative P&L, then their difference (the arms often differ by little
    beside what they share), each with the version path as rules."""
    days = [date.fromisoformat(d) for d in result["daily"]["session"]]
    daily = result["daily"]
    rules = [(date.fromisoformat(s["date"]), f"v{s['version']} {s['mode']}: {s['why']}")
             for s in result["versions"] if s["mode"] in MARKED]
    arms = time_chart("cumulative P&L of both arms, and the version path",
                      [Series(arm, days, _cumulative(daily[arm]))
                       for arm in ("learned", "static")], y_label="% of equity", rules=rules)
    gap = time_chart("learned − static, cumulative",
                     [Series("learned − static", days, _cumulative(
                         [a - b for a, b in zip(daily["learned"], daily["static"],
                                                strict=True)]))],
                     y_label="% of equity", rules=rules, height=180)
    return arms + gap


def render(result: dict[str, Any]) -> str:
    return environment().get_template("backtest.html.j2").render(r=result, chart=chart(result))
