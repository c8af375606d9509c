"""Helpers of the browser tests: a live server over a small simulated HXMT archive (and the
test instruments), Debian's Chromium driven by Playwright, and a page wrapper that records
every request, console error and page error, and saves screenshots under tests/output/web/.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins.hxmt.catalog import ObservationIndex
from tests.client_support import CLIENT_INSTRUMENTS
from tests.dispatcher_support import REPO, LiveServer
from tests.hxmt_support import build_small_archive

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SCREENSHOTS = REPO / "tests" / "output" / "web"
TIMEOUT_MS = 60_000
CRAB_EXPOSURES = ["P010129900101", "P010129900102"]


@pytest.fixture(scope="session")
def web_server(tmp_path_factory):
    """xoda under gunicorn, serving the HXMT plugins on the small simulated archive (built
    once per session and shared with the other HXMT tests) and the test instruments."""
    archive = build_small_archive(tmp_path_factory.getbasetemp())
    base = tmp_path_factory.mktemp("web-server")
    index = base / "hxmt_index.sqlite"
    ObservationIndex(index).rescan(archive)
    live = LiveServer(base / "xoda", base / "server.log", workers=2, env={
        "XODA_EXTRA_INSTRUMENTS": CLIENT_INSTRUMENTS, "XODA_ARCHIVE_DIR": str(archive),
        "XODA_HXMT_INDEX": str(index)}).start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        reason = f"Chromium is missing ({CHROMIUM}); `make test` installs it (Debian package chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        print(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # This session's screenshots only.
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class WebPage:
    """A fresh browser context and page on the server, recording what the page asks for."""

    page: Any
    base: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> "WebPage":
        self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)
        return self

    def panel(self, instrument: str):
        return self.page.locator(f"#panel-{instrument}")

    def wait_idle(self, instrument: str) -> None:
        """Until the tab has no job being submitted, followed or drawn."""
        self.page.wait_for_selector(f"#panel-{instrument}[data-busy=false]", timeout=TIMEOUT_MS)

    def shot(self, name: str, locator=None) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        (locator or self.page).screenshot(path=str(path), **({} if locator else {"full_page": True}))
        return path

    def outside_requests(self) -> list[str]:
        allowed = (self.base + "/", "data:", "blob:", "about:")
        return [url for url in self.requests if not url.startswith(allowed)]

    def assert_self_contained(self, expected_console_errors: int = 0) -> None:
        """Nothing fetched from outside the server, no script error; console errors only the
        failed requests the test provoked (the browser logs each 4xx answer)."""
        assert self.requests, "the page made no request at all"
        assert self.outside_requests() == []
        assert self.page_errors == []
        unexpected = [e for e in self.console_errors if "responded with a status of 4" not in e]
        assert unexpected == [] and len(self.console_errors) <= expected_console_errors, self.console_errors


@pytest.fixture
def web(chromium, web_server):
    """Opens WebPages (each in its own browser context) and closes them after the test."""
    contexts = []

    def new_page() -> WebPage:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server.url)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        wrapper = WebPage(page, web_server.url)
        page.on("request", lambda request: wrapper.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and wrapper.console_errors.append(message.text))
        page.on("pageerror", lambda error: wrapper.page_errors.append(str(error)))
        return wrapper

    new_page.server = web_server
    yield new_page
    for context in contexts:
        context.close()
