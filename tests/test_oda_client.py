"""The real oda_api 1.3.5 client, unchanged, against a live xoda server (gunicorn)."""
import io
import time

import numpy as np
import pytest
import requests
from astropy.io import fits
from oda_api.api import (DispatcherAPI, RemoteException, RequestNotUnderstood, Unauthorized,
                         UnexpectedDispatcherStatusCode)

from tests.dispatcher_support import PI, LiveServer, mint


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("oda-live")
    live = LiveServer(root / "xoda", root / "server.log", workers=2).start()
    yield live
    live.stop()


@pytest.fixture
def disp(server):
    api = DispatcherAPI(url=server.url)
    api.n_max_tries = 1          # a retried call would hide a wrong status code
    return api


@pytest.fixture
def analysis_requests(monkeypatch):
    """The URLs of the /run_analysis requests oda_api sends: counted, not timed, to show that
    an answer came at once (the client sleeps a second before each further poll)."""
    sent = []
    for method in ("get", "post"):
        def counted(url, *args, _send=getattr(requests, method), **kwargs):
            if url.endswith("/run_analysis"):
                sent.append(url)
            return _send(url, *args, **kwargs)
        monkeypatch.setattr(requests, method, counted)
    return sent


def test_get_product_end_to_end(server, disp, analysis_requests):
    collection = disp.get_product(instrument="enginetest", product="spectrum",
                                  units=["U1", "U2", "U3"], nbins=16, silent=True)
    assert collection._n_list == ["spectrum_total_0_spectrum", "spectrum_U1_1_spectrum",
                                  "spectrum_U2_2_spectrum", "spectrum_U3_3_spectrum"]
    total = collection._p_list[0]
    counts = total.data_unit[1].data["COUNTS"]
    assert len(counts) == 16 and counts.sum() == total.meta_data["meta"]["total"]
    # The same bytes as the REST download of the same job, provenance included.
    job_id = collection.request_job_id
    served = server.get(f"/api/v1/jobs/{job_id}/products/spectrum_total.fits")
    with fits.open(io.BytesIO(served.content)) as hdul:
        assert np.array_equal(hdul["SPECTRUM"].data["COUNTS"], counts)
        assert hdul[0].header["XODALINK"] == total.meta_data["link"]
    written = total.to_fits_hdu_list()
    assert written[1].name == "SPECTRUM" and written[0].header["XODAJOB"] == job_id
    # A second identical request is answered done at once from the cache: no further poll.
    analysis_requests.clear()
    again = disp.get_product(instrument="enginetest", product="spectrum",
                             units=["U1", "U2", "U3"], nbins=16, silent=True)
    assert len(analysis_requests) == 1 and again.request_job_id == job_id


def test_post_requests_and_asynchronous_polling(server):
    disp = DispatcherAPI(url=server.url, wait=False)
    disp.preferred_request_method = "POST"
    disp.get_product(instrument="enginetest", product="spectrum", units=["U4", "U5"],
                     work_s=0.3, silent=True)
    statuses = [disp.query_status]
    while not disp.is_complete:
        time.sleep(0.2)
        disp.poll()
        statuses.append(disp.query_status)
    assert statuses[0] in ("submitted", "progress") and statuses[-1] == "done"
    assert set(statuses) <= {"submitted", "progress", "done"}
    assert len(disp.response_json["products"]["numpy_data_product_list"]) == 3


def test_errors_reach_the_user_as_the_clients_exceptions(server, disp, tmp_path,
                                                          analysis_requests):
    # The client's own pre-check (/api/par-names) warns about the unknown name first.
    with pytest.raises(RequestNotUnderstood) as caught, \
            pytest.warns(UserWarning, match="bogus .*is not among valid ones"):
        disp.get_product(instrument="enginetest", product="spectrum", units=["U1"], nbins=0,
                         bogus=3, silent=True)
    assert "nbins" in repr(caught.value) and "bogus" in repr(caught.value)
    with pytest.raises(Unauthorized) as denied:
        disp.get_product(instrument="enginesecret", product="spectrum", units=["S1"], silent=True)
    assert "access denied" in str(denied.value)
    analysis_requests.clear()
    with pytest.raises(UnexpectedDispatcherStatusCode) as expired:
        disp.get_product(instrument="enginesecret", product="spectrum", units=["S1"],
                         token=mint(PI, now=time.time() - 7200), silent=True)
    assert "401" in str(expired.value) and "expired" in str(expired.value)
    assert len(analysis_requests) == 1               # refused at once, never retried


def test_proprietary_data_with_the_owners_token(disp):
    collection = disp.get_product(instrument="enginesecret", product="spectrum",
                                  units=["S1", "S2"], token=mint(PI), silent=True)
    assert len(collection._p_list) == 3


def test_failed_job_raises_remote_exception_with_the_unit(disp, counters):
    (counters / "fail-U8").write_text("")
    with pytest.raises(RemoteException) as caught:
        disp.get_product(instrument="enginetest", product="spectrum", units=["U8"], silent=True)
    assert "unit U8" in caught.value.message
    assert "injected failure" in caught.value.debug_message


def test_descriptions(disp):
    assert {"enginesecret", "enginetest"} <= set(disp.get_instruments_list())
    description = disp.get_product_description("enginetest", "spectrum")
    assert description[0][0] == {"instrumet": "enginetest"}
