"""The ODA-compatible endpoints in-process, read the way oda_api 1.3.5 reads them."""
import ast
import base64
import io
import json
import time

import numpy as np
import pytest
from astropy.io import fits
from oda_api.data_products import NumpyDataProduct, NumpyDataUnit

from dispatcher.oda_encoding import data_unit, null_free_base64, numpy_data_product, oda_safe
from tests.dispatcher_support import app, client  # noqa: F401
from tests.engine_instrument import read_calls

BASE = {"instrument": "enginetest", "product_type": "spectrum", "query_type": "Real",
        "off_line": "False", "api": "True", "oda_api_version": "1.3.5",
        "session_id": "QWERTY0123456789"}


def _as_client_reads_it(reply):
    """oda_api's _decode_res_json: strict JSON, then the 'null' -> 'None' repr round trip."""
    body = json.loads(reply.get_data(as_text=True),
                      parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    return ast.literal_eval(str(body).replace("null", "None"))


def _poll(client, params, method="get"):
    call = client.get if method == "get" else client.post
    kwargs = {"query_string": params} if method == "get" else {"data": params}
    reply = call("/run_analysis", **kwargs)
    assert reply.status_code == 200, reply.data
    return _as_client_reads_it(reply)


def _until_complete(client, params, method="get"):
    first = _poll(client, {**params, "query_status": "new"}, method)
    seen = [first["query_status"]]
    job_id = first["job_monitor"]["job_id"]
    reply = first
    for _ in range(600):
        if reply["query_status"] in ("done", "failed"):
            break
        time.sleep(0.05)
        reply = _poll(client, {**params, "query_status": reply["query_status"],
                               "job_id": job_id}, method)
        seen.append(reply["query_status"])
        assert reply["job_monitor"]["job_id"] == job_id
    return reply, seen


def test_status_sequence_and_products(client, counters):
    params = {**BASE, "units": '["U1", "U2"]', "nbins": "16"}
    reply, seen = _until_complete(client, params)
    assert set(seen) <= {"submitted", "progress", "done"} and seen[-1] == "done"
    assert reply["exit_status"] == {"status": 0, "job_status": "done", "message": "",
                                    "error_message": "", "debug_message": "",
                                    "comment": reply["exit_status"]["comment"], "warning": ""}
    assert "reproducible link: http" in reply["exit_status"]["comment"]
    monitor = reply["job_monitor"]
    assert monitor["session_id"] == BASE["session_id"] and monitor["status"] == "done"
    entries = monitor["full_report_dict_list"]
    assert {(e["scwid"], e["node"]) for e in entries if e["scwid"]} == {
        (u, f"engine_instrument.{s}") for u in ("U1", "U2") for s in ("calibrate", "screen", "extract")}
    products = reply["products"]
    assert products["analysis_parameters"] == {
        "instrument": "enginetest", "product_type": "spectrum", "query_type": "Real",
        "units": ["U1", "U2"], "nbins": 16, "threshold": 10, "work_s": 0}
    assert products["input_prod_list"] == ["U1", "U2"]
    compile(products["api_code"], "api_code.py", "exec")
    decoded = [NumpyDataProduct.decode(p) for p in products["numpy_data_product_list"]]
    assert [p.name for p in decoded] == ["spectrum_total", "spectrum_U1", "spectrum_U2"]
    total = decoded[0]
    assert total.meta_data["product"] == "spectrum" and total.meta_data["meta"]["units"] == 2
    assert total.data_unit[0].header["XODAJOB"] == monitor["job_id"]
    counts = total.data_unit[1].data["COUNTS"]
    assert counts.sum() == total.meta_data["meta"]["total"] and len(counts) == 16
    # A POSTed form is the same query, the same job, answered done at once from the cache.
    posted = _poll(client, {**params, "query_status": "new"}, method="post")
    assert posted["query_status"] == "done" and posted["job_monitor"]["job_id"] == monitor["job_id"]
    assert len(read_calls(counters, "calibrate")) == 2


def test_failures_and_bad_requests(client, counters):
    (counters / "fail-U7").write_text("")
    reply, _ = _until_complete(client, {**BASE, "units": "U7"})
    assert reply["query_status"] == "failed" and reply["exit_status"]["status"] == 1
    assert reply["exit_status"]["message"].startswith("failed: unit U7")
    assert "injected failure" in reply["exit_status"]["error_message"]
    assert reply["products"]["analysis_parameters"]["units"] == ["U7"]

    bad = client.get("/run_analysis", query_string={**BASE, "nbins": "0", "bogus": "1",
                                                    "query_status": "new"})
    assert bad.status_code == 400
    body = _as_client_reads_it(bad)
    assert isinstance(body["error"], str) and "bogus" in body["error"] and "nbins" in body["error"]
    assert {e["parameter"] for e in body["errors"]} == {"bogus", "nbins"}
    assert body["exit_status"]["status"] == 1 and body["job_monitor"]["session_id"]
    for params, fragment in (({"instrument": "enginetest"}, "product_type"),
                             ({**BASE, "query_type": "Dummy"}, "Dummy"),
                             ({**BASE, "time_bin_format": "jd"}, "time_bin_format"),
                             ({**BASE, "job_id": "f" * 64, "query_status": "submitted"}, "job_id")):
        reply = client.get("/run_analysis", query_string=params)
        assert reply.status_code == 400 and fragment in reply.get_json()["error"]
    assert client.get("/run_analysis", query_string={**BASE, "instrument": "x"}).status_code == 404
    ok = client.get("/run_analysis", query_string={**BASE, "time_bin_format": "sec"})
    assert ok.status_code == 200


def test_parameter_description_endpoints(client):
    assert {"enginesecret", "enginetest"} <= set(_as_client_reads_it(client.get("/api/instr-list")))
    names = _as_client_reads_it(client.get("/api/par-names", query_string={
        "instrument": "enginetest", "product_type": "spectrum"}))
    assert names == ["units", "threshold", "nbins", "work_s", "token"]
    assert client.get("/api/par-names").status_code == 400
    meta = _as_client_reads_it(client.get("/api/meta-data", query_string={
        "instrument": "enginetest", "product_type": "spectrum"}))
    root = meta[0]
    assert root[0] == {"instrumet": "enginetest"}
    assert root[1] == {"prod_dict": {"spectrum": "spectrum_query"}}
    product_query = root[3]
    assert product_query[:2] == [{"query_name": "spectrum_query"}, {"product_name": "spectrum"}]
    threshold = next(p for p in product_query[2:] if p["name"] == "threshold")
    assert threshold["units"] == "keV" and threshold["value"] == 10.0
    assert threshold["restrictions"] == {"is_optional": False, "min_value": 0, "max_value": 1000}
    assert client.get("/api/meta-data", query_string={"instrument": "zz"}).status_code == 404


# ---- the encoding ---------------------------------------------------------------------------
def _round_trip(hdu):
    encoded = json.loads(json.dumps(oda_safe(data_unit(hdu)), allow_nan=False))
    encoded = ast.literal_eval(str(encoded).replace("null", "None"))
    return NumpyDataUnit.decode(encoded), encoded


def test_plain_tables_and_images_travel_as_text_and_come_back_exact():
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="TIME", format="D", unit="s", array=np.array([0.1, 1e-300, 2.5e10])),
        fits.Column(name="RATE", format="E", array=np.array([1.5, 2.25, -3], dtype="f4")),
        fits.Column(name="CHANNEL", format="J", array=np.array([1, 2, 3])),
        fits.Column(name="NAME", format="8A", array=np.array(["a", "bb", "ccc"])),
        fits.Column(name="VEC", format="3E", array=np.arange(9, dtype="f4").reshape(3, 3))],
        name="RATE")
    decoded, encoded = _round_trip(table)
    assert encoded["data"] is not None and encoded["binarys"] is None
    rebuilt = decoded.to_fits_hdu()
    for name in ("TIME", "RATE", "CHANNEL", "NAME", "VEC"):
        assert np.array_equal(rebuilt.data[name], table.data[name]), name
    image = fits.ImageHDU(np.arange(12, dtype=">i2").reshape(3, 4), name="IMG")
    decoded, encoded = _round_trip(image)
    assert encoded["data"] is not None and np.array_equal(decoded.data, image.data)


