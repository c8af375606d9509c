"""Helpers of the client and command-line tests: a live server (gunicorn subprocess) serving
the engine test instruments and the client test instrument, and a request recorder."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import pytest

from tests.dispatcher_support import EXTRA_SETTING, REPO, LiveServer

CLIENT_INSTRUMENTS = EXTRA_SETTING + ",tests.client_instrument:ClientTestInstrument"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real server for the module, with its own data directory."""
    base = tmp_path_factory.mktemp("client-server")
    live = LiveServer(base / "xoda", base / "server.log", workers=2,
                      env={"XODA_EXTRA_INSTRUMENTS": CLIENT_INSTRUMENTS}).start()
    yield live
    live.stop()


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """No token from the environment or the real home directory; no client cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XODA_TOKEN", "XODA_URL", "XODA_CLIENT_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return home


class Recorder:
    """Records the requests a Dispatcher sends: (method, path, query params, headers, time)."""

    def __init__(self, dispatcher):
        self.calls: list[dict[str, Any]] = []
        session = dispatcher._transport.session
        original = session.request

        def request(method, url, **kwargs):
            self.calls.append({"method": method, "url": url, "params": dict(kwargs.get("params") or {}),
                               "headers": dict(kwargs.get("headers") or {}),
                               "time": time.monotonic()})
            return original(method, url, **kwargs)

        session.request = request

    def paths(self, method: str | None = None) -> list[str]:
        return [c["url"].split("/api/v1", 1)[-1] for c in self.calls
                if method is None or c["method"] == method]


def xoda_command() -> list[str]:
    script = Path(sys.executable).with_name("xoda")
    return [str(script)] if script.exists() else [sys.executable, "-m", "client.cli"]


def run_xoda(args: Sequence[str], *, cwd: Path, url: str | None = None,
             env: dict[str, str] | None = None, stdin: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """`xoda ARGS` as a subprocess in `cwd`, which is also its HOME; no token unless given."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("XODA_TOKEN", "XODA_URL", "XODA_CLIENT_CACHE")}
    environment["PYTHONPATH"] = str(REPO)
    environment["HOME"] = str(cwd)
    if url:
        environment["XODA_URL"] = url
    environment.update(env or {})
    return subprocess.run(xoda_command() + list(args), capture_output=True, text=True,
                          cwd=cwd, env=environment, input=stdin, timeout=timeout)
