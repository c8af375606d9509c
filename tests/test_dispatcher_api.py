"""The REST API in-process (Flask test client): success and failure paths of every route."""
import io
import json
import tarfile

import numpy as np
import pytest
from astropy.io import fits

from dataserver import Instrument, ProductType, Settings
from dispatcher import create_app
from tests.dispatcher_support import (app, bearer, client, mint, settings_for,  # noqa: F401
                                      spectrum, wait_done)
from tests.engine_instrument import read_calls


def _error(reply, status, code=None):
    assert reply.status_code == status, reply.data
    body = reply.get_json()
    assert set(body) >= {"status", "code", "error"} and body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    if code:
        assert body["code"] == code
    text = reply.get_data(as_text=True)
    assert "Traceback" not in text and "/work" not in text and "File \"" not in text
    return body


def _done(client, payload, headers=None):
    reply = client.post("/api/v1/jobs?wait=20", json=payload, headers=headers or {})
    assert reply.status_code in (200, 202), reply.data
    body = wait_done(client, reply.get_json()["job_id"], headers)
    assert body["status"] == "done", body
    return body


# ---- discovery ------------------------------------------------------------------------------
def test_health_instruments_and_product_schemas(client):
    # Installed plugins (the HXMT payloads) are served too.
    assert {"enginesecret", "enginetest"} <= set(client.get("/health").get_json()["instruments"])
    listing = client.get("/api/v1/instruments").get_json()["instruments"]
    test = next(i for i in listing if i["name"] == "enginetest")
    assert test["products"][0]["name"] == "spectrum" and test["search"] is None
    secret = client.get("/api/v1/instruments/enginesecret").get_json()
    assert secret["search"]["schema"]["properties"]["prefix"]["type"] == "string"
    product = client.get("/api/v1/instruments/enginetest/products/spectrum").get_json()
    schema = product["schema"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["threshold"] == {
        "type": "number", "minimum": 0, "maximum": 1000, "default": 10.0, "unit": "keV",
        "description": "Lowest energy kept"}
    _error(client.get("/api/v1/instruments/nosuch"), 404, "unknown_instrument")
    body = _error(client.get("/api/v1/instruments/enginetest/products/nosuch"), 404,
                  "unknown_product")
    assert "spectrum" in body["error"]


def test_home_page_lists_products_and_parameters(client):
    page = client.get("/").get_data(as_text=True)
    assert "enginetest" in page and "threshold" in page and "keV" in page


# ---- jobs -----------------------------------------------------------------------------------
def test_submit_poll_report_and_reuse(client, counters):
    body = _done(client, spectrum(["U1", "U2", "U3"]))
    assert body["progress"] == {"steps_total": 10, "steps_done": 10, "units_total": 3,
                                "units_done": 3, "computed": 10, "restored": 0, "failed": 0}
    units_steps = {(e["unit"], e["step"]) for e in body["report"] if e["unit"]}
    assert units_steps == {(u, f"engine_instrument.{s}") for u in ("U1", "U2", "U3")
                           for s in ("calibrate", "screen", "extract")}
    assert all(e["state"] == "computed" and e["message"] for e in body["report"])
    assert [o["name"] for o in body["outputs"]] == [
        "spectrum_total.fits", "spectrum_U1.fits", "spectrum_U2.fits", "spectrum_U3.fits"]
    assert body["params"] == {"units": ["U1", "U2", "U3"], "threshold": 10.0, "nbins": 32,
                              "work_s": 0.0}
    assert body["link"].startswith("http://localhost/q/enginetest/spectrum?nbins=32&")
    assert "poll_after_s" not in body and body["error"] is None

    # The same query written differently is the same job, done at once, computing nothing.
    again = client.post("/api/v1/jobs", json=spectrum(["U1", "U2", "U3"], nbins=32.0,
                                                        threshold=10))
    assert again.status_code == 200 and again.get_json()["job_id"] == body["job_id"]
    assert again.headers["Location"].endswith(f"/api/v1/jobs/{body['job_id']}")
    assert sorted(read_calls(counters, "calibrate")) == ["U1", "U2", "U3"]

    # An overlapping query is another job that computes only the new unit (and the merge).
    other = _done(client, spectrum(["U1", "U2", "U3", "U4"]))
    assert other["job_id"] != body["job_id"]
    assert sorted(read_calls(counters, "calibrate")) == ["U1", "U2", "U3", "U4"]
    restored = {e["unit"] for e in other["report"] if e["state"] == "restored" and e["unit"]}
    assert restored == {"U1", "U2", "U3"}

    fetched = client.get(f"/api/v1/jobs/{body['job_id']}").get_json()
    assert fetched["status"] == "done" and fetched["report"] == body["report"]
    short = client.get(f"/api/v1/jobs/{body['job_id']}?report=false").get_json()
    assert "report" not in short and short["progress"] == body["progress"]


def test_long_poll_answers_when_the_job_moves_not_only_when_it_ends(client):
    # Four units of 0.6 s CPU each on two workers: the job runs well over a second, far less
    # than the 20 s asked for, so any answer before "done" came because the job moved.
    job_id = client.post("/api/v1/jobs", json=spectrum(["U1", "U2", "U3", "U4"], work_s=0.6)
                         ).get_json()["job_id"]
    answers = []
    while not answers or answers[-1]["status"] not in ("done", "failed"):
        answers.append(client.get(f"/api/v1/jobs/{job_id}?wait=20").get_json())
        assert len(answers) < 100
    assert answers[-1]["status"] == "done"
    midway = [a["progress"]["steps_done"] for a in answers if a["status"] == "progress"]
    assert any(0 < done < 13 for done in midway), midway
    assert midway == sorted(midway)


def test_bad_queries_list_every_problem_and_create_nothing(app, client):
    service = app.extensions["xoda"]
    before = service.products.stats()["entries"]
    reply = client.post("/api/v1/jobs", json=spectrum(["U1", "u2"], nbins=0, bogus=1,
                                                      threshold="high"))
    body = _error(reply, 400, "invalid_parameters")
    assert {(e["parameter"], e["path"]) for e in body["errors"]} == {
        ("units", "/units/1"), ("nbins", "/nbins"), ("bogus", "/bogus"),
        ("threshold", "/threshold")}
    # What the plan refuses is reported with its parameter too.
    body = _error(client.post("/api/v1/jobs", json=spectrum(["U1", "U1"])), 400)
    assert body["errors"] == [{"parameter": "units", "path": "/units",
                               "reason": "each unit may appear only once"}]
    _error(client.post("/api/v1/jobs", json={"instrument": "enginetest"}), 400)
    _error(client.post("/api/v1/jobs", json={"instrument": "x", "product": "y"}), 404)
    _error(client.post("/api/v1/jobs", json={**spectrum(["U1"]), "extra": 1}), 400)
    _error(client.post("/api/v1/jobs", data="units=U1"), 415, "invalid_body")
    _error(client.post("/api/v1/jobs", data="[1]", content_type="application/json"), 400)
    body = _error(client.post("/api/v1/jobs", content_type="application/json", data=json.dumps(
        spectrum(["U1"], threshold=float("nan")))), 400, "invalid_parameters")
    assert [e["path"] for e in body["errors"]] == ["/threshold"]
    _error(client.post("/api/v1/jobs?wait=-1", json=spectrum(["U1"])), 400)
    _error(client.post("/api/v1/jobs", json=spectrum(["U1" * 10] * 300_000)), 413, "too_large")
    assert client.get("/api/v1/jobs").get_json()["count"] == 0
    assert service.products.stats()["entries"] == before


def test_unknown_routes_jobs_and_methods(client):
    _error(client.get("/nope"), 404, "not_found")
    _error(client.get("/api/v1/jobs/" + "0" * 64), 404, "unknown_job")
    reply = client.delete("/api/v1/jobs")
    _error(reply, 405, "method_not_allowed")
    assert "POST" in reply.headers["Allow"]


def test_products_metadata_downloads_and_archive(client):
    body = _done(client, spectrum(["U1", "U2"], nbins=16))
    job_id = body["job_id"]
    products = client.get(f"/api/v1/jobs/{job_id}/products").get_json()
    total = products["outputs"][0]
    assert total["name"] == "spectrum_total.fits" and total["kind"] == "spectrum"
    assert total["meta"] == {"total": total["meta"]["total"], "units": 2}
    assert {c["step"]: c["invocations"] for c in total["chain"]} == {
        "engine_instrument.calibrate": 2, "engine_instrument.screen": 2,
        "engine_instrument.extract": 2, "engine_instrument.merge": 1}

    download = client.get(total["url"].replace("http://localhost", ""))
    assert download.status_code == 200 and download.mimetype == "application/fits"
    assert int(download.headers["Content-Length"]) == total["size"] == len(download.data)
    with fits.open(io.BytesIO(download.data)) as hdul:
        header = hdul[0].header
        assert header["XODAJOB"] == job_id and header["XODALINK"] == body["link"]
        assert header["XODASTEP"] == "engine_instrument.merge" and header["XODASVER"] == "1"
        assert "xoda step engine_instrument.calibrate v1 (2 invocations)" in header["HISTORY"]
        counts = np.asarray(hdul["SPECTRUM"].data["COUNTS"])
    assert counts.sum() == total["meta"]["total"] and counts.size == 16

    archive = client.get(f"/api/v1/jobs/{job_id}/archive")
    assert archive.status_code == 200 and archive.mimetype == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(archive.data)) as tar:
        names = {n.split("/", 1)[1]: n for n in tar.getnames()}
        assert set(names) == {"job.json", "reproduce.py", "reproduce_oda_api.py", "README.txt",
                              "spectrum_total.fits", "spectrum_U1.fits", "spectrum_U2.fits"}
        assert tar.extractfile(names["spectrum_total.fits"]).read() == download.data
        record = json.loads(tar.extractfile(names["job.json"]).read())
        assert record["job_id"] == job_id and record["link"] == body["link"]

    _error(client.get(f"/api/v1/jobs/{job_id}/products/nosuch.fits"), 404, "unknown_output")


