"""Helpers of the dispatcher tests: a proprietary variant of the engine test instrument, an
in-process app, and a real gunicorn server run as a subprocess."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest
import requests

from dataserver import Identity, Plan, Settings, Unit
from dataserver import params as P
from dispatcher.auth import TokenAuthority
from tests.engine_instrument import EngineTestInstrument

REPO = Path(__file__).resolve().parents[1]
SECRET = "dispatcher-tests-secret-of-forty-bytes!!"
PI = "pi@example.org"
TEAM_ROLE = "secret-team"
RELEASE = "2999-01-01"

# Observations of the proprietary instrument's search: (unit, public date).
OBSERVATIONS = [("S1", RELEASE), ("S2", RELEASE), ("P1", "2001-01-01")]


class SecretInstrument(EngineTestInstrument):
    """The engine test instrument, but every unit belongs to PI until 2999."""

    name = "enginesecret"
    title = "Engine test instrument, proprietary"

    def _plan_spectrum(self, params: Mapping) -> Plan:
        plan = super()._plan_spectrum(params)
        units = tuple(Unit(u.id, u.label, owner=PI, public_date=RELEASE, grant_roles=(TEAM_ROLE,))
                      for u in plan.units)
        return Plan(plan.outputs, units, {"units": len(units)})

    def search_parameters(self):
        return {"prefix": {"type": "string", "default": "", "description": "Unit id prefix"},
                **P.time_range(("2000-01-01T00:00:00", "2025-01-01T00:00:00")),
                "T_format": P.time_format()}

    def search(self, criteria: Mapping[str, Any], identity: Identity) -> Mapping[str, Any]:
        rows = [{"unit": unit, "public_date": date} for unit, date in OBSERVATIONS
                if unit.startswith(criteria["prefix"])
                and identity.may_access(PI, date, (TEAM_ROLE,))]
        return {"total": len(rows), "rows": rows,
                "columns": [{"name": "unit", "unit": "", "description": "Unit id"},
                            {"name": "public_date", "unit": "", "description": "Release"}]}


INSTRUMENTS = (EngineTestInstrument, SecretInstrument)
EXTRA_SETTING = ",".join(f"{cls.__module__}:{cls.__name__}" for cls in INSTRUMENTS)


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    return Settings({"data_dir": str(data_dir), "workers": 2, "secret_key": SECRET, **overrides})


@pytest.fixture
def app(tmp_path):
    """The dispatcher in this process, serving the test instruments."""
    from dispatcher import create_app

    application = create_app(settings_for(tmp_path / "xoda"), extra_instruments=INSTRUMENTS)
    yield application
    application.extensions["xoda"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def mint(subject: str, roles: Sequence[str] = (), hours: float = 1.0, now: float | None = None) -> str:
    return TokenAuthority(SECRET.encode()).mint(subject, roles, hours, now=now)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def spectrum(units: Sequence[str], **params: Any) -> dict[str, Any]:
    return {"instrument": "enginetest", "product": "spectrum",
            "params": {"units": list(units), **params}}


def wait_done(client, job_id: str, headers: Mapping[str, str] | None = None,
              timeout: float = 60) -> dict:
    """Poll a job (Flask test client or LiveServer) until it is complete."""
    deadline = time.monotonic() + timeout
    while True:
        reply = client.get(f"/api/v1/jobs/{job_id}?wait=5", headers=headers or {})
        body = reply.json() if callable(reply.json) else reply.json
        if body.get("status") in ("done", "failed") or time.monotonic() > deadline:
            return body


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`xoda serve`'s gunicorn command line as a subprocess, in its own process group."""

    def __init__(self, data_dir: Path, log_path: Path, workers: int = 2,
                 env: Mapping[str, str] | None = None):
        self.data_dir = data_dir
        self.log_path = log_path
        self.workers = workers
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "XODA_DATA_DIR": str(data_dir), "XODA_SECRET_KEY": SECRET,
                    "XODA_EXTRA_INSTRUMENTS": EXTRA_SETTING, "XODA_WORKERS": "2",
                    "XODA_JOB_THREADS": "2", "PYTHONPATH": str(REPO), **(env or {})}
        self.process: subprocess.Popen | None = None
        self.session = requests.Session()

    def start(self, timeout: float = 60) -> "LiveServer":
        from client.commands.serve import gunicorn_command

        for _ in range(3):
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            log = open(self.log_path, "ab")
            command = gunicorn_command("127.0.0.1", self.port, self.workers,
                                       Settings({}).keepalive_s)
            self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log,
                                            stderr=log, start_new_session=True)
            log.close()
            if self._serving(offset, timeout):
                return self
            # Another process took the port between its choice and gunicorn's bind: choose again.
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
        raise RuntimeError(f"no port could be bound: {self._log(offset)[-3000:]}")

    def _log(self, offset: int = 0) -> str:
        return self.log_path.read_bytes()[offset:].decode(errors="replace")

    def _serving(self, offset: int, timeout: float) -> bool:
        """True once this server answers; False if its port was in use. It is asked only after
        its own master says it listens: whatever else holds the port must not answer for it."""
        listening = f"Listening at: {self.url} ({self.process.pid})"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self._log(offset)
            if self.process.poll() is not None:
                self.process = None
                if "Connection in use" in text:
                    return False
                raise RuntimeError(f"server exited: {text[-3000:]}")
            try:
                if listening in text and \
                        requests.get(self.url + "/health", timeout=10).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server did not start in {timeout} s: {self._log(offset)[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group: master, web workers, engine workers."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:       # every process of the group has exited
                pass
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """SIGTERM (gunicorn stops gracefully), then SIGKILL whatever of the group is left."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            self.kill()

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def request(self, method: str, path: str, *, session: requests.Session | None = None,
                **kwargs):
        """One request, sent again once if a kept-alive connection was closed under it (the
        server had read nothing of it; the xoda client does the same). Any other failure
        says what the server logged."""
        for attempt in (1, 2):
            try:
                return (session or self.session).request(method, self.url + path, timeout=60,
                                                         **kwargs)
            except requests.RequestException as exc:
                closed_under_it = isinstance(exc, requests.ConnectionError) \
                    and not isinstance(exc, requests.Timeout)
                if attempt == 1 and closed_under_it:
                    continue
                raise AssertionError(f"{method} {path}: {exc!r}; server log:\n"
                                     f"{self._log()[-4000:]}") from exc


def run_python(code: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=300)
