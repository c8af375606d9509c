"""The web form's token field in Debian's Chromium (Playwright), against the live server on the
small simulated HXMT archive, whose Cen X-3 observation (HE) is proprietary to its PI, chen.li:
invisible and refused without a token; with the PI's token (checked on the server, kept in the
tab's sessionStorage) found, reduced, plotted and downloaded; refused again in a fresh browser
and once the token is forgotten. The token is sent only in `Authorization` headers: never in
the page's address, its links, localStorage, cookies or any request URL. Screenshots go to
tests/output/web/."""
from __future__ import annotations

import tarfile
import time

import jwt
import pytest
from astropy.io import fits

from tests.dispatcher_support import bearer, mint
# Its asserts are rewritten like a conftest's, being imported here before it is a plugin.
pytest.register_assert_rewrite("tests.web_support")
from tests.web_support import TIMEOUT_MS  # noqa: E402

pytest_plugins = ["tests.web_support"]      # the shared browser and live server (see test_web_flow)

HE = "hxmt_he"
OWNER = "chen.li"
OWNER_NAME = "Li Chen"
TARGET = "Cen X-3"


def _stored(page) -> str | None:
    return page.evaluate("sessionStorage.getItem('xoda.token')")


def _use_token(page, token: str) -> None:
    page.locator("#token-input").fill(token)
    page.locator("#token-use").click()


def _record_headers(browser) -> list[tuple[str, str | None]]:
    """(URL, Authorization header) of every request the page makes from now on."""
    sent: list[tuple[str, str | None]] = []
    browser.page.on("request", lambda request: sent.append((request.url, request.headers.get("authorization"))))
    return sent


def _not_available(text: str, exposure: str) -> None:
    """The page's 403 message: what the user can do, nothing of the data."""
    assert text.startswith("Not available to you"), text
    for hint in (OWNER, OWNER_NAME, exposure, "access denied", "public_date", "P0301040"):
        assert hint not in text, f"the refusal reveals {hint!r}: {text}"


