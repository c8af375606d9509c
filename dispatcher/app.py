"""Application factory: `create_app(settings, extra_instruments)`.

Each process that calls it (each gunicorn worker) gets its own `Service`: the instruments,
the token authority, the job store and a job runner whose threads start here. All state that
must be shared between processes (jobs, products) lives on disk under the data directory.
"""
from __future__ import annotations

import importlib
import logging
from typing import Sequence

from flask import Flask, jsonify

from dataserver import Instrument, Settings, __version__, load_instruments

from . import api, links, oda, openapi, web
from .errors import StrictJSONProvider, register_error_handlers
from .service import Service

log = logging.getLogger(__name__)

# Queries are small; even an ODA form with a long list of data units is far below this.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


def _import_instruments(spec: str) -> list[type[Instrument]]:
    """Classes named by the `extra_instruments` setting (`module:Class,...`)."""
    classes = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        module, _, name = item.partition(":")
        if not module or not name:
            raise ValueError(f"setting XODA_EXTRA_INSTRUMENTS: {item!r} is not module:Class")
        classes.append(getattr(importlib.import_module(module), name))
    return classes


def create_app(settings: Settings | None = None,
               extra_instruments: Sequence[type[Instrument]] = ()) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config["XODA_SETTINGS"] = settings
    extra = [*extra_instruments, *_import_instruments(settings.extra_instruments)]
    instruments = load_instruments(settings, extra=list(dict.fromkeys(extra)))
    app.config["XODA_INSTRUMENTS"] = instruments
    service = Service(settings, instruments)
    app.extensions["xoda"] = service

    register_error_handlers(app)
    for blueprint in (api.bp, oda.bp, web.bp, links.bp, openapi.bp):
        app.register_blueprint(blueprint)

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "version": __version__,
                        "instruments": sorted(instruments)})

    @app.before_request
    def _runner_in_this_process():
        # Restarts the runner after a fork (e.g. gunicorn --preload); a no-op otherwise.
        service.start()

    service.start()
    log.info("xoda %s serving %s", __version__, ", ".join(sorted(instruments)) or "no instrument")
    return app