def test_snippets_are_runnable_python_with_the_full_query(client):
    body = _done(client, spectrum(["U1"], threshold=12.5))
    for lang in ("python", "oda_api"):
        reply = client.get(f"/api/v1/jobs/{body['job_id']}/snippet?lang={lang}")
        assert reply.status_code == 200 and reply.mimetype == "text/x-python"
        code = reply.get_data(as_text=True)
        compile(code, "snippet.py", "exec")
        assert code == body["snippets"][lang]
        assert "threshold=12.5" in code and "units=['U1']" in code and "'enginetest'" in code
    assert "from client import Dispatcher" in body["snippets"]["python"]
    assert "product_type='Real'" in body["snippets"]["oda_api"]
    _error(client.get(f"/api/v1/jobs/{body['job_id']}/snippet?lang=perl"), 400)


def test_failed_job_retry_reuses_finished_units(client, counters):
    (counters / "fail-U2").write_text("")
    reply = client.post("/api/v1/jobs?wait=20", json=spectrum(["U1", "U2", "U3"]))
    body = wait_done(client, reply.get_json()["job_id"])
    assert body["status"] == "failed"
    assert "unit U2" in body["error"]["message"] and "injected failure" in body["error"]["message"]
    assert body["error"]["failures"][0]["step"] == "engine_instrument.calibrate"
    assert {e["unit"] for e in body["report"] if e["state"] == "failed"} >= {"U2"}
    _error(client.get(f"/api/v1/jobs/{body['job_id']}/products"), 409, "job_not_done")

    (counters / "fail-U2").unlink()
    retried = client.post(f"/api/v1/jobs/{body['job_id']}/retry")
    assert retried.status_code in (200, 202)
    done = wait_done(client, body["job_id"])
    assert done["status"] == "done" and done["run"] == 2
    assert sorted(read_calls(counters, "calibrate")) == ["U1", "U2", "U2", "U3"]
    assert {e["unit"] for e in done["report"] if e["state"] == "restored" and e["unit"]} == {
        "U1", "U3"}
    _error(client.post(f"/api/v1/jobs/{body['job_id']}/retry"), 409, "job_done")

    # Submitting the same query again is also a retry when a job has failed.
    (counters / "fail-U9").write_text("")
    failed = wait_done(client, client.post("/api/v1/jobs", json=spectrum(["U9"])).get_json()["job_id"])
    assert failed["status"] == "failed"
    (counters / "fail-U9").unlink()
    again = wait_done(client, client.post("/api/v1/jobs", json=spectrum(["U9"])).get_json()["job_id"])
    assert again["status"] == "done" and again["job_id"] == failed["job_id"]


