"""The page's cells: a table of rows as the template lays it out, and a number as the
page shows it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


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
