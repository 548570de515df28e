"""The main job and the simulator: `run`, `simulate`, `experiment`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from amc_learning.cli.common import Command, UserError, say, simulation_args
from amc_learning.entrypoints.bootstrap import bootstrap, provisioned, with_signing_key
from amc_learning.settings import Settings


def register(command: Command) -> None:
    p = command("run", "the main job: simulate trading days, learn from them, print a summary",
                "Start (or use) Kafka and PostgreSQL, apply migrations, create topics, start\n"
                "the consumers as separate processes, simulate N trading days, wait until\n"
                "every event is consumed, print a summary whose last line is JSON, stop.\n"
                "The market is paced by the learner: every --cycle-every sessions a daily\n"
                "cycle runs on what is stored, and the simulated trading engine reads the\n"
                "versions it publishes (shadow, canary, live, rollbacks) before the next\n"
                "session. The summary gives each version's path and the P&L of the\n"
                "decisions made under it, beside the fallback's on the same sessions.\n"
                "Runs continue one another: the next run starts after the last stored day.")
    simulation_args(p)
    p.add_argument("--bad-rate", type=float, default=0.002,
                   help="share of events also sent as broken copies, to exercise the "
                        "dead-letter path (default: 0.002; 0 disables)")
    p.add_argument("--cycle-every", type=int, default=5,
                   help="sessions between learning cycles (default: 5, a week)")
    p.add_argument("--no-learning", action="store_true",
                   help="do not pace the market by the learner: publish every session at "
                        "once, let the learner process follow, one cycle at the end (the "
                        "fastest ingest demo)")
    p.add_argument("--producer", choices=["native", "amc-trader"], default="native",
                   help="how the simulated trading side writes: native (contract v1) or "
                        "amc-trader (its scan history rows with points and tiers, its "
                        "learning_decisions rows with its labels, Alpaca fill messages; all "
                        "read back by the adapters, as its real files are)")
    p.add_argument("--workers", type=int, default=1,
                   help="persist and outcomes processes each, in one consumer group per "
                        "kind: the partitions are shared, keyed by symbol (default: 1)")
    p.set_defaults(handler=_run)

    p = command("simulate", "publish N simulated trading days to the input topics")
    simulation_args(p)
    p.set_defaults(handler=_simulate)

    p = command("experiment", "learned params vs static ones on planted truth",
                "Two simulated years: the learner runs all along, the second year is judged.\n"
                "The loop runs as it does live: each session's cycle fits, the rollout judge\n"
                "moves versions shadow -> canary -> live (or rejects and rolls back), and the\n"
                "next session trades the version live. The static arm trades the defaults;\n"
                "the ungated loop (a fit every 21 sessions, traded at once) is shown beside\n"
                "them as an upper bound only.\n\n"
                "  --producer native      the engine's six weights and thresholds\n"
                "  --producer amc-trader  AMC-Trader scanner 3.3.1's points table, with\n"
                "                         planted tier errors in the shipped table\n\n"
                "Prints the version path and both arms; the last line is JSON. About 1-2\n"
                "minutes a seed. No broker or database needed.")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default: 0)")
    p.add_argument("--producer", choices=("native", "amc-trader"), default="native",
                   help="which world and scoring model (default: native)")
    p.add_argument("--noise-only", action="store_true",
                   help="no planted effects: learned params must not do worse than static")
    p.set_defaults(handler=_experiment)


#: (sessions, symbols) when not given. The AMC-shaped run is the tiered experiment's
#: world (300 symbols) over its two years: at that signal the judge needs most of a year
#: to pass a learned table (decision 016), so a shorter run ends before one goes live.
SIZES = {"native": (250, 200), "amc-trader": (500, 300)}


def check_simulation_args(args: argparse.Namespace) -> None:
    """--days and --symbols by producer where not given (`SIZES`), then checked."""
    days, symbols = SIZES[getattr(args, "producer", "native")]
    args.days = days if args.days is None else args.days
    args.symbols = symbols if args.symbols is None else args.symbols
    if args.days < 1:
        raise UserError("--days must be at least 1")
    if args.symbols < 1 or args.symbols > 5000:
        raise UserError("--symbols must be between 1 and 5000")
    if not 0.0 <= getattr(args, "bad_rate", 0.0) <= 0.5:
        raise UserError("--bad-rate must be between 0 and 0.5")
    if not 1 <= getattr(args, "cycle_every", 1) <= 250:
        raise UserError("--cycle-every must be between 1 and 250 sessions")
    if not 1 <= getattr(args, "workers", 1) <= 32:
        raise UserError("--workers must be between 1 and 32 (and at most the partitions "
                        "per topic, LEARNING_TOPIC_PARTITIONS, to give each a share)")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.entrypoints.run import RunError, run

    check_simulation_args(args)

    try:
        with provisioned(settings) as deps:
            summary = run(deps, days=args.days, seed=args.seed, symbols=args.symbols,
                          bad_rate=args.bad_rate, start=args.start, say=say,
                          workers=args.workers, learning=not args.no_learning,
                          cycle_every=args.cycle_every, producer=args.producer)
    except (RunError, ValueError) as exc:
        raise UserError(str(exc)) from None
    _print_summary(summary)
    return 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    deps = bootstrap(settings)
    from amc_learning.entrypoints.run import prepare, publish_simulation
    from amc_learning.simulator.world import INDEX_SYMBOL, SimConfig, next_start

    check_simulation_args(args)
    prepare(deps)
    with deps.db.unit_of_work() as uow:
        start = args.start or next_start(uow.frames.last_session(INDEX_SYMBOL))
    config = SimConfig(seed=args.seed, symbols=args.symbols, start=start, days=args.days)
    keyed = deps.with_settings(with_signing_key(deps.settings))  # its reader verifies
    produced = publish_simulation(keyed, config, 0.0, lambda s: print(s, file=sys.stderr))
    print(json.dumps({"produced": dict(sorted(produced.by_topic.items()))}))
    return 0


def _experiment(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.entrypoints.experiment import run_experiment, run_tiered_experiment

    tiered = args.producer == "amc-trader"
    result = (run_tiered_experiment if tiered else run_experiment)(
        args.seed, args.noise_only, say=say)
    measures = (("total_pnl", "sharpe", "expectancy", "hit_rate") if tiered
                else ("expectancy", "sharpe", "ece"))
    for arm in ("adaptive", "static", "ungated_upper_bound"):
        figures = "  ".join(f"{k} {result[arm][k]}" for k in measures)
        print(f"{arm:<19} trades {result['trades'][arm]:>6,}  {figures}")
    d = result["difference"]
    print(f"adaptive - static: {d['total']:+.2f} % of equity, 95 % interval "
          f"[{d['low']:+.2f}, {d['high']:+.2f}]; {result['learned_sessions']} of "
          f"{result['judged_sessions']} judged sessions under learned params")
    if tiered:
        d = result["difference_in_selection"]
        print(f"  in selection (each pick over its session's mean candidate, as the judge "
              f"reads it): {d['total']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]; the "
              f"planted table's own z {result['planted_truth_z']:+.2f}")
        print(f"planted tier errors moved the right way: {result['signs_recovered']}; "
              f"largest move {result['largest_move_points']} points (of the table traded "
              f"last; of any version proposed, in one step: "
              f"{result['largest_step_points']})")
    print(json.dumps(result))
    return 0


def _print_summary(summary: dict[str, Any]) -> None:
    produced = summary["produced"]
    stored = summary["stored"]
    totals = summary["totals"]
    rejected = summary["rejected"]
    shapes = summary.get("producer")
    if shapes is not None:
        print(f"written as {shapes['name']} writes: {shapes['records']:,} records, "
              f"{shapes['events']:,} read back as events by the adapters, "
              f"{sum(shapes['rejected'].values()):,} rejected"
              + "".join(f"\n  {n:,}: {reason}" for reason, n in shapes["rejected"].items()))
    print("events produced:")
    for topic, n in produced.items():
        print(f"  {topic:<28} {n:>10,}")
    print("rows stored by this run (table total):")
    for table, n in stored.items():
        print(f"  {table:<28} {n:>10,}  ({totals[table]:,})")
    print(f"rejected to the dead-letter queue: {rejected:,}")
    unaccounted = sum(produced.values()) - sum(stored.values()) - rejected
    print(f"unaccounted events: {unaccounted:,}")
    outcomes = summary["outcomes"]
    print(f"outcomes (all runs): {outcomes['tracked']:,} decisions tracked: "
          f"{outcomes['open']:,} open, {outcomes['matured']:,} matured, "
          f"{outcomes['closed']:,} closed; {outcomes['counterfactual']:,} counterfactual, of "
          f"which {outcomes['never_decided_candidates']:,} candidates never decided on")
    missing = outcomes["started_without_row"] + outcomes["matured_not_marked"]
    print(f"decisions with bars but no outcome row, or matured but not marked (every run's): "
          f"{missing:,}")
    params = summary["params"]
    _print_params(params)
    print(json.dumps({"produced": produced, "stored": stored, "rejected": rejected,
                      "outcomes": outcomes, "params": params}))


def _print_params(params: dict[str, Any]) -> None:
    """Each version's path, then the decisions and P&L per arm the trading engine read."""
    versions = params["versions"]
    print(f"params versions published or changed during the run: {len(versions)}")
    for number in sorted({v["version"] for v in versions}):
        print(f"  version {number}:")
        for v in (v for v in versions if v["version"] == number):
            canary = f" {v['canary_pct']:g}%" if v["mode"] == "canary" else ""
            sent = "" if v["published"] else " (recorded, not published)"
            print(f"    as of {v['as_of']}: {v['mode']}{canary}{sent}: {v['why']}")
    used: dict[str, int] = params["decisions_by_params"]
    pnl = params.get("pnl")
    print("decisions by the params the simulated trading engine read:")
    if not pnl:
        for arm, n in sorted(used.items()):
            print(f"  {arm:<28} {n:>10,}")
        return
    horizon = pnl["horizon_sessions"]
    print(f"  (P&L: each BUY/SELL marked to market {horizon} sessions after entry, sized, in "
          "% of the portfolio; beside it, the fallback params' own trades on the same "
          "sessions)")
    print(f"  {'arm':<26} {'decisions':>9} {'trades':>7} {'P&L %':>8} {'bp/trade':>9}   "
          f"{'fallback: trades':>16} {'P&L %':>8} {'bp/trade':>9}")
    arms: dict[str, dict[str, Any]] = pnl["arms"]
    for arm in sorted(set(used) | set(arms)):
        a = arms.get(arm, {})
        fb = a.get("fallback_same_sessions")
        bp = a.get("per_trade_bp")
        decided = f"{used[arm]:,}" if arm in used else "–"  # the counterfactual decides none
        line = (f"  {arm:<26} {decided:>9} {a.get('marked', 0):>7,} "
                f"{a.get('pnl_pct', 0.0):>+8.2f} {'' if bp is None else f'{bp:+.1f}':>9}")
        if fb:
            fbp = fb["per_trade_bp"]
            line += (f"   {fb['trades']:>16,} {fb['pnl_pct']:>+8.2f} "
                     f"{'' if fbp is None else f'{fbp:+.1f}':>9}")
        print(line)
    learned = sum(n for arm, n in used.items() if arm.startswith("v"))
    total = sum(used.values())
    live = pnl["learned"]
    print(f"decisions made under learned params: {learned:,} of {total:,}")
    if live["sessions"]:
        print(f"sessions a learned version was live in (marked): {live['sessions']}: "
              f"{live['trades']:,} trades earned {live['pnl_pct']:+.2f}% of the portfolio; "
              f"the fallback params on the same sessions: {live['fallback_trades']:,} trades, "
              f"{live['fallback_pnl_pct']:+.2f}%")
        d = live.get("difference")
        if d:
            print(f"  learned - fallback on those sessions: {d['total']:+.2f}% of the "
                  f"portfolio, 95 % interval [{d['low']:+.2f}, {d['high']:+.2f}] (moving-block "
                  "bootstrap)")
        else:
            print("  too few sessions for an interval of learned - fallback")
    else:
        print("no learned version was live long enough to mark its trades")
    exported = params.get("export")
    if exported:
        what = (f"params version {exported['version']}" if exported["version"]
                else "the declared table: nothing learned is live")
        print(f"the scanner's file ({params['set']}, {what}): {exported['path']}")
        for note in exported["notes"]:
            print(f"  {note}")
