"""Write the intelligence report: atomically, so a browser or a mail job never picks up half
a file. The learner writes one after every daily cycle (`LEARNING_DATA_DIR/reports/
report-<as-of>.html` and `latest.html`); `amc-learning report` writes one on demand."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from amc_learning.intelligence import horizon as h
from amc_learning.pages.report import render
from amc_learning.service.analysis import NATIVE, Inputs
from amc_learning.store.report import gather


def write_report(database_url: str, out: Path, as_of: date | None = None,
                 params_name: str = "default", decisions: pl.DataFrame | None = None,
                 horizons: tuple[int, int, int] = (1, h.DEFAULT, 30),
                 scoring_model: str | None = None,
                 market: tuple[str, str] = ("^IXIC", "^VIX"),
                 waiting: list[dict[str, Any]] | None = None) -> Path:
    """Render the report and replace `out` with it in one rename. `decisions`: the frame of
    one scoring model already read (a cycle's); else read, of `scoring_model` (None: the
    model behind the most decisions, as the learner chooses)."""
    if decisions is None:
        inputs = Inputs.read(database_url, horizons, scoring_model=scoring_model,
                             market=market)
        decisions, scoring_model = inputs.decisions, inputs.scoring_model
    html = render(gather(database_url, as_of, params_name, decisions, horizons,
                         scoring_model or NATIVE, market, waiting))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, out)
    return out
