"""The web form's server side, without a browser: the page and its offline assets, the plot
data of each kind of output (checked against the FITS files), the time-format conversion of
the form, the reproducible link as a page, and the name-only observation search."""
from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from dataserver import Settings, ogip
from dispatcher import plotdata
from plugins.hxmt.catalog import ObservationIndex, normalise_criteria
from tests.client_instrument import ClientTestInstrument
from tests.dispatcher_support import (INSTRUMENTS, PI, RELEASE, TEAM_ROLE, mint, settings_for,
                                      wait_done)
from tests.hxmt_support import small_archive  # noqa: F401

STATIC = Path(__file__).resolve().parents[1] / "dispatcher" / "static" / "web"
TEMPLATES = STATIC.parents[1] / "templates"
WINDOW = {"T1": "2018-01-01T00:00:00", "T2": "2018-01-01T00:30:00"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from dispatcher import create_app

    application = create_app(settings_for(tmp_path_factory.mktemp("web-api") / "xoda"),
                             extra_instruments=(*INSTRUMENTS, ClientTestInstrument))
    yield application
    application.extensions["xoda"].close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def _strict_json(reply) -> dict:
    """The body parsed refusing NaN and Infinity (JSON has neither)."""
    def refuse(name):
        raise ValueError(f"{name} in the JSON")
    return json.loads(reply.get_data(as_text=True), parse_constant=refuse)


def _done(client, product: str, **params) -> dict:
    window = WINDOW if product != "image" else {}
    reply = client.post("/api/v1/jobs?wait=25", json={"instrument": "clienttest", "product": product,
                                                      "params": {**window, **params}})
    assert reply.status_code in (200, 202), reply.get_json()
    # The long poll is a head start, not a promise: a loaded machine may take longer.
    body = wait_done(client, reply.get_json()["job_id"])
    assert body["status"] == "done", body
    return body


def _data(client, job: dict, name: str, **query) -> dict:
    reply = client.get(f"/api/v1/jobs/{job['job_id']}/products/{name}/data", query_string=query)
    assert reply.status_code == 200, reply.get_json()
    return _strict_json(reply)


def _fits(client, job: dict, name: str) -> fits.HDUList:
    reply = client.get(f"/api/v1/jobs/{job['job_id']}/products/{name}")
    return fits.HDUList.fromstring(reply.get_data())


# ---- page and assets ------------------------------------------------------------------------
def test_page_boots_from_local_assets_only(client):
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    boot = json.loads(re.search(r'<script type="application/json" id="xoda-boot">(.*?)</script>', page, re.S)[1])
    assert boot["api"] == "/api/v1" and boot["link"] is None
    scripts = re.findall(r'<script[^>]* src="([^"]+)"', page) + re.findall(r'<link[^>]* href="([^"]+)"', page)
    assert "/web/plotly.min.js" in scripts and "/static/web/app.js" in scripts
    for url in scripts:
        assert url.startswith(("/", "data:")), url
        if url.startswith("/"):
            assert client.get(url).status_code == 200, url
    # Without JavaScript the page still lists the instruments and their parameters.
    assert "<noscript>" in page and "clienttest" in page and "time_bin" in page


def test_plotly_is_served_from_the_installed_package(client):
    reply = client.get("/web/plotly.min.js")
    bundle = resources.files("plotly") / "package_data" / "plotly.min.js"
    assert reply.status_code == 200 and reply.mimetype == "text/javascript"
    assert reply.get_data() == bundle.read_bytes()
    assert "max-age=86400" in reply.headers["Cache-Control"]


def test_every_script_module_is_served_and_names_no_outside_address(client):
    seen, queue = set(), ["app.js"]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        reply = client.get(f"/static/web/{name}")
        assert reply.status_code == 200 and "javascript" in reply.mimetype, name
        text = reply.get_data(as_text=True)
        queue += re.findall(r'from "\./([\w.]+)"', text)
    assert seen == {p.name for p in STATIC.glob("*.js")}
    for path in [*STATIC.iterdir(), *TEMPLATES.iterdir()]:
        assert not re.search(r"https?://", path.read_text()), f"{path.name} names an outside address"


# ---- plot data ------------------------------------------------------------------------------
def test_light_curve_data_are_the_file_columns_and_rebin_by_exposure(client):
    job = _done(client, "lightcurve", time_bin=10.0, chunk_s=600.0)
    data = _data(client, job, "lc_all.lc")
    with _fits(client, job, "lc_all.lc") as hdul:
        table = hdul["RATE"].data
        time, rate, error = (np.asarray(table[c], float) for c in ("TIME", "RATE", "ERROR"))
    assert data["kind"] == "lightcurve" and data["rows"] == data["rows_total"] == time.size == 180
    assert np.allclose(data["columns"]["time"], time) and np.allclose(data["columns"]["rate"], rate)
    assert np.allclose(data["columns"]["error"], error) and data["binning"] == 1
    reference = data["time_reference"]
    assert reference["t0"] == pytest.approx(time[0] - 5.0) and reference["timesys"] == "TT"
    assert reference["t0_iso"].startswith("2018-01-01T00:00:00")
    # 180 rows, at most 50 points: groups of 4 rows, exposure-weighted (all bins full here).
    small = _data(client, job, "lc_all.lc", max_points=50)
    assert small["binning"] == 4 and small["rows"] == 45 and small["timedel"] == 40.0
    assert np.allclose(small["columns"]["rate"], rate.reshape(45, 4).mean(axis=1))
    assert np.allclose(small["columns"]["error"], np.sqrt((error.reshape(45, 4) ** 2).sum(axis=1)) / 4)
    bad = client.get(f"/api/v1/jobs/{job['job_id']}/products/lc_all.lc/data?max_points=3")
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["parameter"] == "max_points"


def test_light_curve_rows_with_non_finite_values_are_dropped():
    time = np.arange(10.0) + 100.5
    rate = np.linspace(1, 10, 10)
    rate[3] = np.nan
    error = np.ones(10)
    error[7] = np.inf
    hdul = ogip.lightcurve_hdulist(ogip.LightCurve(time, rate, error, 1.0, fracexp=np.full(10, 0.5)))
    table = plotdata.lightcurve_table(hdul, max_points=100)
    assert table["dropped"] == 2 and table["rows_total"] == 10
    assert table["columns"]["time"] == [t for i, t in enumerate(time) if i not in (3, 7)]
    assert all(math.isfinite(v) for column in table["columns"].values() for v in column)
    # Rebinned in pairs: half-exposed bins weigh the same, so plain means.
    pairs = plotdata.lightcurve_table(hdul, max_points=4)
    assert pairs["binning"] == 2 and pairs["columns"]["rate"][0] == pytest.approx((1 + 2) / 2)


def test_spectrum_data_are_rates_per_kev_on_the_response_energies(client):
    job = _done(client, "spectrum")
    data = _data(client, job, "spectrum.pha")
    with _fits(client, job, "spectrum.pha") as hdul:
        spectrum = ogip.read_spectrum(hdul)
    with _fits(client, job, "response.rsp") as hdul:
        bounds = hdul["EBOUNDS"].data
        e_min, e_max = np.asarray(bounds["E_MIN"], float), np.asarray(bounds["E_MAX"], float)
    assert data["units"]["rate"] == "count/s/keV" and data["rows"] == spectrum.channel.size
    assert np.allclose(data["columns"]["e_min"], e_min) and np.allclose(data["columns"]["e_max"], e_max)
    expected = spectrum.counts / spectrum.exposure / (e_max - e_min)
    assert np.allclose(data["columns"]["rate"], expected)
    assert data["exposure_s"] == pytest.approx(1800.0)


def test_spectrum_data_rebin_conserving_the_rate_and_scale_the_named_background(client):
    job = _done(client, "spectrum")
    full = _data(client, job, "spectrum.pha")
    small = _data(client, job, "spectrum.pha", max_points=100)
    assert small["binning"] == math.ceil(full["rows"] / 100) and small["rows"] <= 100

    def total(table):
        c = table["columns"]
        return sum(r * (hi - lo) for r, lo, hi in zip(c["rate"], c["e_min"], c["e_max"]))
    assert total(small) == pytest.approx(total(full), rel=1e-9)
    # A background named by BACKFILE is scaled by BACKSCAL (and AREASCAL) of both files.
    channel = np.arange(8)
    source = ogip.spectrum_hdulist(ogip.Spectrum(channel, counts=np.full(8, 100.0), exposure=10.0,
                                                 backscal=1.0, backfile="bkg.pha"))
    background = ogip.spectrum_hdulist(ogip.Spectrum(channel, counts=np.full(8, 40.0), exposure=20.0,
                                                     backscal=4.0, kind="BKG"))
    table = plotdata.spectrum_table(source, {"bkg.pha": background}.get, lambda: None, 100)
    assert table["background"] == "bkg.pha" and table["units"]["rate"] == "count/s/channel"
    assert table["columns"]["rate"] == [10.0] * 8
    assert table["columns"]["background"] == pytest.approx([40.0 / 20.0 / 4.0] * 8)


def test_fit_data_are_its_plot_table(client):
    job = _done(client, "spectral_fit", model="powerlaw")
    data = _data(client, job, "fit.fits")
    with _fits(client, job, "fit.fits") as hdul:
        plot = hdul["PLOT"].data
        for name, ours in plotdata.FIT_COLUMNS.items():
            assert np.allclose(np.array(data["columns"][ours], float), plot[name], equal_nan=True), name
    assert set(data["columns"]) == {"e_min", "e_max", "data", "data_error", "model", "background",
                                    "residual", "ratio"}
    assert data["units"]["data"] == "count/s/keV" and data["rows"] == len(plot)


def test_gti_data_and_outputs_without_a_table(client):
    job = _done(client, "lightcurve", time_bin=10.0, chunk_s=600.0)
    gti = _data(client, job, "gti.fits")
    assert len(gti["columns"]["start"]) == 3 and gti["good_time"] == pytest.approx(1800.0)
    image = _done(client, "image")
    reply = client.get(f"/api/v1/jobs/{image['job_id']}/products/image.fits/data")
    assert reply.status_code == 404 and reply.get_json()["code"] == "no_table_view"
    reply = client.get(f"/api/v1/jobs/{image['job_id']}/products/nosuch.fits/data")
    assert reply.status_code == 404 and "image.fits" in reply.get_json()["error"]


def test_data_of_an_unfinished_job_are_refused(client, counters):
    reply = client.post("/api/v1/jobs", json={"instrument": "enginetest", "product": "spectrum",
                                              "params": {"units": ["W1"], "work_s": 3.0}})
    job = reply.get_json()
    assert job["status"] in ("submitted", "progress")
    reply = client.get(f"/api/v1/jobs/{job['job_id']}/products/spectrum_total.fits/data")
    assert reply.status_code == 409 and reply.get_json()["code"] == "job_not_done"


# ---- time conversion ------------------------------------------------------------------------
def _times(client, **query):
    return client.get("/api/v1/instruments/clienttest/products/lightcurve/times", query_string=query)


def test_times_convert_between_every_declared_format_and_back(client):
    iso = {"T1": "2017-08-27T01:02:03.456", "T2": "2017-08-28T00:00:00.000"}
    met = _times(client, T_format="isot", to="test_met", **iso).get_json()["values"]
    assert met["T2"] == 178502403.0            # TT seconds since 2012-01-01 UTC: 3 leap seconds
    assert met["T1"] == pytest.approx(178416003.0 + 3723.456, abs=1e-6)
    mjd = _times(client, T_format="test_met", to="mjd", **met).get_json()
    assert mjd["values"]["T2"] == 57993.0 and mjd["iso"] == iso
    back = _times(client, T_format="mjd", to="isot", **mjd["values"]).get_json()["values"]
    assert back == iso
    # What the form sends after converting is the same query: the same job.
    jobs = {_done(client, "lightcurve", T_format=fmt, **values)["job_id"]
            for fmt, values in (("isot", iso), ("test_met", met), ("mjd", mjd["values"]))}
    assert len(jobs) == 1


def test_time_conversion_names_the_bad_parameter(client):
    reply = _times(client, T_format="mjd", to="test_met", T1="yesterday", T2="57993")
    assert reply.status_code == 400
    assert [e["parameter"] for e in reply.get_json()["errors"]] == ["T1"]
    reply = _times(client, T_format="isot", to="jd", T1="2017-08-27T00:00:00")
    assert [e["parameter"] for e in reply.get_json()["errors"]] == ["to"]
    reply = _times(client, to="mjd", E1_keV="20")
    assert [e["parameter"] for e in reply.get_json()["errors"]] == ["E1_keV"]
    reply = client.get("/api/v1/instruments/clienttest/products/image/times?to=mjd")
    assert reply.status_code == 404


# ---- reproducible links as pages ------------------------------------------------------------
def test_link_page_boots_the_form_on_the_query_and_its_job(client):
    job = _done(client, "spectrum", index=2.5)
    path = job["link"].split("localhost", 1)[1]
    reply = client.get(path, headers={"Accept": "text/html"})
    assert reply.status_code == 200
    page = reply.get_data(as_text=True)
    boot = json.loads(re.search(r'id="xoda-boot">(.*?)</script>', page, re.S)[1])
    assert boot["link"] == {"instrument": "clienttest", "product": "spectrum", "params": job["params"],
                            "job_id": job["job_id"], "errors": None}
    assert "spectrum.pha" in page                      # the no-script summary lists the files
    bad = client.get("/q/clienttest/spectrum?index=9&RA=-1", headers={"Accept": "text/html"})
    assert bad.status_code == 400 and bad.mimetype == "text/html"
    boot = json.loads(re.search(r'id="xoda-boot">(.*?)</script>', bad.get_data(as_text=True), re.S)[1])
    assert boot["link"]["params"] == {"index": "9", "RA": "-1"} and boot["link"]["job_id"] is None
    assert sorted(e["parameter"] for e in boot["link"]["errors"]["errors"]) == ["RA", "index"]


def test_link_to_proprietary_data_opens_the_form_saying_only_that_they_are_not_available(client):
    path = "/q/enginesecret/spectrum?units=S1&units=S2&nbins=8"
    reply = client.get(path, headers={"Accept": "text/html"})
    assert reply.status_code == 403 and reply.mimetype == "text/html"
    page = reply.get_data(as_text=True)
    boot = json.loads(re.search(r'id="xoda-boot">(.*?)</script>', page, re.S)[1])
    link = boot["link"]
    assert link["job_id"] is None and link["errors"]["code"] == "forbidden"
    assert link["params"]["units"] == ["S1", "S2"] and link["params"]["nbins"] == 8
    assert "Not available to you" in page
    for hint in (PI, RELEASE, TEAM_ROLE, "spectrum_total"):      # nothing of the data
        assert hint not in page, hint
    # Programs get the usual JSON 403; the owner's token opens it.
    assert client.get(path, headers={"Accept": "application/json"}).status_code == 403
    owner = client.get(path, headers={"Accept": "text/html", "Authorization": f"Bearer {mint(PI)}"})
    assert owner.status_code in (200, 202)
    assert json.loads(re.search(r'id="xoda-boot">(.*?)</script>', owner.get_data(as_text=True), re.S)[1])[
        "link"]["job_id"] is not None


# ---- observation search by name only (the search schema's default radius) -------------------
def test_search_by_name_alone_despite_the_default_radius(small_archive, tmp_path):  # noqa: F811
    from dispatcher import create_app

    assert normalise_criteria({"name": "Crab", "radius": 1.0})["name"] == "Crab"
    index = tmp_path / "index.sqlite"
    ObservationIndex(index).rescan(small_archive)
    settings = Settings({"data_dir": str(tmp_path / "xoda"), "archive_dir": str(small_archive),
                         "hxmt_index": str(index), "workers": 1})
    application = create_app(settings)
    try:
        reply = application.test_client().get("/api/v1/instruments/hxmt_me/search?name=Crab")
        assert reply.status_code == 200, reply.get_json()
        assert [row["target"] for row in reply.get_json()["rows"]] == ["Crab"]
        cone = application.test_client().get("/api/v1/instruments/hxmt_me/search?ra=83.6&dec=22&radius=0.5")
        assert [row["target"] for row in cone.get_json()["rows"]] == ["Crab"]
    finally:
        application.extensions["xoda"].close()