def test_proprietary_observation_needs_the_pi_token_which_never_leaves_the_headers(web):
    server = web.server
    token = mint(OWNER, hours=2)
    found = server.get(f"/api/v1/instruments/{HE}/search", params={"name": TARGET}, headers=bearer(token)).json()
    assert found["total"] == 1 and found["rows"][0]["proprietary"] is True
    exposure = found["rows"][0]["exp_ids"][0]
    browser = web().open(f"/#{HE}")
    page, panel = browser.page, browser.panel(HE)
    status = page.locator("#token-status")
    sent = _record_headers(browser)
    assert status.inner_text() == "Public data only." and _stored(page) is None

    # Without a token: the search hides the observation, and a query for it is refused.
    panel.locator(f"#{HE}-search-name").fill(TARGET)
    panel.locator(f"#{HE}-search-run").click()
    panel.locator(".status-line", has_text="No observation matches").wait_for()
    panel.locator("input[value=spectrum]").check()
    panel.locator(f"#{HE}-params-exposures").fill(exposure)
    panel.locator("button.run-direct").click()
    browser.wait_idle(HE)
    _not_available(panel.locator(f"#{HE}-step-params .form-errors").inner_text(), exposure)
    assert "paste your token" in panel.locator(f"#{HE}-step-params .form-errors").inner_text()
    browser.shot("12-proprietary-without-token", panel.locator(f"#{HE}-step-params"))

    # Tokens the server refuses: the reason next to the field, and nothing kept.
    expired = mint(OWNER, hours=1, now=time.time() - 7200)
    foreign = jwt.encode({"sub": OWNER, "exp": time.time() + 600}, "another-secret-of-at-least-32-bytes!")
    for bad, reason in ((expired, "the token expired at"), (foreign, "signature does not match")):
        _use_token(page, bad)
        status.filter(has_text=reason).wait_for()
        assert status.inner_text().startswith("This token was refused")
        assert "refused" in status.get_attribute("class") and _stored(page) is None
    browser.shot("13-token-refused", page.locator("header.top"))

    # The PI's token: checked on the server, kept for the tab; the search shows the data.
    _use_token(page, token)
    status.filter(has_text=f"Signed in as {OWNER}").wait_for()
    assert "roles: none, expires " in status.inner_text() and "(in 2 h)" in status.inner_text()
    assert _stored(page) == token and page.locator("#token-input").input_value() == ""
    assert page.locator("#token-input").is_hidden() and page.locator("#token-forget").is_visible()
    signed_in_at = len(sent)
    panel.locator(".status-line", has_text="1 observation").wait_for()     # searched again by itself
    row = panel.locator("table.results tbody tr")
    assert TARGET in row.inner_text()
    row.locator("input.pick-row").check()
    panel.locator("button.use-picks").click()
    assert panel.locator(f"#{HE}-params-exposures").input_value() == exposure
    browser.shot("14-signed-in-search")
    panel.locator("button.run-direct").click()
    browser.wait_idle(HE)
    job_id = panel.get_attribute("data-job")
    job = server.get(f"/api/v1/jobs/{job_id}", headers=bearer(token)).json()
    assert job["status"] == "done" and job["params"]["exposures"] == [exposure]
    assert panel.locator(f"#{HE}-step-params .form-errors").is_hidden()
    spectrum = next(o["name"] for o in job["outputs"] if o["kind"] == "spectrum")
    plot = panel.locator(".spectrum-plot")
    assert plot.evaluate("div => div.data[0].y.length") > 100
    browser.shot("15-proprietary-spectrum", panel.locator(f"#{HE}-step-results"))

    # Downloads: fetched with the header, saved from a Blob URL under the files' own names.
    with page.expect_download() as download:
        panel.locator("table.files a.file", has_text=spectrum).click()
    assert download.value.url.startswith("blob:") and download.value.suggested_filename == spectrum
    with fits.open(download.value.path()) as hdul:
        assert hdul[0].header["XODAJOB"] == job_id and hdul["SPECTRUM"].header["HDUCLAS1"] == "SPECTRUM"
    with page.expect_download() as download:
        panel.locator("a.archive").click()
    assert download.value.suggested_filename == f"xoda-{HE}-spectrum-{job_id[:12]}.tar.gz"
    with tarfile.open(download.value.path()) as archive:
        assert spectrum in {name.rsplit("/", 1)[-1] for name in archive.getnames()}
    assert panel.locator(".download-status").inner_text() == f"Downloaded xoda-{HE}-spectrum-{job_id[:12]}.tar.gz."
    # The files' addresses alone are refused (a plain link sends no token).
    assert server.get(f"/api/v1/jobs/{job_id}/products/{spectrum}").status_code == 403

    # The link holds no token; reloading the tab (which keeps it) opens the same results.
    link = job["link"]
    assert page.url == link and panel.locator("input.link").input_value() == link
    reply = page.reload()
    assert reply.status == 403                      # the browser's own request carries no token
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)
    browser.wait_idle(HE)
    assert panel.get_attribute("data-job") == job_id and page.url == link
    assert panel.locator(".spectrum-plot").evaluate("div => div.data[0].y.length") > 100
    assert status.inner_text().startswith(f"Signed in as {OWNER}")

    # Everything the page asked for since the sign-in carried the token in the header, and
    # no address, storage or cookie ever held it.
    api_calls = [(url, auth) for url, auth in sent[signed_in_at:] if url.startswith(server.url + "/api/v1/")]
    assert len(api_calls) > 10 and all(auth == f"Bearer {token}" for _, auth in api_calls), api_calls
    for secret in (token, expired, foreign):
        assert not [url for url in browser.requests if secret in url]
        assert secret not in page.evaluate("JSON.stringify(Object.entries(localStorage))")
        assert secret not in page.content()
    assert not page.context.cookies() and token not in link
    assert not [url for url, _ in sent if "token=" in url]

    # A fresh browser (no token) gets the link refused, saying nothing of the data.
    stranger = web()
    assert stranger.page.goto(link).status == 403
    stranger.page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)
    other = stranger.panel(HE)
    _not_available(other.locator(f"#{HE}-step-job .job-error").inner_text(), exposure)
    assert other.locator(f"#{HE}-step-results").is_hidden() and other.locator(".spectrum-plot").count() == 0
    assert other.locator(f"#{HE}-params-exposures").input_value() == exposure     # the link's own query
    stranger.shot("16-link-without-token")

    # Forgetting the token: gone from the tab, which reloads without the proprietary results.
    with page.expect_navigation():
        page.locator("#token-forget").click()
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)
    assert _stored(page) is None and status.inner_text() == "Public data only."
    _not_available(panel.locator(f"#{HE}-step-job .job-error").inner_text(), exposure)
    assert panel.locator(".spectrum-plot").count() == 0
    browser.shot("17-token-forgotten")
    # Only the refusals this test provoked: 403s and the refused tokens' 401s.
    browser.assert_self_contained(expected_console_errors=8)
    stranger.assert_self_contained(expected_console_errors=2)


def test_a_token_expiring_in_the_session_is_reported_next_to_the_field(web):
    browser = web().open(f"/#{HE}")
    page, panel = browser.page, browser.panel(HE)
    status = page.locator("#token-status")
    # Valid for about ten more seconds (room for a slow machine to sign in first).
    _use_token(page, mint(OWNER, hours=1, now=time.time() - 3590))
    status.filter(has_text=f"Signed in as {OWNER}").wait_for()
    # The page checks it again when it expires and says so, without a request failing first.
    status.filter(has_text="Your token was refused: the token expired at").wait_for(timeout=30_000)
    assert page.locator("#token-input").is_visible() and page.locator("#token-forget").is_visible()
    # Calls made with it now fail with the same reason.
    panel.locator(f"#{HE}-search-run").click()
    panel.locator(f"#{HE}-step-search .form-errors", has_text="Your token was refused: the token expired").wait_for()
    browser.shot("18-token-expired", page.locator("header.top"))
    browser.assert_self_contained(expected_console_errors=2)
