"""xoda's dispatcher: the Flask application that validates queries and serves results."""
from .app import create_app

__all__ = ["create_app"]
