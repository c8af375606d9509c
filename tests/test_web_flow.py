"""The web form in Debian's Chromium (Playwright), against a live server on a small simulated
HXMT archive: search, pick exposures, check and edit the good time, run the spectrum, fit it,
download, copy the link and open it in a fresh browser, where the same numbers appear.
Screenshots of every step go to tests/output/web/."""
from __future__ import annotations

import re
import tarfile

import pytest
from astropy.io import fits

# Its asserts are rewritten like a conftest's, being imported here before it is a plugin.
pytest.register_assert_rewrite("tests.web_support")
from tests.web_support import CRAB_EXPOSURES  # noqa: E402

# The browser and the live server are session fixtures shared by every browser test module:
# registered once as a plugin (a fixture imported into two modules would start twice).
pytest_plugins = ["tests.web_support"]

HE = "hxmt_he"


def _products(server, job_id: str) -> dict:
    return server.get(f"/api/v1/jobs/{job_id}/products").json()


def _job_of(page) -> str:
    return page.panel(HE).get_attribute("data-job")


def _cells(locator) -> list[str]:
    return [text.strip() for text in locator.all_inner_texts()]


def _drag_across(page, plot, start: float, stop: float) -> None:
    """A mouse drag along the time axis of a Plotly plot, from and to fractions of its width,
    once the plot has stopped moving (scrolling and responsive resizing)."""
    plot.scroll_into_view_if_needed()
    area = plot.locator(".nsewdrag").first
    box = area.bounding_box()
    for _ in range(20):
        page.wait_for_timeout(50)
        again = area.bounding_box()
        if again == box:
            break
        box = again
    middle = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + start * box["width"], middle)
    page.mouse.down()
    page.mouse.move(box["x"] + stop * box["width"], middle, steps=8)
    page.mouse.up()


