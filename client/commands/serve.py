"""`xoda serve`: run the web service under gunicorn.

Several worker processes (`XODA_WEB_WORKERS`), each with a few request threads and its own
job runner (`XODA_JOB_THREADS`); they share the job store and the product cache on disk, so
any worker answers for any job and each job runs in exactly one of them. The access log shows
the path of each request but never its query string, which may hold a token.
"""
from __future__ import annotations

import argparse
import os
import sys

from client.cli import EXIT_BAD_INPUT

# Method, path without query string, status, size, duration: no token can reach the log.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
REQUEST_THREADS = 4


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the xoda web service",
                                   description="Run the dispatcher under gunicorn. Settings come "
                                   "from XODA_* environment variables (see the README).")
    parser.add_argument("--host", help="interface to listen on (default: XODA_HOST)")
    parser.add_argument("--port", type=int, help="port (default: XODA_PORT)")
    parser.add_argument("--workers", type=int,
                        help="gunicorn worker processes (default: XODA_WEB_WORKERS)")
    parser.set_defaults(func=run)


def gunicorn_command(host: str, port: int, workers: int, keepalive_s: float) -> list[str]:
    # No control socket: gunicorn would put it at one path per user (~/.gunicorn/gunicorn.ctl),
    # which every other gunicorn of that user (another xoda, the test suite) takes over.
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}",
            "--workers", str(workers), "--worker-class", "gthread",
            "--threads", str(REQUEST_THREADS), "--timeout", "120", "--graceful-timeout", "30",
            "--keep-alive", f"{keepalive_s:g}", "--no-control-socket",
            "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT,
            "dispatcher.wsgi:app"]


def run(args: argparse.Namespace) -> int:
    # Imported here: the client package never needs the server unless asked to serve.
    from dataserver import Settings
    from dispatcher.jobstore import JobStore

    settings = Settings.from_env()
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.web_workers
    if workers < 1 or not 0 < port < 65536:
        print("xoda serve: --workers must be >= 1 and --port within 1-65535", file=sys.stderr)
        return EXIT_BAD_INPUT
    jobs = JobStore(settings.data_path / "jobs")
    try:
        # Said once here rather than by every web worker failing to boot.
        jobs.bind_cache(settings.cache_path)
    except ValueError as exc:
        print(f"xoda serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        jobs.close()
    print(f"xoda is serving at http://{host}:{port}/", flush=True)
    os.execv(sys.executable, gunicorn_command(host, port, workers, settings.keepalive_s))
