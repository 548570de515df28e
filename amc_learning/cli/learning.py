"""Learning on demand: `analyze`, `cycle`, `report`, `params`, `backtest`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from amc_learning.cli.common import Command, UserError, as_of_arg, say
from amc_learning.entrypoints.bootstrap import bootstrap, provisioned, resolve
from amc_learning.intelligence.analysis import SIGNATURE
from amc_learning.settings import Settings


def register(command: Command) -> None:
    p = command("analyze", "one learning pass on the stored decisions and outcomes",
                "Read every decision with an outcome from PostgreSQL, run the analyzers of\n"
                "intelligence/ on what was knowable at --as-of (patterns, failure modes,\n"
                "calibration, feature attribution, regimes, change points), store the\n"
                "results stamped with the as-of date and window, print a summary.")
    as_of_arg(p)
    p.add_argument("--signature", default=",".join(SIGNATURE),
                   help="comma-separated discovery features whose tercile bins form pattern "
                        f"signatures (default: {','.join(SIGNATURE)})")
    p.add_argument("--horizon", type=int, default=None,
                   help="the outcome horizon judged, in sessions: one of "
                        "LEARNING_OUTCOME_HORIZONS (default: the middle one, 7)")
    p.add_argument("--scoring-model", default=None, metavar="MODEL",
                   help="whose decisions: \"name version\" (amc-scanner 3.3.1) or native; "
                        "one at a time, learning never mixes them (default: "
                        "LEARNING_SCORING_MODEL, else the one in use now: behind the most "
                        "decisions of the last 20 sessions)")
    p.set_defaults(handler=_analyze)

    p = command("cycle", "run one learning cycle now and print what it changed",
                "daily: analyse, judge the param versions in flight (promote, reject, roll\n"
                "back), and when none is in flight fit a new candidate and publish it in\n"
                "shadow. weekly: the analysis and the judgement, no new candidate.\n"
                "Idempotent: a second run for the same --as-of changes nothing.\n"
                "Needs LEARNING_PARAMS_SIGNING_KEY (params are signed).")
    p.add_argument("kind", choices=["daily", "weekly"], help="which cycle")
    as_of_arg(p)
    p.set_defaults(handler=_cycle)

    p = command("report", "write the intelligence report: one self-contained HTML page",
                "Read the learning database as of a session and write one HTML file that\n"
                "opens offline: reliability diagram (raw vs calibrated, out of sample where\n"
                "possible), sortable pattern table with intervals, q-values and failure\n"
                "modes, feature IC and importance, regime timeline over the index,\n"
                "params history with modes and rollbacks, data-collection health.\n"
                "The learner also writes one after every daily cycle, into\n"
                "LEARNING_DATA_DIR/reports/ (report-<as-of>.html and latest.html).")
    as_of_arg(p)
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    p.set_defaults(handler=_report)

    p = command("params", "show what a trading engine's ParamsReader sees now; export a "
                "scoring model's params as its producer's file",
                "show (the default): follow the signed params topic like the trading engine\n"
                "does and print the params it would use, their version and mode, or the\n"
                "fallback and why. Verifies with LEARNING_PARAMS_PUBLIC_KEYS.\n\n"
                "export: write a scoring model's learned params in the file its producer\n"
                "loads, e.g. AMC-Trader's scanner_weights.json: every table, the learned\n"
                "tiers changed, the rest as they are, its version and update_history\n"
                "extended with the changes and their evidence. Read from the database.\n"
                "  amc-learning params export --model \"amc-scanner 3.3.1\" \\\n"
                "      --base data/scanner_weights.json --out scanner_weights.json\n"
                "AlphaStack's weights and trade-ready bar (BASE_WEIGHTS, S1..S6):\n"
                "  amc-learning params export --model \"alphastack 4.1\"")
    p.add_argument("action", nargs="?", choices=["show", "export"], default="show",
                   help="show (default) or export")
    p.add_argument("--name", default=None, help="show: the param-set name (default: "
                   "LEARNING_PARAMS_NAME)")
    p.add_argument("--model", default=None, metavar="MODEL",
                   help="export: the scoring model, \"name version\" (amc-scanner 3.3.1)")
    p.add_argument("--format", default=None, dest="fmt",
                   choices=["amc-scanner-weights", "alphastack-weights"],
                   help="export: the file's format (default: the model's own: "
                        "amc-scanner-weights for a tiered model, alphastack-weights for a "
                        "component model)")
    p.add_argument("--mode", default="live", choices=["live", "proposed"],
                   help="export: the live version's params, or the newest in flight "
                        "(default: live)")
    p.add_argument("--base", type=Path, default=None,
                   help="export: the producer's current file, whose keys, types and "
                        "history are kept (default: the model's declaration)")
    p.add_argument("--out", type=Path, default=None,
                   help="export: the file to write (default: standard output)")
    p.add_argument("--wait-version", type=int, default=0,
                   help="wait until at least this version is live (default: just read)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds to read or wait (default: 10)")
    p.set_defaults(handler=_params)
    _register_backtest(command)


def _register_backtest(command: Command) -> None:
    p = command("backtest", "would the learning loop have helped on your own history?",
                "Walk the learner's own loop over the stored history of one scoring model:\n"
                "each cycle sees only the outcomes complete by then, and the same fit and\n"
                "the same rollout judge (shadow, canary, live, rollback) decide; each\n"
                "session trades the version live after the cycle before it. Marks what\n"
                "that earned against the static params (the producer's declared table,\n"
                "or the engine's defaults) on the same stored candidates, one book: a\n"
                "session's trades share 1/horizon of equity. Publishes and stores\n"
                "nothing. On too little history it says how much it needs. The last line\n"
                "is JSON: static, learned, difference, versions, sessions.")
    p.add_argument("--scoring-model", default=None, metavar="MODEL",
                   help="\"name version\" (amc-scanner 3.3.1) or native (default: the one in "
                        "use now)")
    p.add_argument("--from", dest="since", type=date.fromisoformat, default=None,
                   metavar="YYYY-MM-DD", help="the first session walked (default: the first "
                                              "stored)")
    p.add_argument("--to", dest="until", type=date.fromisoformat, default=None,
                   metavar="YYYY-MM-DD", help="the last session walked (default: the last "
                                              "stored; only sessions with complete "
                                              "outcomes are marked)")
    p.add_argument("--cycle-every", type=int, default=1, metavar="N",
                   help="a cycle after every N sessions (default: 1, as the learner runs; "
                        "`run` learns every 5)")
    p.add_argument("--policy", choices=["default", "eager"], default="default",
                   help="the judge's windows: default, or eager (10 sessions in shadow, 5 "
                        "as a canary, decided within 120; its level recalibrated, so a "
                        "version no better still goes live at most 5 %% of the time)")
    p.add_argument("--html", type=Path, default=None, metavar="PATH",
                   help="also write a page: both arms' cumulative P&L and the version path "
                        "on one chart")
    p.add_argument("--events", type=Path, action="append", default=[], metavar="FILE",
                   help="first bring in contract events (JSON lines or an array, as "
                        "`import events` reads them), through the normal topics with persist "
                        "and the outcome tracker started and stopped here; repeatable")
    p.add_argument("--bars", type=Path, action="append", default=[], metavar="FILE",
                   help="first bring in daily bars (long or wide CSV or Parquet, as `prices "
                        "import` reads them), the same way; repeatable")
    p.add_argument("--producer", default=None, metavar="NAME",
                   help="--events: the producer every event is published under (default: "
                        "each event's own)")
    p.set_defaults(handler=_backtest)


def _backtest(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.entrypoints.progress import Progress
    from amc_learning.service.analysis import UnknownModel
    from amc_learning.service.backtest import NotEnoughToBacktest, backtest, policy_named
    from amc_learning.store.migrations import migrate

    if args.cycle_every < 1:
        raise UserError("--cycle-every: at least 1 (a cycle after every session)")
    if missing := [p for p in args.events + args.bars if not p.is_file()]:
        raise UserError(f"{missing[0]}: no such file")
    with provisioned(settings) as deps:
        migrate(deps.db)
        if args.events or args.bars:
            _bring_in(deps, args)
        policy = policy_named(args.policy, deps.settings.learning_horizon)
        try:
            bar = Progress("backtest: sessions walked")

            def walked(done: int, total: int) -> None:
                bar.total = total
                bar.update(done)

            result = backtest(deps, scoring_model=args.scoring_model or settings.scoring_model,
                              since=args.since, until=args.until, every=args.cycle_every,
                              policy=policy, say=say, progress=walked)
            bar.finish()
        except NotEnoughToBacktest as exc:
            print(f"not enough history: {exc}")
            print(json.dumps({"enough": False, "reason": str(exc)}))
            return 0
        except UnknownModel as exc:
            raise UserError(f"--scoring-model: {exc}") from None
    if result["inferred"] is not None:
        print(result["inferred"]["note"])
    for step in result["versions"]:
        print(f"  {step['date']} v{step['version']} {step['mode']}: {step['why']}")
    for arm in ("static", "learned"):
        m = result[arm]
        print(f"{arm:<8} trades {m['trades']:>6}  total P&L {m['total_pnl']:+.2f} %  "
              f"Sharpe {m['sharpe'] if m['sharpe'] is not None else '–'}  hit rate "
              f"{m['hit_rate'] if m['hit_rate'] is not None else '–'}  expectancy "
              f"{m['expectancy'] if m['expectancy'] is not None else '–'}")
    d = result["difference"]
    print(f"learned - static: {d['total_pnl']:+.2f} % of equity [{d['low']:+.2f}, "
          f"{d['high']:+.2f}] over {result['sessions']} sessions, "
          f"{result['learned_sessions']} of them under a learned version")
    if result["same_candidates_sessions"] > result["learned_sessions"] / 2:
        print(f"  note: on {result['same_candidates_sessions']} of the "
              f"{result['learned_sessions']} learned sessions both arms traded exactly the "
              "same: the stored candidates are what the producer wrote, and it wrote only "
              "what cleared the bar it then used, so the history cannot show what the "
              "static rule would have traded there")
    for move in result["moved"]:
        what = move.get("tier") or move.get("param")
        print(f"  moved {what}: {move['from']} -> {move['to']}")
    if args.html is not None:
        from amc_learning.pages.backtest import render

        args.html.write_text(render(result), encoding="utf-8")
        say(f"wrote {args.html}")
    print(json.dumps({k: result[k] for k in ("static", "learned", "difference", "versions",
                                             "sessions", "scoring_model", "learned_sessions",
                                             "same_candidates_sessions", "moved", "inferred")},
                     default=str))
    return 0


def _bring_in(deps: Any, args: argparse.Namespace) -> None:
    from amc_learning.adapters.bar_files import BarFileError
    from amc_learning.adapters.native import Unmappable
    from amc_learning.entrypoints.history import bring_in

    try:
        brought = bring_in(deps, events=args.events, bars=args.bars, producer=args.producer,
                           say=say)
    except (BarFileError, Unmappable) as exc:
        raise UserError(str(exc)) from None
    if (events := brought["events"]) is not None:
        print(f"events: {events['read']:,} read: {sum(events['events'].values()):,} "
              f"published, {sum(events['rejected'].values()):,} rejected "
              f"{dict(events['rejected'])}")
    for bars in brought["bars"]:
        print(f"bars: {bars['rows']:,} rows of {bars['file']}: {bars['bars']:,} bars "
              f"({bars['published']:,} published, {bars['already_stored']:,} stored already),"
              f" {sum(bars['rejected'].values()):,} rejected {bars['rejected']}")


def _analyze(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.service.analysis import (
        Inputs,
        NotEnoughHistory,
        UnknownModel,
        analysis_pass,
    )
    from amc_learning.store.frames import feature_columns
    from amc_learning.store.migrations import migrate

    with provisioned(settings) as deps:
        migrate(deps.db)
        say("reading decisions, outcomes and index bars")
        try:
            with deps.db.unit_of_work(snapshot=True) as uow:
                inputs = Inputs.read(uow, settings.horizons, settings.market, args.horizon,
                                     args.scoring_model or settings.scoring_model)
        except UnknownModel as exc:
            raise UserError(f"--scoring-model: {exc}") from None
        except ValueError as exc:
            raise UserError(f"--horizon: {exc}\nhint: pick one of "
                            f"{settings.outcome_horizons}") from None
        if inputs.decisions.is_empty():
            raise UserError("no decisions with outcomes are stored yet\nhint: `make run` first")
        features = feature_columns(inputs.decisions)
        signature = tuple(f.strip() for f in args.signature.split(",") if f.strip())
        unknown = sorted(set(signature) - set(features))
        if unknown:
            raise UserError(f"--signature: no feature named {', '.join(unknown)}\n"
                            f"hint: the stored features are {', '.join(features)}")
        as_of: date = args.as_of or max(inputs.decisions["session"].to_list())
        say(f"analysing {len(inputs.decisions):,} decisions of the scoring model "
            f"{inputs.scoring_model} as of {as_of}")
        try:
            result = analysis_pass(inputs, as_of, inputs.config(signature))
        except NotEnoughHistory as exc:
            raise UserError(f"not enough complete outcomes as of {as_of} for a pass ({exc})\n"
                            f"hint: simulate more days (`make run ARGS=\"--days 60\"`) or pick "
                            "a later --as-of") from None
        with deps.db.unit_of_work() as uow:
            written = uow.results.store(result)
    _print_analysis(result, written)
    return 0


def _print_analysis(result: Any, written: dict[str, int]) -> None:
    start, end = result.window
    horizon = result.definitions["horizon"]
    print(f"as of {result.as_of}: decisions of {start} .. {end} with complete "
          f"{horizon}-session outcomes")
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
    print(json.dumps({"as_of": str(result.as_of), "horizon": horizon,
                      "failure_modes": len(result.failure_modes), "stored": written}))


def _cycle(args: argparse.Namespace, settings: Settings) -> int:
    deps = bootstrap(settings)
    from amc_learning.service.cycle import run_cycle
    from amc_learning.store.migrations import migrate

    if deps.settings.params_signing_key is None:
        raise UserError("no LEARNING_PARAMS_SIGNING_KEY: the learner signs every params "
                        "version\nhint: `amc-learning params-keys new` makes a key pair")
    migrate(deps.db)
    summary = run_cycle(deps, args.kind, args.as_of)
    if not summary.get("ran"):
        print(f"{args.kind} cycle as of {summary.get('as_of')}: nothing to do "
              f"({summary.get('reason')})", file=sys.stderr)
    for change in summary.get("changes", []):
        print(f"version {change['version']} -> {change['mode']}"
              + (" (published)" if change["publish"] else ""), file=sys.stderr)
    print(json.dumps(summary, default=str))
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    deps = bootstrap(settings)
    from amc_learning.service.analysis import UnknownModel
    from amc_learning.service.prices import waiting
    from amc_learning.service.report import write_report

    if args.out.is_dir():
        raise UserError(f"--out {args.out} is a directory\nhint: name the file, e.g. "
                        f"--out {args.out / 'report.html'}")
    try:
        with deps.db.unit_of_work(snapshot=True) as uow:
            bars = waiting(uow, deps.settings, deps.clock(), args.as_of)
        out = write_report(deps.db, deps.settings, args.out, args.as_of,
                           scoring_model=settings.scoring_model, waiting=bars)
    except UnknownModel as exc:
        raise UserError(f"LEARNING_SCORING_MODEL: {exc}") from None
    print(f"wrote {out} ({out.stat().st_size / 1024:,.0f} KiB)")
    return 0


def _params(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "export":
        return _export(args, settings)
    settings = resolve(settings)
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


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.service.deliver import NotExportable, export
    from amc_learning.store.migrations import migrate

    if not args.model:
        raise UserError("params export needs --model\nhint: amc-learning params export "
                        "--model \"amc-scanner 3.3.1\"")
    base = None
    if args.base is not None:
        try:
            base = json.loads(args.base.read_text())
        except OSError as exc:
            raise UserError(f"--base {args.base}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise UserError(f"--base {args.base}: not JSON ({exc})") from None
        if not isinstance(base, dict):
            raise UserError(f"--base {args.base}: not a scanner_weights.json (no object)")
    deps = bootstrap(settings, kafka=False)
    migrate(deps.db)
    try:
        with deps.db.unit_of_work(snapshot=True) as uow:
            done = export(uow, args.model, args.fmt, args.mode, base)
    except NotExportable as exc:
        raise UserError(f"params export: {exc}") from None
    text = json.dumps(done.body, indent=2, ensure_ascii=False) + "\n"
    for note in done.notes:
        say(note)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(f".{args.out.name}.partial")
    partial.write_text(text)
    partial.replace(args.out)
    say(f"wrote {args.out}")
    return 0
