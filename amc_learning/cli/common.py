"""What the command groups share: the user's mistakes, common arguments."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime

#: Adds a subcommand: command(name, help, description="") -> its parser.
Command = Callable[..., argparse.ArgumentParser]


class UserError(Exception):
    """A mistake the user can fix: printed as one line with a hint, no traceback."""


def say(line: str) -> None:
    """Progress for people, on stderr (stdout is for results)."""
    print(line, file=sys.stderr, flush=True)


def simulation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", type=int, default=None,
                   help="trading sessions (default: 250; 500 with --producer amc-trader)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    p.add_argument("--symbols", type=int, default=None,
                   help="universe size (default: 200; 300 with --producer amc-trader)")
    p.add_argument("--start", type=date.fromisoformat, default=None,
                   help="first session, YYYY-MM-DD (default: after the last stored one)")


def as_of_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", type=date.fromisoformat, default=None,
                   help="YYYY-MM-DD (default: the last stored session)")


def window_args(p: argparse.ArgumentParser, what: str) -> None:
    """--from/--to: a half-open time window [from, to)."""
    p.add_argument("--from", dest="since", type=instant, default=None, metavar="TIME",
                   help=f"{what} at or after TIME (YYYY-MM-DD or an ISO time; UTC unless "
                        "it says otherwise)")
    p.add_argument("--to", dest="until", type=instant, default=None, metavar="TIME",
                   help=f"{what} before TIME (exclusive)")


def instant(text: str) -> datetime:
    """YYYY-MM-DD or an ISO 8601 time; naive means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time; use YYYY-MM-DD or 2024-03-01T14:30:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