def test_nan_variable_length_and_logical_columns_travel_as_pickles():
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="MATRIX", format="PE()", array=np.array(
            [np.arange(3, dtype="f4"), np.arange(5, dtype="f4")], dtype=object)),
        fits.Column(name="FLAG", format="L", array=np.array([True, False])),
        fits.Column(name="X", format="D", array=np.array([np.nan, 1.0]))], name="MATRIX")
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(buffer)
    with fits.open(io.BytesIO(buffer.getvalue())) as hdul:
        decoded, encoded = _round_trip(hdul[1])
    assert encoded["binarys"] is not None and encoded["data"] is None
    rebuilt = decoded.to_fits_hdu()
    assert [list(m) for m in rebuilt.data["MATRIX"]] == [[0, 1, 2], [0, 1, 2, 3, 4]]
    assert list(rebuilt.data["FLAG"]) == [True, False] and np.isnan(rebuilt.data["X"][0])
    spectrum = fits.ImageHDU(np.array([1.0, np.inf, 3.0]))
    decoded, encoded = _round_trip(spectrum)
    assert encoded["binarys"] is not None and np.array_equal(decoded.data, spectrum.data)


def test_no_null_survives_in_base64_or_text():
    payload = bytes([0x9e, 0xe9, 0x65]) * 50          # base64: "nullnullnull..."
    assert "null" in base64.b64encode(payload).decode()
    text = null_free_base64(payload)
    assert "null" not in text and base64.b64decode(text) == payload
    safe = oda_safe({"message": "null hypothesis\null", "nulls": [float("nan"), 1.0]})
    assert "null" not in repr(safe) and safe["NULLs"] == [None, 1.0]
    hdu = fits.PrimaryHDU()
    hdu.header["OBJECT"] = "nullstar"
    product = numpy_data_product(fits.HDUList([hdu]), "x", {"src_name": "null"})
    assert "null" not in repr(oda_safe(product))
    assert NumpyDataProduct.decode(oda_safe(product)).meta_data["src_name"] == "NULL"