def test_search_pick_gti_edit_spectrum_fit_download_and_link(web):
    server = web.server
    browser = web().open(f"/#{HE}")
    page, panel = browser.page, browser.panel(HE)

    # 1. Search by name: one observation with both Crab exposures; pick them all.
    panel.locator(f"#{HE}-search-name").fill("crab nebula")
    panel.locator(f"#{HE}-search-run").click()
    panel.locator(".status-line", has_text="1 observation").wait_for()
    row = panel.locator("table.results tbody tr")
    assert row.count() == 1 and "P0101299001" in row.inner_text()
    row.locator("input.pick-row").check()
    assert sorted(panel.locator(".pick-id input:checked").evaluate_all(
        "nodes => nodes.map(n => n.value)")) == CRAB_EXPOSURES
    browser.shot("01-search", panel.locator(f"#{HE}-step-search"))
    panel.locator("button.use-picks").click()
    assert panel.locator(f"#{HE}-params-exposures").input_value() == ", ".join(CRAB_EXPOSURES)
    assert panel.locator(f"#{HE}-params-src_name").input_value() == "Crab"
    panel.locator(".format-hint", has_text="Crab: RA 83.63308").wait_for()
    assert float(panel.locator(f"#{HE}-params-RA").input_value()) == 83.63308
    assert panel.locator(f"#{HE}-params-T_format").input_value() == "isot"
    assert panel.locator(f"#{HE}-params-T1").input_value().startswith("2017-08-27T")
    browser.shot("02-parameters", panel.locator(f"#{HE}-step-params"))

    # 3. Stage 1: the good time per exposure over its raw light curve.
    panel.locator(f"#{HE}-step-params button.run").click()
    browser.wait_idle(HE)
    gti_job = _job_of(browser)
    gtis = {o["meta"]["exposure"]: o["meta"] for o in _products(server, gti_job)["outputs"] if o["kind"] == "gti"}
    assert sorted(gtis) == CRAB_EXPOSURES
    for exp_id, meta in gtis.items():
        cells = _cells(panel.locator(f"table.gti tr[data-unit={exp_id}] td"))
        assert float(cells[1]) == pytest.approx(meta["good_time_s"])
        assert float(cells[0]) == pytest.approx(meta["span_s"])
        removed = [float(c) for c in _cells(panel.locator(f"table.gti tr[data-unit={exp_id}] td.removed"))]
        assert sorted(removed) == pytest.approx(sorted(meta["removed_s"].values()))
        plot = panel.locator(f".gti-plot[data-unit={exp_id}]")
        shapes = plot.evaluate("div => div.layout.shapes.map(s => [s.x0, s.x1])")
        assert len(shapes) == len(meta["intervals"]) >= 1
        assert plot.evaluate("div => div.data[0].x.length") > 100
    total = sum(m["good_time_s"] for m in gtis.values())
    assert float(panel.locator(f"#{HE}-good-time-total").inner_text()) == pytest.approx(total)
    assert "ELV>10" in panel.locator("code.expression").inner_text()
    browser.shot("03-gti", panel.locator(f"#{HE}-step-gti"))

    # Edit: drag across the first exposure's plot to keep an interval, and check again.
    _drag_across(page, panel.locator(f".gti-plot[data-unit={CRAB_EXPOSURES[0]}]"), 0.55, 0.75)
    page.wait_for_function(f"() => document.querySelector('#{HE}-gti-gti_intervals').value.trim() !== ''")
    intervals = panel.locator(f"#{HE}-gti-gti_intervals").input_value().split()
    start, stop = float(intervals[0]), float(intervals[1])
    assert len(intervals) == 2 and stop > start
    # Step 2's form shows the edit too: its buttons must not run the old screening.
    assert panel.locator(f"#{HE}-params-gti_intervals").input_value().split() == intervals
    panel.locator("button.recheck-gti").click()
    browser.wait_idle(HE)
    edited = [o["meta"] for o in _products(server, _job_of(browser))["outputs"] if o["kind"] == "gti"]
    assert len(edited) == 1 and edited[0]["exposure"] == CRAB_EXPOSURES[0]
    assert 0 < edited[0]["good_time_s"] <= stop - start + 1e-6
    assert float(panel.locator(f"#{HE}-good-time-total").inner_text()) == pytest.approx(edited[0]["good_time_s"])
    browser.shot("03b-gti-edited", panel.locator(f"#{HE}-step-gti"))

    # Back to the default screening, confirm: stage 2 (the spectrum) of both exposures.
    panel.locator("button.reset-gti").click()
    assert panel.locator(f"#{HE}-gti-gti_intervals").input_value() == ""
    panel.locator("button.confirm-gti").click()
    browser.wait_idle(HE)
    spectrum_job = _job_of(browser)
    job = server.get(f"/api/v1/jobs/{spectrum_job}").json()
    assert job["product"] == "spectrum" and job["status"] == "done" and job["params"]["gti_intervals"] == []
    for unit in CRAB_EXPOSURES:
        states = [s for s in _cells(panel.locator(f"table.status tr[data-unit={unit}] td")) if s]
        assert len(states) >= 6 and all(s in ("computed", "restored") for s in states)
    assert "restored" in _cells(panel.locator("table.status td"))    # stage 1 came from the cache
    browser.shot("04-job-status", panel.locator(f"#{HE}-step-job"))

    # 4. Results: the combined spectrum per keV with its background; every file; all at once.
    spectrum_plot = panel.locator(".spectrum-plot")
    assert spectrum_plot.evaluate("div => div.data.map(t => t.name)") == ["HE_spec_combined.pha", "background (scaled)"]
    data = server.get(f"/api/v1/jobs/{spectrum_job}/products/HE_spec_combined.pha/data").json()
    assert spectrum_plot.evaluate("div => div.data[0].y.length") == data["rows"] > 100
    assert spectrum_plot.evaluate("div => div.layout.xaxis.type") == "log"
    # Every tick of the log axes labelled with its value ("20", "50", "200" keV), no bare digits.
    labels = spectrum_plot.evaluate("div => [...div.querySelectorAll('.xtick text')].map(t => t.textContent)")
    assert "20" in labels and "200" in labels and "2" not in labels
    browser.shot("05-spectrum", panel.locator(f"#{HE}-step-results"))
    outputs = [o["name"] for o in job["outputs"]]
    assert _cells(panel.locator("table.files td:first-child")) == outputs
    with page.expect_download() as download:
        panel.locator("table.files a.file", has_text="HE_spec_combined.pha").click()
    # No token: the plain link (test_web_tokens downloads with one).
    assert download.value.url == f"{server.url}/api/v1/jobs/{spectrum_job}/products/HE_spec_combined.pha"
    with fits.open(download.value.path()) as hdul:
        assert hdul["SPECTRUM"].header["HDUCLAS1"] == "SPECTRUM" and hdul[0].header["XODAJOB"] == spectrum_job
    with page.expect_download() as download:
        panel.locator("a.archive").click()
    with tarfile.open(download.value.path()) as archive:
        names = {name.rsplit("/", 1)[-1] for name in archive.getnames()}
    assert set(outputs) | {"job.json", "reproduce.py"} <= names

    # Fit the spectrum: model and band chosen in the page.
    panel.locator(f"#{HE}-fit-model").select_option("powerlaw")
    panel.locator(f"#{HE}-fit-E1_keV").fill("30")
    panel.locator("button.run-fit").click()
    browser.wait_idle(HE)
    fit_job = _job_of(browser)
    fit = next(o for o in _products(server, fit_job)["outputs"] if o["kind"] == "fit")["meta"]
    assert fit["fit_band"] == [30.0, 250.0]
    fit_rows = _cells(panel.locator("table.fit-table tbody tr"))
    assert [r.split("\t")[0] for r in fit_rows] == [p["name"] for p in fit["parameters"]]
    index = next(p for p in fit["parameters"] if p["name"] == "PhoIndex")
    shown = float(panel.locator("table.fit-table tr[data-parameter=PhoIndex] td.value").inner_text())
    assert abs(shown - index["value"]) < 1e-5 * index["value"]
    assert abs(index["value"] - 2.1) < 4 * index["sigma"]          # the simulated Crab
    fit_plot = panel.locator(".fit-plot")
    assert fit_plot.evaluate("div => div.data.map(t => t.name)")[:2] == ["data (net)", "folded model"]
    assert fit_plot.evaluate("div => div.data[0].error_y.array.every(Number.isFinite)")
    assert fit_plot.evaluate("div => div.data.at(-1).yaxis") == "y2"            # residuals panel
    assert "erg/cm²/s" in panel.locator("p.fit-flux").inner_text()
    browser.shot("06-fit", panel.locator(f"#{HE}-step-results"))

    # The reproducible link: in the address bar, in the box, in the clipboard.
    link = server.get(f"/api/v1/jobs/{fit_job}").json()["link"]
    assert panel.locator("input.link").input_value() == link
    assert page.url == link
    panel.locator("button.copy-link").click()
    assert page.evaluate("navigator.clipboard.readText()") == link
    numbers = {name: panel.locator(selector).inner_text() for name, selector in
               (("fit", "table.fit-table"), ("stat", "p.fit-stat"), ("flux", "p.fit-flux"))}
    browser.assert_self_contained()

    # Opened in a fresh browser: the same query, job and numbers.
    again = web()
    again.page.goto(link)
    again.page.wait_for_selector("body[data-ready=true]")
    again.wait_idle(HE)
    other = again.panel(HE)
    assert other.get_attribute("data-job") == fit_job
    assert {name: other.locator(selector).inner_text() for name, selector in
            (("fit", "table.fit-table"), ("stat", "p.fit-stat"), ("flux", "p.fit-flux"))} == numbers
    assert other.locator(f"#{HE}-params-exposures").input_value() == ", ".join(CRAB_EXPOSURES)
    assert other.locator(f"#{HE}-params-model").input_value() == "powerlaw"
    assert other.locator("input[value=spectral_fit]").is_checked()
    again.shot("07-link-fresh-page")
    # A cut-off the simulated power law does not have runs to its limit: the table says so
    # rather than showing a covariance error of 0.
    other.locator(f"#{HE}-fit-model").select_option("cutoffpl")
    other.locator("button.run-fit").click()
    again.wait_idle(HE)
    cutoff_fit = next(o for o in _products(server, _job_of(again))["outputs"] if o["kind"] == "fit")["meta"]
    cutoff = next(p for p in cutoff_fit["parameters"] if p["name"] == "HighECut")
    assert cutoff["limit"] == "upper" and cutoff["sigma"] is None
    assert other.locator("table.fit-table tr[data-parameter=HighECut] td.sigma").inner_text() == "at upper limit"
    assert float(other.locator("table.fit-table tr[data-parameter=PhoIndex] td.sigma").inner_text()) > 0
    again.assert_self_contained()


