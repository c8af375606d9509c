"""WSGI entry point for gunicorn: settings are read once, from the environment."""
from dataserver import Settings

from . import create_app

app = create_app(Settings.from_env())
