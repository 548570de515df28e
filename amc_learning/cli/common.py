"""What the command groups share: the user's mistakes, common arguments, connections."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime

from amc_learning import infra
from amc_learning.settings import Settings

#: Adds a subcommand: command(name, help, description="") -> its parser.
Command = Callable[..., argparse.ArgumentParser]


class UserError(Exception):
    """A mistake the user can fix: printed as one line with a hint, no traceback."""


def say(line: str) -> None:
    """Progress for people, on stderr (stdout is for results)."""
    print(line, file=sys.stderr, flush=True)


def simulation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--days", type=int, default=250, help="trading sessions (default: 250)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    p.add_argument("--symbols", type=int, default=200, help="universe size (default: 200)")
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


def connected(settings: Settings) -> Settings:
    """Configured Kafka/PostgreSQL, else the ones `infra up` runs, else a clear error."""
    state = infra.read_state(settings)
    bootstrap = settings.kafka_bootstrap or (state and state.kafka_bootstrap)
    database_url = settings.database_url or (state and state.database_url)
    if not bootstrap or not database_url:
        raise UserError("no Kafka/PostgreSQL configured and no embedded ones running\n"
                        "hint: `amc-learning infra up`, or set LEARNING_KAFKA_BOOTSTRAP and "
                        "LEARNING_DATABASE_URL")
    return settings.with_overrides(kafka_bootstrap=bootstrap, database_url=database_url)


def database(settings: Settings) -> str:
    """The configured database, else the one `infra up` runs, else a clear error."""
    state = infra.read_state(settings)
    url = settings.database_url or (state and state.database_url)
    if not url:
        raise UserError("no PostgreSQL configured and no embedded one running\n"
                        "hint: `amc-learning infra up`, or set LEARNING_DATABASE_URL")
    return url