def test_a_product_evicted_from_the_cache_is_restored_by_a_rerun(app, client, counters):
    body = _done(client, spectrum(["U1", "U2"]))
    service = app.extensions["xoda"]
    total_key = service.jobs.get(body["job_id"]).outputs[0]["key"]
    assert service.products.delete(total_key)
    _error(client.get(f"/api/v1/jobs/{body['job_id']}/products"), 409, "job_requeued")
    again = wait_done(client, body["job_id"])
    assert again["status"] == "done"
    assert client.get(f"/api/v1/jobs/{body['job_id']}/products").status_code == 200
    assert len(read_calls(counters, "merge")) == 2 and len(read_calls(counters, "calibrate")) == 2
    # Submitting finds an evicted product too, and runs the job again.
    assert service.products.delete(total_key)
    reply = client.post("/api/v1/jobs", json=spectrum(["U1", "U2"]))
    assert reply.get_json()["status"] in ("submitted", "progress")
    assert wait_done(client, body["job_id"])["status"] == "done"


def test_reproducible_link_reruns_the_query_and_shows_results(client):
    body = _done(client, spectrum(["U1", "U2"], nbins=8))
    path = body["link"].replace("http://localhost", "")
    as_json = client.get(path, headers={"Accept": "application/json"})
    assert as_json.status_code == 200 and as_json.get_json()["job_id"] == body["job_id"]
    page = client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "spectrum_total.fits" in html and body["job_id"] in html
    assert html.count('<td class="computed">computed</td>') == 7
    # Parameters in another order, format or spelling: the same job.
    shuffled = client.get("/q/enginetest/spectrum?units=U1,U2&nbins=8.0",
                          headers={"Accept": "application/json"})
    assert shuffled.get_json()["job_id"] == body["job_id"]
    _error(client.get("/q/enginetest/spectrum?nbins=many"), 400, "invalid_parameters")
    _error(client.get("/q/enginetest/nosuch"), 404)


