"""The backtest's page: both arms' cumulative P&L and the version path on one chart."""

from __future__ import annotations

from datetime import date
from typing import Any

from markupsafe import Markup

from amc_learning.pages.charts import Series, time_chart
from amc_learning.pages.report import environment

#: the modes a version path marks on the chart
MARKED = ("canary", "live", "rejected", "rolled_back", "superseded")


def chart(result: dict[str, Any]) -> Markup:
    days = [date.fromisoformat(d) for d in result["daily"]["session"]]
    series = []
    for arm in ("learned", "static"):
        total, values = 0.0, []
        for v in result["daily"][arm]:
            total += v * 100
            values.append(round(total, 4))
        series.append(Series(arm, days, values))
    rules = [(date.fromisoformat(s["date"]), f"v{s['version']} {s['mode']}: {s['why']}")
             for s in result["versions"] if s["mode"] in MARKED]
    return time_chart("cumulative P&L of both arms, and the version path", series,
                      y_label="% of equity", rules=rules)


def render(result: dict[str, Any]) -> str:
    return environment().get_template("backtest.html.j2").render(r=result, chart=chart(result))