def test_screening_edited_in_step_3_runs_the_product_chosen_there_and_back_returns(web):
    """Opened on a stage-1 link, the edited expression goes to the product picked in step 3
    (not step 2's), and Back shows the stage-1 job again."""
    server = web.server
    gti_job = _submit_gti(server)
    gti_link = server.get(f"/api/v1/jobs/{gti_job}").json()["link"]
    browser = web()
    browser.page.goto(gti_link)
    browser.page.wait_for_selector("body[data-ready=true]")
    browser.wait_idle(HE)
    panel = browser.panel(HE)
    assert panel.locator("input[value=gti]").is_checked()
    expression = "ELV>10&&SAA_FLAG==0"
    panel.locator(f"#{HE}-gti-gti_expression").fill(expression)
    panel.locator("select.stage2-product").select_option("lightcurve")
    panel.locator("button.confirm-gti").click()
    browser.wait_idle(HE)
    job = server.get(f"/api/v1/jobs/{_job_of(browser)}").json()
    assert job["product"] == "lightcurve" and job["params"]["gti_expression"] == expression
    assert panel.locator("input[value=lightcurve]").is_checked()
    assert panel.locator(f"#{HE}-params-gti_expression").input_value() == expression
    assert browser.page.url == job["link"]
    # The page reloads on the link Back goes to: wait for that document's stage-1 job.
    browser.page.go_back()
    browser.page.wait_for_function(f"() => document.querySelector('#panel-{HE}')?.dataset.job === '{gti_job}'")
    assert browser.page.url == gti_link
    browser.wait_idle(HE)
    assert panel.locator("input[value=gti]").is_checked() and panel.locator("table.gti").is_visible()
    assert panel.locator(".no-good-time").count() == 0
    # A screening that leaves no good time is said to be one before anything runs with it.
    panel.locator(f"#{HE}-gti-gti_expression").fill("ELV>100")
    panel.locator("button.recheck-gti").click()
    browser.wait_idle(HE)
    assert "No good time left in " + CRAB_EXPOSURES[1] in panel.locator(".no-good-time").inner_text()
    browser.assert_self_contained()


