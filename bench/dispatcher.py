"""Dispatcher benchmark: one query cold through HTTP, then the same query 50 times warm.

    python -m bench dispatcher [--instrument hxmt_he] [--product spectrum]
                               [--param NAME=VALUE ...] [--plugin module:Class]
                               [--requests 50] [--web-workers N]

Starts the service as deployed (`xoda serve`'s gunicorn command, several workers) on a free
local port with an empty product cache and job store in a temporary directory, and the
Level-1 archive of the current settings (`XODA_ARCHIVE_DIR`, e.g. the demo archive built by
`make run`). The default query is an Insight-HXMT HE spectrum with the product's default
parameters; `--instrument enginetest` serves the engine's test instrument instead.

cold_s          submission to done for the query on an empty cache (includes starting the
                engine's workers)
warm_p50_ms     median latency of `POST /api/v1/jobs` for the same query, answered done
warm_p99_ms     99th percentile of the same
cold_over_warm  cold_s over warm_p50
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
TEST_PLUGINS = {"enginetest": "tests.engine_instrument:EngineTestInstrument"}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench dispatcher",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--instrument", default="hxmt_he")
    parser.add_argument("--product", default="spectrum")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a query parameter (as in a query string); repeatable")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE:CLASS",
                        help="an instrument plugin to serve besides the installed ones")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--web-workers", type=int, default=None)
    return parser.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(data_dir: Path, plugins: list[str], workers: int, log) -> tuple[subprocess.Popen, str]:
    from client.commands.serve import gunicorn_command
    from dataserver import Settings

    settings = Settings.from_env()
    port = _free_port()
    env = {**os.environ, "XODA_DATA_DIR": str(data_dir), "XODA_CACHE_DIR": "",
           "XODA_ARCHIVE_DIR": str(settings.archive_path), "XODA_LOG_LEVEL": "WARNING",
           "XODA_EXTRA_INSTRUMENTS": ",".join(filter(None, [settings.extra_instruments, *plugins])),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = gunicorn_command("127.0.0.1", port, workers, settings.keepalive_s)
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(url + "/health", timeout=10).ok:
                return process, url
        except requests.RequestException:
            time.sleep(0.2)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.flush()
    raise RuntimeError("the server did not start; the end of its log:\n"
                       + Path(log.name).read_text(errors="replace")[-3000:])


def run(argv: list[str]) -> dict:
    args = _parse(argv)
    plugins = list(args.plugin)
    if args.instrument in TEST_PLUGINS and not plugins:
        plugins.append(TEST_PLUGINS[args.instrument])
    params: dict[str, list[str]] = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param {item!r}: expected NAME=VALUE")
        params.setdefault(name, []).append(value)
    from dataserver import Settings

    workers = args.web_workers or Settings.from_env().web_workers
    with tempfile.TemporaryDirectory(prefix="xoda-bench-") as tmp:
        log_path = Path(tmp) / "server.log"
        with open(log_path, "wb") as log:
            process, url = _start(Path(tmp) / "data", plugins, workers, log)
        try:
            return _measure(url, args, params, log_path)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def _measure(url: str, args: argparse.Namespace, params: dict[str, list[str]],
             log_path: Path) -> dict:
    session = requests.Session()
    served = session.get(url + "/health").json()["instruments"]
    if args.instrument not in served:
        raise SystemExit(f"instrument {args.instrument!r} is not installed (served: "
                         f"{', '.join(served) or 'none'}); try --instrument enginetest")
    # The query as a user types it: text values, normalised by the server like a link's.
    link_path = f"{url}/q/{args.instrument}/{args.product}"
    first = session.get(link_path, params=params, headers={"Accept": "application/json"})
    if first.status_code >= 400:
        raise SystemExit(f"the query was refused: {first.json()['error']}")
    payload = {"instrument": args.instrument, "product": args.product,
               "params": first.json()["params"]}
    # The link submitted the job: cold is from that submission until done.
    started = time.perf_counter() - first.elapsed.total_seconds()
    job = first.json()
    while job["status"] not in ("done", "failed"):
        job = session.get(f"{url}/api/v1/jobs/{job['job_id']}?wait=25").json()
    cold = time.perf_counter() - started
    if job["status"] != "done":
        raise SystemExit(f"the cold query failed: {job['error']['message']}\n"
                         f"{log_path.read_text()[-2000:]}")

    latencies = []
    for _ in range(args.requests):
        begin = time.perf_counter()
        reply = session.post(url + "/api/v1/jobs", json=payload)
        latencies.append(time.perf_counter() - begin)
        body = reply.json()
        if reply.status_code != 200 or body["status"] != "done" or body["job_id"] != job["job_id"]:
            raise SystemExit(f"warm query not answered done at once: {reply.status_code}")
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    print(f"query: {args.instrument}/{args.product} {payload['params']}", flush=True)
    return {"cold_s": round(cold, 3), "warm_p50_ms": round(p50 * 1e3, 2),
            "warm_p99_ms": round(p99 * 1e3, 2), "cold_over_warm": round(cold / p50, 1)}
