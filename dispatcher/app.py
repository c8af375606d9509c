"""Application factory."""
from __future__ import annotations

import logging
from typing import Sequence

from flask import Flask, jsonify

from dataserver import Instrument, Settings, __version__, load_instruments

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None,
               extra_instruments: Sequence[type[Instrument]] = ()) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["XODA_SETTINGS"] = settings
    instruments = load_instruments(settings, extra=extra_instruments)
    app.config["XODA_INSTRUMENTS"] = instruments

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "version": __version__,
                        "instruments": sorted(instruments)})

    return app
