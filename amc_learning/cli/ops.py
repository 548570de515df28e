"""Operating the engine: `infra`, `migrate`, `topics`, `consume`, `status`, `schemas`."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from amc_learning.cli.common import Command, UserError
from amc_learning.entrypoints import infra
from amc_learning.entrypoints.bootstrap import bootstrap, resolve
from amc_learning.settings import Settings
from amc_learning.store.database import Database


def register(command: Command) -> None:
    p = command("infra", "start/stop the embedded broker and PostgreSQL in the background")
    p.add_argument("action", choices=["up", "down", "env"],
                   help="up: start both; down: stop both; env: print LEARNING_* lines to eval")
    p.set_defaults(handler=_infra)

    p = command("migrate", "apply the numbered SQL migrations (safe to repeat)")
    p.set_defaults(handler=_migrate)

    p = command("topics", "manage the topic registry")
    p.add_argument("action", choices=["create"], help="create every topic (existing: kept)")
    p.set_defaults(handler=_topics)

    p = command("consume", "run one consumer process until SIGTERM")
    p.add_argument("name", choices=["persist", "outcomes", "learner", "prices"],
                   help="persist: every event into PostgreSQL; outcomes: the Faust worker that "
                        "tracks decisions to their outcomes; learner: a daily learning cycle "
                        "per new session (and a weekly one per new week); prices: a prices "
                        "sync after every session close (LEARNING_PRICES_POLL_S)")
    p.set_defaults(handler=_consume)

    p = command("serve", "the HTTP API: collect events, read params and intelligence",
                "Serve the HTTP API on LEARNING_API_HOST:LEARNING_API_PORT until SIGTERM:\n"
                "POST /learning/collect/{discovery-data,thesis-decision,trade-outcome}\n"
                "(one event or a list; 200 once the broker acknowledged every one, 422 with\n"
                "every field error, 503 with Retry-After when the broker does not answer),\n"
                "GET /learning/intelligence/adaptive-params, /healthz; OpenAPI at /docs.\n"
                "Bearer tokens from LEARNING_API_TOKENS (`amc-learning api-token`).")
    p.add_argument("--port", type=int, default=None,
                   help="the port (default: LEARNING_API_PORT, 8080; 0 picks a free one)")
    p.set_defaults(handler=_serve)

    p = command("api-token", "make a bearer token for the HTTP API",
                "Print a new token (give it to the producer) and its LEARNING_API_TOKENS\n"
                "entry (give that to the server: it holds only the token's SHA-256).")
    p.add_argument("producer", help="the producer the token speaks for (lower case)")
    p.add_argument("--scope", default="collect",
                   help="collect, read, or collect+read (default: collect)")
    p.set_defaults(handler=_api_token)

    p = command("params-keys", "make or show the Ed25519 keys that sign and verify params",
                "new: print a new key pair: LEARNING_PARAMS_SIGNING_KEY (the learner's only;\n"
                "keep it secret) and LEARNING_PARAMS_PUBLIC_KEYS (the readers', the API's and\n"
                "the clients'; during a rotation list the old and the new key).\n"
                "show: the public keys this environment accepts, with key ids and the PEM\n"
                "that `openssl pkeyutl -verify -pubin -inkey KEY.pem -rawin` reads.")
    p.add_argument("action", choices=["new", "show"], help="new: a key pair; show: ours")
    p.set_defaults(handler=_params_keys)

    p = command("status", "one screen: every process, its lag and rates, the broker, the "
            "database, live params, cycles, collection success",
            "Find the running processes (LEARNING_DATA_DIR/processes, and\n"
            "LEARNING_METRICS_TARGETS for others), read their /healthz and scrape their\n"
            "/metrics twice a second apart for rates; probe Kafka and PostgreSQL; read the\n"
            "live params version, the last cycles and the collection success rate of the\n"
            "last hour and day from the database. Exit code 1 when anything is down.")
    p.set_defaults(handler=_status)

    p = command("schemas", "the event contract")
    p.add_argument("action", choices=["export"], help="write one JSON Schema per event")
    p.add_argument("dir", type=Path, help="output directory")
    p.set_defaults(handler=_schemas)


def _infra(args: argparse.Namespace, settings: Settings) -> int:
    action = args.action
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


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.store.migrations import migrate

    applied = migrate(bootstrap(settings).db)
    print(f"applied {len(applied)} migration(s)" if applied else "schema is up to date")
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.streams.kafka import client_options
    from amc_learning.streams.topics import TopicNames, create_topics

    settings = resolve(settings)
    status = asyncio.run(create_topics(client_options(settings), TopicNames(settings.topic_prefix),
                                       settings.topic_partitions, settings.topic_replication))
    for topic, what in sorted(status.items()):
        print(f"{topic}: {what}")
    return 0


def _consume(args: argparse.Namespace, settings: Settings) -> int:
    # a stop before the worker installs its own handlers has nothing to drain
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_on_signal)
    deps = bootstrap(settings)
    settings = deps.settings
    if args.name == "learner":
        from amc_learning.consumers import learner

        return learner.main(deps)
    if args.name == "outcomes":
        from amc_learning.consumers import outcomes

        return outcomes.main(deps)
    if args.name == "prices":
        from amc_learning.consumers import prices
        from amc_learning.market.providers import provider_of
        from amc_learning.store.migrations import migrate

        try:
            provider = provider_of(settings)
        except ValueError as exc:
            raise UserError(f"{exc}\nhint: the provider's keys go in LEARNING_* variables"
                            " (see `amc-learning --help`)") from None
        migrate(deps.db)
        return prices.main(deps, provider)
    from amc_learning.consumers import persist

    return persist.main(deps)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    """Never refuses to run: what cannot be reached is shown as down."""
    from amc_learning.consumers import ops
    from amc_learning.entrypoints.status import status

    state = infra.read_state(settings)
    known = [e for e in ops.registered(settings.data_dir) if e["alive"]]
    broker = (settings.kafka_bootstrap or (state and state.kafka_bootstrap)
              or next((e["kafka_bootstrap"] for e in known if e.get("kafka_bootstrap")), None))
    database = (settings.database_url or (state and state.database_url)
                or next((e["database_url"] for e in known if e.get("database_url")), None))
    screen = status(settings.with_overrides(kafka_bootstrap=broker),
                    Database(str(database), connect_timeout=3) if database else None)
    print(screen)
    return 1 if "DOWN" in screen else 0


def _schemas(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.schemas.registry import export_json_schemas

    for path in export_json_schemas(args.dir):
        print(path)
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.api import tokens
    from amc_learning.api.server import serve_api

    try:
        if not tokens.parse(settings.api_tokens):
            raise ValueError("LEARNING_API_TOKENS is empty: no caller could be let in")
    except ValueError as exc:
        raise UserError(f"{exc}\nhint: `amc-learning api-token NAME` makes a token and "
                        "its entry") from None
    if args.port is not None:
        settings = settings.with_overrides(api_port=args.port)
    return serve_api(bootstrap(settings))


def _params_keys(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.schemas.signing import Signer, new_private_key, public_pem
    from amc_learning.streams.params import verifier_of

    if args.action == "new":
        private = new_private_key()
        signer = Signer(private)
        print(f"key id {signer.key_id}: give LEARNING_PARAMS_SIGNING_KEY to the learner "
              "alone, LEARNING_PARAMS_PUBLIC_KEYS to every reader\n"
              f"{public_pem(signer.public_key)}", file=sys.stderr)
        print(json.dumps({"key_id": signer.key_id, "LEARNING_PARAMS_SIGNING_KEY": private,
                          "LEARNING_PARAMS_PUBLIC_KEYS": signer.public_key}))
        return 0
    public = verifier_of(settings).public_keys  # their form was checked with the settings
    if not public:
        raise UserError("no params keys here\nhint: set LEARNING_PARAMS_PUBLIC_KEYS (or "
                        "LEARNING_PARAMS_SIGNING_KEY on the learner)")
    for kid, key in public.items():
        print(f"key id {kid} (base64 {key})\n{public_pem(key)}")
    return 0


def _api_token(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.api import tokens

    try:
        token, entry = tokens.make(args.producer, tuple(args.scope.split("+")))
    except ValueError as exc:
        raise UserError(f"{exc}\nhint: a lower-case producer name and --scope collect, "
                        "read or collect+read") from None
    print(f"token (give it to {args.producer}; it is not stored anywhere): {token}",
          file=sys.stderr)
    print(f"LEARNING_API_TOKENS entry (the server's): {entry}", file=sys.stderr)
    print(json.dumps({"producer": args.producer, "token": token, "entry": entry}))
    return 0
