"""Write the intelligence report: atomically, so a browser or a mail job never picks up half
a file. The learner writes one after every daily cycle (`LEARNING_DATA_DIR/reports/
report-<as-of>.html` and `latest.html`); `amc-learning report` writes one on demand."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from amc_learning.pages.report import render
from amc_learning.service.analysis import NATIVE, Inputs
from amc_learning.service.models import declared
from amc_learning.settings import Settings
from amc_learning.store.database import Database
from amc_learning.store.report import gather


def write_report(db: Database, settings: Settings, out: Path, as_of: date | None = None,
                 decisions: pl.DataFrame | None = None, scoring_model: str | None = None,
                 waiting: list[dict[str, Any]] | None = None) -> Path:
    """Render the report (of `settings.params_name`, its horizons and market) and replace
    `out` with it in one rename. `decisions`: the frame of one scoring model already read
    (a cycle's); else read, of `scoring_model` (None: the model behind the most decisions,
    as the learner chooses). One unit of work: one snapshot of the database."""
    with db.unit_of_work(snapshot=True) as uow:
        if decisions is None:
            inputs = Inputs.read(uow, settings.horizons, settings.market,
                                 scoring_model=scoring_model)
            decisions, scoring_model = inputs.decisions, inputs.scoring_model
        model = scoring_model or NATIVE
        data = replace(gather(uow, settings, as_of, model, decisions, waiting),
                       model_declared=declared(uow, model))
    html = render(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, out)
    return out