def _submit_gti(server) -> str:
    reply = server.post("/api/v1/jobs", json={"instrument": HE, "product": "gti",
                                              "params": {"exposures": [CRAB_EXPOSURES[1]]}})
    assert reply.status_code in (200, 201, 202), reply.text
    return reply.json()["job_id"]


def test_lightcurve_plot_has_source_background_and_net_with_errors(web):
    browser = web().open(f"/#{HE}")
    panel = browser.panel(HE)
    panel.locator("input[value=lightcurve]").check()
    panel.locator(f"#{HE}-params-exposures").fill(CRAB_EXPOSURES[1])
    panel.locator(f"#{HE}-params-time_bin").fill("4")
    panel.locator("button.run-direct").click()
    browser.wait_idle(HE)
    plot = panel.locator(".lightcurve-plot")
    assert plot.evaluate("div => div.data.map(t => t.name)") == ["source", "background", "net"]
    assert plot.evaluate("div => div.data.every(t => t.error_y.visible && t.error_y.array.length === t.y.length)")
    rows = plot.evaluate("div => div.data[0].x.length")
    data = web.server.get(f"/api/v1/jobs/{_job_of(browser)}/products/HE_g0_0-17_combined.lc/data").json()
    assert rows == data["rows"] and data["timedel"] == 4.0
    assert "bins of 4 s" in panel.locator(f"#{HE}-step-results h4 .caption").first.inner_text()
    assert "T0 = " in plot.evaluate("div => div.layout.xaxis.title.text")
    # Zoom is Plotly's: a double click resets, a drag zooms; the plot keeps its data.
    assert plot.evaluate("div => div.layout.dragmode") in ("zoom", None)
    browser.shot("08-lightcurve", panel.locator(f"#{HE}-step-results"))
    browser.assert_self_contained()