def test_job_listing(client):
    pi = mint("someone@example.org")
    mine = _done(client, spectrum(["U1"]), headers=bearer(pi))
    other = _done(client, spectrum(["U2"]))
    listed = client.get("/api/v1/jobs").get_json()
    assert {j["job_id"] for j in listed["jobs"]} == {mine["job_id"], other["job_id"]}
    assert listed["jobs"][0]["job_id"] == other["job_id"]          # newest first
    own = client.get("/api/v1/jobs?mine=true", headers=bearer(pi)).get_json()
    assert [j["job_id"] for j in own["jobs"]] == [mine["job_id"]]
    assert client.get("/api/v1/jobs?status=failed").get_json()["count"] == 0
    assert client.get("/api/v1/jobs?limit=1").get_json()["count"] == 1
    _error(client.get("/api/v1/jobs?mine=true"), 401, "token_required")
    _error(client.get("/api/v1/jobs?status=lost"), 400)


def test_observation_search(client):
    found = client.get("/api/v1/instruments/enginesecret/search?prefix=P").get_json()
    assert found["rows"] == [{"unit": "P1", "public_date": "2001-01-01"}]
    assert found["criteria"]["T1"] == "2000-01-01T00:00:00.000"
    posted = client.post("/api/v1/instruments/enginesecret/search",
                         json={"T1": 51544.0, "T_format": "mjd"}).get_json()
    assert posted["criteria"]["T1"] == "2000-01-01T00:00:00.000" and posted["total"] == 1
    body = _error(client.get("/api/v1/instruments/enginesecret/search?bogus=1&T1=x"), 400)
    assert {e["parameter"] for e in body["errors"]} == {"bogus", "T1"}
    _error(client.get("/api/v1/instruments/enginetest/search"), 404, "no_search")


class _BrokenInstrument(Instrument):
    name = "broken"
    title = "Broken plugin"

    def products(self):
        def plan(params):
            raise RuntimeError("secret path /srv/xoda/config.yaml")
        return {"lc": ProductType("lc", "LC", "", {}, plan)}


def test_internal_errors_are_500_with_a_reference_and_no_details(tmp_path, caplog):
    broken = create_app(settings_for(tmp_path / "b"), extra_instruments=[_BrokenInstrument])
    try:
        reply = broken.test_client().post("/api/v1/jobs", json={"instrument": "broken",
                                                                 "product": "lc"})
        body = _error(reply, 500, "internal_error")
        assert "secret path" not in reply.get_data(as_text=True)
        assert body["reference"] in body["error"]
        assert body["reference"] in caplog.text and "secret path" in caplog.text
    finally:
        broken.extensions["xoda"].close()


def test_extra_instruments_setting_loads_plugins(tmp_path):
    settings = Settings({"data_dir": str(tmp_path / "e"),
                         "extra_instruments": "tests.engine_instrument:EngineTestInstrument"})
    extra = create_app(settings)
    try:
        assert "enginetest" in extra.test_client().get("/health").get_json()["instruments"]
    finally:
        extra.extensions["xoda"].close()
    with pytest.raises(ValueError, match="module:Class"):
        create_app(Settings({"data_dir": str(tmp_path / "f"), "extra_instruments": "nocolon"}))


def test_name_resolution_route(client):
    crab = client.get("/api/v1/resolve?name=crab").get_json()
    assert crab["name"] == "Crab" and abs(crab["ra"] - 83.633) < 0.01
    assert abs(crab["dec"] - 22.014) < 0.01 and isinstance(crab["aliases"], list)
    body = _error(client.get("/api/v1/resolve?name=Crbb"), 404, "unknown_name")
    assert "Crab" in body["error"] and "Crab" in body["suggestions"]
    _error(client.get("/api/v1/resolve"), 400, "invalid_parameters")
