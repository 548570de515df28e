"""`amc-learning serve`: the HTTP API in its own process (uvicorn), with the metrics and
health endpoint every process has, and a `ParamsReader` following the params topic."""

from __future__ import annotations

import logging

import uvicorn

from amc_learning.api.app import create_app
from amc_learning.consumers import ops
from amc_learning.service.deps import Deps
from amc_learning.service.models import known
from amc_learning.streams.params import ParamsReader, verifier_of

log = logging.getLogger(__name__)


def serve_api(deps: Deps) -> int:
    """Serve until SIGTERM or SIGINT (uvicorn drains the requests in hand)."""
    settings = deps.settings
    with deps.db.unit_of_work() as uow:  # shipped and registered: restart after `register`
        models = tuple(k.model for k in known(uow))
    reader = (ParamsReader.from_settings(settings, models=models).start()
              if verifier_of(settings) else None)
    app = create_app(settings, deps.db, reader)
    ops.serve(settings, "serve", lambda: ("ready", f"HTTP API on {settings.api_host}:"
                                                   f"{settings.api_port}"))
    try:
        uvicorn.run(app, host=settings.api_host, port=settings.api_port,
                    log_level=settings.log_level.lower(), access_log=False)
    finally:
        if reader is not None:
            reader.close()
    return 0
