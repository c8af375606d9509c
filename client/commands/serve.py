"""`xoda serve`: run the web service under gunicorn."""
from __future__ import annotations

import argparse
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the xoda web service",
                                   description="Run the dispatcher under gunicorn. Settings come "
                                   "from XODA_* environment variables (see the README).")
    parser.add_argument("--host", help="interface to listen on (default: XODA_HOST)")
    parser.add_argument("--port", type=int, help="port (default: XODA_PORT)")
    parser.add_argument("--workers", type=int, help="gunicorn worker processes (default: XODA_WEB_WORKERS)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the client package never needs the server unless asked to serve.
    from dataserver import Settings

    settings = Settings.from_env()
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.web_workers
    print(f"xoda is serving at http://{host}:{port}/", flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers),
                           "--access-logfile", "-", "dispatcher.wsgi:app"])
