"""WSGI entry point for gunicorn: settings are read once, from the environment."""
import logging

from dataserver import Settings

from . import create_app

_settings = Settings.from_env()
logging.basicConfig(level=_settings.log_level.upper(),
                    format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
app = create_app(_settings)
