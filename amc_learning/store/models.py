"""The registered scoring-model declarations (migration 009)."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from amc_learning.schemas.models import ComponentModel, TieredModel, parse

Declaration = TieredModel | ComponentModel


class ScoringModels:
    """The declarations registered, on one unit of work's connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def register(self, model: Declaration) -> bool:
        """Store `model`; False when the same declaration was registered already. Raises
        ValueError when another declaration holds its name and version."""
        text = model.model_dump_json()
        row = self.conn.execute(
            "INSERT INTO scoring_models (name, version, kind, declaration)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (name, version) DO NOTHING RETURNING 1",
            (model.name, model.version, model.kind, text)).fetchone()
        if row is not None:
            return True
        stored = self.get(model.name, model.version)
        if stored != model:
            raise ValueError(f"{model.name} {model.version} is registered with another "
                             "declaration: a changed model is a new version")
        return False

    def get(self, name: str, version: str) -> Declaration | None:
        row = self.conn.execute("SELECT declaration FROM scoring_models WHERE name = %s AND"
                                " version = %s", (name, version)).fetchone()
        return None if row is None else parse(json.dumps(row[0]))

    def all(self) -> list[Declaration]:
        return [parse(json.dumps(d)) for (d,) in self.conn.execute(
            "SELECT declaration FROM scoring_models ORDER BY name, version").fetchall()]