def test_bad_inputs_are_shown_next_to_their_fields(web):
    browser = web().open(f"/#{HE}")
    panel = browser.panel(HE)
    panel.locator(f"#{HE}-params-exposures").fill(CRAB_EXPOSURES[0])
    panel.locator(f"#{HE}-params-RA").fill("400")
    panel.locator(f"#{HE}-params-detectors").fill("0-99")
    panel.locator(f"#{HE}-params-detectors").press("Enter")     # Enter submits, as the button
    browser.wait_idle(HE)
    error = panel.locator("[data-param=RA] .field-error")
    assert re.search(r"less than 360 deg \(got 400", error.inner_text())
    assert "invalid" in panel.locator("[data-param=RA]").get_attribute("class")
    browser.shot("09-bad-input", panel.locator(f"#{HE}-step-params"))
    # The name resolver's answer too.
    panel.locator(f"#{HE}-params-src_name").fill("Crabb")
    panel.locator(f"#{HE}-step-params button.resolve").click()
    panel.locator("[data-param=src_name] .field-error", has_text="close matches: Crab").wait_for()
    # A problem the plan finds (after the schema) comes back next to its field too.
    panel.locator(f"#{HE}-params-RA").fill("83.63308")
    panel.locator(f"#{HE}-step-params button.run").click()
    browser.wait_idle(HE)
    assert panel.locator("[data-param=RA] .field-error").inner_text() == ""
    assert "18-99" in panel.locator("[data-param=detectors] .field-error").inner_text()
    # A link with a bad parameter opens the form with the problem by the field (HTTP 400).
    reply = browser.page.goto(browser.base + f"/q/{HE}/spectrum?exposures={CRAB_EXPOSURES[0]}&DEC=95")
    assert reply.status == 400
    browser.page.wait_for_selector("body[data-ready=true]")
    assert "at most 90" in panel.locator("[data-param=DEC] .field-error").inner_text()
    assert panel.locator(f"#{HE}-params-DEC").input_value() == "95"
    browser.assert_self_contained(expected_console_errors=4)


def test_time_format_selector_converts_the_displayed_times(web):
    browser = web().open(f"/#{HE}")
    panel = browser.panel(HE)
    t1, t2, fmt = (panel.locator(f"#{HE}-params-{name}") for name in ("T1", "T2", "T_format"))
    t1.fill("2017-08-27T00:00:00")
    t2.fill("2017-08-28T00:00:00")
    shown = {}
    for name in ("hxmt_met", "mjd", "isot"):
        fmt.select_option(name)
        browser.page.wait_for_function(
            f"() => document.querySelector('#{HE}-params-T_format').dataset.current === '{name}'")
        shown[name] = (t1.input_value(), t2.input_value())
    # MET: TT seconds since 2012-01-01T00:00:00 UTC, three leap seconds later in 2017.
    assert shown["hxmt_met"] == ("178416003", "178502403")
    assert shown["mjd"] == ("57992", "57993")
    assert shown["isot"] == ("2017-08-27T00:00:00.000", "2017-08-28T00:00:00.000")
    fmt.select_option("hxmt_met")
    panel.locator("[data-param=T1] .format-hint", has_text="hxmt_met: Insight-HXMT mission time").wait_for()
    fmt.select_option("isot")
    browser.page.wait_for_function(f"() => document.querySelector('#{HE}-params-T_format').dataset.current === 'isot'")
    t1.fill("yesterday")
    fmt.select_option("mjd")
    panel.locator("[data-param=T1] .field-error", has_text="not an ISO 8601 time").wait_for()
    assert fmt.input_value() == "isot"
    browser.assert_self_contained(expected_console_errors=1)


def test_failed_job_shows_the_failing_unit_and_message(web, counters):
    (counters / "fail-U9").write_text("")
    browser = web().open("/#enginetest")
    panel = browser.panel("enginetest")
    panel.locator("#enginetest-params-units").fill("U1, U9")
    panel.locator("#enginetest-step-params button.run").click()
    browser.wait_idle("enginetest")
    assert panel.locator("#job-status").inner_text() == "failed"
    failure = panel.locator(".job-error .failures li")
    assert failure.count() == 1
    assert re.search(r"U9, step engine_instrument\.calibrate: .*U9 unreadable \(injected failure\)",
                     failure.inner_text())
    assert _cells(panel.locator("table.status tr[data-unit=U1] td"))[:3] == ["computed"] * 3
    assert panel.locator("table.status tr[data-unit=U9] td.failed").first.inner_text().startswith("failed")
    # The failure's message in full; the steps that failed only for want of its output, briefly.
    assert "unreadable" in panel.locator("table.status tr[data-unit=U9] td.failed").first.inner_text()
    assert _cells(panel.locator("table.status tr[data-unit=U9] td.failed .message"))[1:] == ["(an input failed)"] * 2
    browser.shot("10-failed-job", panel.locator("#enginetest-step-job"))
    browser.assert_self_contained()


