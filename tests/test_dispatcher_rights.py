"""Data rights: proprietary units are denied on every route to anyone but their PI or a role
that grants them, with 403 and no hint of what the data are."""
import pytest

from tests.dispatcher_support import (PI, RELEASE, TEAM_ROLE, app, bearer, client,  # noqa: F401
                                      mint, wait_done)

SECRET_QUERY = {"instrument": "enginesecret", "product": "spectrum",
                "params": {"units": ["S1", "S2"], "nbins": 8}}


def _denied(reply):
    assert reply.status_code == 403, reply.data
    body = reply.get_json()
    assert body["code"] == "forbidden" and "access denied" in body["error"]
    text = reply.get_data(as_text=True)
    for hint in ("S1", "S2", PI, RELEASE, TEAM_ROLE, "unit"):
        assert hint not in text, f"403 reveals {hint!r}"


@pytest.fixture
def secret_job(client):
    """The proprietary job, run once by its PI (so its products are in the cache)."""
    reply = client.post("/api/v1/jobs", json=SECRET_QUERY, headers=bearer(mint(PI)))
    assert reply.status_code in (200, 202)
    body = wait_done(client, reply.get_json()["job_id"], bearer(mint(PI)))
    assert body["status"] == "done"
    return body


@pytest.mark.parametrize("who", ["anonymous", "stranger", "wrong-role"])
def test_every_route_denies_proprietary_data(client, secret_job, who):
    headers = {"anonymous": {}, "stranger": bearer(mint("stranger@example.org")),
               "wrong-role": bearer(mint("x@example.org", ["other-team"]))}[who]
    job_id = secret_job["job_id"]
    link = secret_job["link"].replace("http://localhost", "")
    # Submitting the same query: a cache hit, and still denied.
    _denied(client.post("/api/v1/jobs", json=SECRET_QUERY, headers=headers))
    for path in (f"/api/v1/jobs/{job_id}", f"/api/v1/jobs/{job_id}/products",
                 f"/api/v1/jobs/{job_id}/products/spectrum_total.fits",
                 f"/api/v1/jobs/{job_id}/archive", f"/api/v1/jobs/{job_id}/snippet", link):
        _denied(client.get(path, headers=headers))
    _denied(client.post(f"/api/v1/jobs/{job_id}/retry", headers=headers))
    oda = client.get("/run_analysis", headers=headers, query_string={
        "instrument": "enginesecret", "product_type": "spectrum", "units": '["S1", "S2"]',
        "nbins": "8", "query_status": "new", "session_id": "S" * 16})
    _denied(oda)
    assert oda.get_json()["exit_status"]["message"].startswith("access denied")
    listed = client.get("/api/v1/jobs", headers=headers).get_json()
    assert job_id not in {j["job_id"] for j in listed["jobs"]}
    found = client.get("/api/v1/instruments/enginesecret/search", headers=headers).get_json()
    assert [r["unit"] for r in found["rows"]] == ["P1"]


@pytest.mark.parametrize("token", [mint(PI), mint("member@example.org", [TEAM_ROLE])],
                         ids=["owner", "granted-role"])
def test_owner_and_granted_roles_see_everything(client, secret_job, token):
    headers = bearer(token)
    job_id = secret_job["job_id"]
    assert client.post("/api/v1/jobs", json=SECRET_QUERY, headers=headers).status_code == 200
    for path in (f"/api/v1/jobs/{job_id}", f"/api/v1/jobs/{job_id}/products",
                 f"/api/v1/jobs/{job_id}/products/spectrum_total.fits",
                 f"/api/v1/jobs/{job_id}/archive", f"/api/v1/jobs/{job_id}/snippet"):
        assert client.get(path, headers=headers).status_code == 200, path
    link = secret_job["link"].replace("http://localhost", "")
    assert client.get(link, headers=headers).status_code == 200
    # The ODA route takes the token as a parameter, as oda_api sends it.
    oda = client.get("/run_analysis", query_string={
        "instrument": "enginesecret", "product_type": "spectrum", "units": '["S1", "S2"]',
        "nbins": "8", "query_status": "new", "session_id": "S" * 16, "token": token})
    assert oda.status_code == 200 and oda.get_json()["query_status"] == "done"
    listed = client.get("/api/v1/jobs", headers=headers).get_json()
    assert job_id in {j["job_id"] for j in listed["jobs"]}
    found = client.get("/api/v1/instruments/enginesecret/search", headers=headers).get_json()
    assert [r["unit"] for r in found["rows"]] == ["S1", "S2", "P1"]


def test_a_query_mixing_public_and_proprietary_units_is_denied_without_detail(client):
    # The public instrument's units are unaffected by the proprietary one.
    assert client.post("/api/v1/jobs", json={"instrument": "enginetest", "product": "spectrum",
                                             "params": {"units": ["S1"]}}).status_code in (200, 202)
    _denied(client.post("/api/v1/jobs", json={"instrument": "enginesecret", "product": "spectrum",
                                              "params": {"units": ["S9"]}}))
