"""The scoring-model registry: `models register FILE`, `models list`, `models show`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from amc_learning.cli.common import Command, UserError, say
from amc_learning.entrypoints.bootstrap import bootstrap
from amc_learning.settings import Settings

DESCRIPTION = """\
A scoring model is what a producer's scanner is, declared as data: a tiered points model
(each factor's tiers with their boundaries on a named measurement, or the producer's
labels, and their points; the score's scale, entry threshold and bands; which tables the
producer's code reads from its file) or a component model (named components on a
declared scale, their weights and threshold). AMC-Trader's scanner 3.3.1 and AlphaStack
4.1 ship with the engine; `register` adds one from a JSON file, once per name and
version (a changed model is a new version). Candidates of a model the registry does not
know are stored as undeclared; `infer` reads what the stored candidates of one say it is
(a component model: the weights that make its score from its components, the bar its
passes imply) and prints it as a declaration to check and register; `backtest` uses
that inference for an undeclared model, and says so."""


def register(command: Command) -> None:
    p = command("models", "the scoring models the engine knows: register, list, show, infer",
                DESCRIPTION)
    p.add_argument("action", choices=["register", "list", "show", "infer"],
                   help="register FILE; list; show NAME VERSION; infer NAME VERSION")
    p.add_argument("what", nargs="*", metavar="ARG",
                   help="register: the declaration's JSON file; show, infer: the model's "
                        "name and version")
    p.set_defaults(handler=_models)


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from amc_learning.service import models
    from amc_learning.store.migrations import migrate

    deps = bootstrap(settings, kafka=False)
    migrate(deps.db)
    if args.action == "register":
        if len(args.what) != 1:
            raise UserError("models register takes one FILE\nhint: amc-learning models "
                            "register my-scanner-1.0.json")
        path = Path(args.what[0])
        try:
            text = path.read_text()
        except OSError as exc:
            raise UserError(f"{path}: {exc.strerror or exc}") from None
        try:
            with deps.db.unit_of_work() as uow:
                found, new = models.register(uow, text)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"][1:]) or "the declaration"
            raise UserError(f"{path}: {where}: {first['msg']}"
                            + (f" (and {exc.error_count() - 1} more)"
                               if exc.error_count() > 1 else "")) from None
        except ValueError as exc:
            raise UserError(f"{path}: {exc}") from None
        say(("registered " if new else "already known, unchanged: ") + _line(found))
        print(json.dumps({"name": found.model.name, "version": found.model.version,
                          "kind": found.model.kind, "source": found.source, "new": new}))
        return 0
    with deps.db.unit_of_work() as uow:
        if args.action == "list":
            every = models.known(uow)
            for k in every:
                print(_line(k))
            print(json.dumps([{"name": k.model.name, "version": k.model.version,
                               "kind": k.model.kind, "source": k.source} for k in every]))
            return 0
        if len(args.what) != 2:
            raise UserError(f"models {args.action} takes NAME VERSION\nhint: amc-learning "
                            f"models {args.action} amc-scanner 3.3.1")
        if args.action == "infer":
            return _infer(uow, " ".join(args.what))
        shown = models.find(uow, *args.what)
        if shown is None:
            names = ", ".join(k.key for k in models.known(uow))
            raise UserError(f"no scoring model {' '.join(args.what)!r} is declared\n"
                            f"hint: the registry knows {names}")
    print(json.dumps({"source": shown.source, **shown.model.model_dump(mode="json")},
                     indent=2))
    return 0


def _infer(uow: Any, scoring_model: str) -> int:
    from amc_learning.intelligence.inference import NotInferable
    from amc_learning.service import models

    if models.declared(uow, scoring_model):
        raise UserError(f"{scoring_model} is declared: `amc-learning models show "
                        f"{scoring_model}` prints its declaration")
    try:
        inferred = models.infer(uow, scoring_model)
    except NotInferable as exc:
        raise UserError(str(exc)) from None
    say(inferred.note())
    say("check it, save it to a file and `amc-learning models register FILE` to learn it live")
    print(json.dumps({"model": inferred.model.model_dump(mode="json")}, indent=2))
    return 0


def _line(k: Any) -> str:
    m = k.model
    if m.kind == "tiered":
        tables = len(m.factors) + len(m.bonuses)
        what = (f"{len(m.factors)} factors, entry at {m.entry_threshold:g} on "
                f"[{m.scale.low:g}, {m.scale.high:g}]; its code reads "
                f"{len(m.read_by_producer)} of {tables} tables from its file")
    else:
        what = (f"{len(m.components)} components on [{m.scale.low:g}, {m.scale.high:g}], "
                f"threshold {m.threshold:g}")
    return f"{k.key} ({m.kind}, {k.source}): {what}"