def _column(panel, name: str) -> list[str]:
    """The cells of the search-table column `name`, top to bottom."""
    return panel.locator("table.results").evaluate("""(table, name) => {
        const index = [...table.tHead.rows[0].cells].findIndex((th) => th.dataset.column === name
            || th.textContent.startsWith(name));
        return [...table.tBodies[0].rows].map((row) => row.cells[index].textContent);
    }""", name)


def test_tabs_come_from_the_server_and_the_search_table_sorts_and_pages(web):
    browser = web().open("/")
    instruments = web.server.get("/api/v1/instruments").json()["instruments"]
    assert _cells(browser.page.locator("#tabs [role=tab]")) == [i["title"] for i in instruments]
    assert {"hxmt_he", "hxmt_me", "hxmt_le", "clienttest", "enginetest"} <= {i["name"] for i in instruments}
    # Keyboard: the arrow keys move along the tabs (only the selected one is a Tab stop).
    names = [i["name"] for i in instruments]
    browser.page.locator(f"#tab-{names[0]}").focus()
    browser.page.keyboard.press("ArrowRight")
    assert browser.page.locator(f"#tab-{names[1]}").get_attribute("aria-selected") == "true"
    assert browser.page.evaluate("() => document.activeElement.id") == f"tab-{names[1]}"
    # Each tab switch is a history entry of its own (Back returns to the other tab's address).
    entries = browser.page.evaluate("() => history.length")
    browser.page.locator("#tab-hxmt_me").click()
    assert browser.page.evaluate("() => history.length") == entries + 1
    panel = browser.panel("hxmt_me")
    # Enter in a field of the filter form searches.
    panel.locator("#hxmt_me-search-obs_id").press("Enter")
    panel.locator(".status-line", has_text="3 observations").wait_for()
    expected = sorted(r["target"] for r in web.server.get("/api/v1/instruments/hxmt_me/search").json()["rows"])
    panel.locator("th.sortable[data-column=target]").click()
    panel.locator("th[data-column=target][aria-sort=ascending]").wait_for()
    assert _column(panel, "target") == expected
    panel.locator("th.sortable[data-column=target]").click()
    panel.locator("th[data-column=target][aria-sort=descending]").wait_for()
    assert _column(panel, "target") == expected[::-1]
    # Two rows per page: page 1 has the first two, "Next" the last one.
    panel.locator("input.page-size").fill("2")
    panel.locator("input.page-size").press("Enter")
    panel.locator(".status-line", has_text="rows 1–2").wait_for()
    assert _column(panel, "target") == expected[::-1][:2]
    panel.locator(".pager button.next").click()
    panel.locator(".status-line", has_text="rows 3–3").wait_for()
    assert _column(panel, "target") == expected[::-1][2:]
    assert panel.locator(".pager button.next").is_disabled()
    browser.shot("11-search-table", panel.locator("#hxmt_me-step-search"))
    # Filters: proposal type, date range.
    panel.locator("#hxmt_me-search-proposal_type").select_option("Core")
    panel.locator("#hxmt_me-search-run").click()
    panel.locator(".status-line", has_text="1 observation;").wait_for()
    assert _column(panel, "target") == ["Cyg X-1"]
    panel.locator("#hxmt_me-search-proposal_type").select_option("")
    panel.locator("#hxmt_me-search-start").fill("2018-01-01")
    panel.locator("#hxmt_me-search-run").click()
    panel.locator(".status-line", has_text="1 observation;").wait_for()
    assert _column(panel, "target") == ["Blank field 1"]
    # Picked: a target the name resolver does not know keeps the pointing, with no error.
    panel.locator("table.results input.pick-row").check()
    panel.locator("button.use-picks").click()
    panel.locator("[data-param=src_name] .format-hint", has_text="not resolved").wait_for()
    assert panel.locator("[data-param=src_name] .field-error").inner_text() == ""
    ra = web.server.get("/api/v1/instruments/hxmt_me/search", params={"start": "2018-01-01"}).json()["rows"][0]["ra"]
    assert float(panel.locator("#hxmt_me-params-RA").input_value()) == ra
    browser.assert_self_contained(expected_console_errors=1)
