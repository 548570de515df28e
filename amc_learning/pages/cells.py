"""The page's cells: a table of rows as the template lays it out, and a number as the
page shows it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Table:
    """headers: (title, tooltip); rows: (cells, row css class); a cell is (shown, sort key).
    `shown` is text (escaped by the template) or `Markup` built here with escaped values."""

    headers: Sequence[tuple[str, str]]
    rows: Sequence[tuple[Sequence[tuple[Any, Any]], str]]
    sortable: bool = True



def num(value: Any, digits: int = 3, pct: bool = False) -> str:
    """A number as the page shows it: – for missing, thousands separators for counts."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if pct:
        return f"{value * 100:.1f}%"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def arms_table(arms: pl.DataFrame) -> Table | None:
    """What trading made under each params arm, from the decisions that name their params."""
    if arms.is_empty():
        return None
    rows = [([(r["arm"], r["arm"]), (num(r["decisions"]), r["decisions"]),
              (num(r["trades"]), r["trades"]), (num(r["marked"]), r["marked"]),
              (f"{r['pnl_pct']:+.2f}", r["pnl_pct"]),
              (f"{r['pnl_pct'] / r['marked'] * 100:+.1f}" if r["marked"] else "–",
               r["pnl_pct"] / r["marked"] if r["marked"] else None),
              (f"{r['first']} .. {r['last']}", str(r["first"]))], "")
            for r in arms.iter_rows(named=True)]
    return Table([("arm", "the params the trading engine decided under"),
                  ("decisions", "all decisions, HOLD and IGNORE included"),
                  ("trades", "BUY and SELL decisions"),
                  ("marked", "trades whose horizon return is complete"),
                  ("P&L %", "side × position size × the horizon return, summed, in % of the "
                            "portfolio"),
                  ("bp/trade", "mean P&L per marked trade, in basis points of the portfolio"),
                  ("sessions", "first and last session of the arm")], rows)
