"""Databases themselves: create one if it is missing."""

from __future__ import annotations

import psycopg


def ensure_database(server_url: str, name: str) -> bool:
    """Create database `name` on the server of `server_url` unless it exists; True if made."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is not None:
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True

