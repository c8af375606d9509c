"""The client's local check of parameters against a product's schema, without a server:
astropy Quantities and Times converted to the schema's units and time formats, and every
problem reported at once in the server's words."""
from __future__ import annotations

import datetime as dt

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.time import Time

from client.errors import (AuthError, NotFound, ServerError, ValidationError, XodaError,
                           error_from_answer)
from client.jobs import Backoff, PollPolicy
from client.params import prepare
from client.transport import retry_after
from dataserver import params as P
from dataserver.params import normalise
from tests.client_instrument import TEST_MET

SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["units"],
    "properties": {
        "RA": P.ra(default=83.633), "DEC": P.dec(default=22.0145),
        **P.time_range(default=("2018-01-01T00:00:00", "2018-01-02T00:00:00")),
        "T_format": P.time_format(TEST_MET),
        **P.energy_range(minimum=20, maximum=250, default=(28, 250)),
        "time_bin": P.time_bin(default=1.0, minimum=1e-3, maximum=86400),
        "units": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z0-9]+$"},
                  "minItems": 1},
        "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
    },
}


def test_quantities_are_converted_to_the_schema_units():
    sent = prepare(SCHEMA, {"E1_keV": 30 * u.keV, "E2_keV": 0.1 * u.MeV, "RA": Angle("5h34m32s"),
                            "DEC": 22 * u.deg, "time_bin": 250 * u.ms, "units": ["A"]})
    assert sent["E1_keV"] == pytest.approx(30.0) and sent["E2_keV"] == pytest.approx(100.0)
    assert sent["RA"] == pytest.approx(83.6333, abs=1e-3) and sent["DEC"] == 22.0
    assert sent["time_bin"] == pytest.approx(0.25)
    # Energies also from wavelengths (spectral equivalence); NAME for NAME_<unit>.
    from_wavelength = prepare(SCHEMA, {"E1": 0.5 * u.AA, "units": ["A"]})["E1_keV"]
    assert from_wavelength == pytest.approx(24.797, rel=1e-4)
    assert prepare(SCHEMA, {"E2": 60, "units": ["A"]}) == {"E2_keV": 60, "units": ["A"]}


def test_times_are_written_in_the_format_of_the_query_and_read_back_by_the_server():
    moment = Time("2018-03-04T05:06:07.125", scale="utc")
    later = Time("2018-03-05T00:00:00", scale="utc")
    for fmt in ("isot", "mjd", "test_met"):
        sent = prepare(SCHEMA, {"T1": moment, "T2": later, "T_format": fmt, "units": ["A"]})
        assert isinstance(sent["T1"], str if fmt == "isot" else float)
        # The server's normaliser reads the value back to the same instant.
        assert normalise(SCHEMA, sent)["T1"] == "2018-03-04T05:06:07.125"
    met = prepare(SCHEMA, {"T1": moment, "T2": later, "T_format": "test_met", "units": ["A"]})["T1"]
    assert met == pytest.approx((moment.tt - Time(55927, 7.6601852e-4, format="mjd", scale="tt")).sec)
    aware = dt.datetime(2018, 3, 4, 7, 6, 7, 125000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert prepare(SCHEMA, {"T1": aware, "T2": later, "units": ["A"]})["T1"] == "2018-03-04T05:06:07.125"


def test_every_problem_is_reported_at_once_with_the_server_wording():
    with pytest.raises(ValidationError) as caught:
        prepare(SCHEMA, {"E1_keV": 300.0, "RA": 5 * u.s, "bogus": 1, "mode": "medium",
                         "T1": "yesterday", "units": ["ok"]})
    error = caught.value
    assert error.local and error.status is None
    reasons = {p.parameter: p.reason for p in error.problems}
    assert set(reasons) == {"E1_keV", "RA", "bogus", "mode", "T1", "units"}
    assert reasons["E1_keV"] == "must be at most 250 keV (got 300.0)"
    assert "cannot be converted to deg" in reasons["RA"]
    assert reasons["bogus"].startswith("unknown parameter (this product accepts: RA, DEC")
    assert reasons["mode"] == "must be one of fast, slow (got 'medium')"
    assert "not an ISO 8601 time" in reasons["T1"]
    assert [p.path for p in error.problems if p.parameter == "units"] == ["/units/0"]
    assert str(error).startswith("6 invalid parameters: ")
    # The server finds the same problems in the same words.
    server_reasons = {}
    try:
        normalise(SCHEMA, {"E1_keV": 300.0, "mode": "medium", "units": ["ok"]})
    except Exception as exc:  # noqa: BLE001 - InvalidParameters
        server_reasons = {p.parameter: p.reason for p in exc.problems}
    assert server_reasons == {k: reasons[k] for k in ("E1_keV", "mode", "units")}


def test_orderings_include_defaults_and_compare_instants_across_formats():
    with pytest.raises(ValidationError) as caught:
        prepare(SCHEMA, {"E1_keV": 250.0, "units": ["A"]})            # E2 default 250
    assert caught.value.problems[0].reason == \
        "must be greater than E1_keV (got E2_keV=250, E1_keV=250.0)"
    with pytest.raises(ValidationError, match="T2: must be greater than T1"):
        prepare(SCHEMA, {"T1": 58200.0, "T_format": "mjd", "units": ["A"]})  # after the default T2
    assert prepare(SCHEMA, {"T1": 58119.5, "T_format": "mjd", "units": ["A"]})["T1"] == 58119.5


def test_required_missing_and_wrong_kinds_of_values():
    with pytest.raises(ValidationError) as caught:
        prepare(SCHEMA, {"RA": Time("2018-01-01"), "time_bin": 1 * u.keV, "T1": 5 * u.s})
    reasons = {p.parameter: p.reason for p in caught.value.problems}
    assert reasons["units"] == "missing required parameter"
    assert reasons["RA"] == "is a time, but this parameter is not a time"
    text_schema = {"properties": {"start": {"type": ["string", "number"]}}}
    assert prepare(text_schema, {"start": Time(58119.5, format="mjd")}) == \
        {"start": "2018-01-01T12:00:00.000"}
    assert "keV, which cannot be converted to s" in reasons["time_bin"]
    assert "not an ISO 8601 time" in reasons["T1"]
    with pytest.raises(ValidationError, match="given twice"):
        prepare(SCHEMA, {"E1": 30, "E1_keV": 30, "units": ["A"]})


def test_a_unit_declared_on_an_array_holds_for_its_nested_items():
    schema = {"properties": {"gti_intervals": {
        "type": "array", "unit": "s", "default": [],
        "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}}}}
    sent = prepare(schema, {"gti_intervals": [[100.0, 200.0] * u.s, [0.3 * u.ks, 400 * u.s]]})
    assert sent == {"gti_intervals": [[100.0, 200.0], [300.0, 400.0]]}
    assert prepare(schema, {"gti_intervals": [[1, 2]] * u.ks}) == {"gti_intervals": [[1000.0, 2000.0]]}
    with pytest.raises(ValidationError, match="gti_intervals/0: is in keV, which cannot be "
                                              "converted to s"):
        prepare(schema, {"gti_intervals": [[1, 2] * u.keV]})


def test_missing_values_of_a_search_answer_stay_missing():
    from client.dispatcher import _rows_table

    table = _rows_table({"total": 2, "columns": [{"name": "obs_id"}, {"name": "public_date"}],
                         "rows": [{"obs_id": "P1", "public_date": None},
                                  {"obs_id": "P2", "public_date": "2030-01-01"}]})
    assert table["public_date"][0] is np.ma.masked and table["public_date"][1] == "2030-01-01"
    assert list(table["obs_id"]) == ["P1", "P2"]


def test_http_errors_become_typed_exceptions_carrying_the_server_words():
    body = {"status": 400, "code": "invalid_parameters", "error": "1 invalid parameter: x: bad",
            "errors": [{"parameter": "x", "path": "/x", "reason": "bad"}]}
    error = error_from_answer(400, body, "")
    assert isinstance(error, ValidationError) and not error.local and error.parameters == ["x"]
    assert str(error) == "1 invalid parameter: x: bad"
    assert isinstance(error_from_answer(401, {"error": "the token expired at X"}, ""), AuthError)
    assert isinstance(error_from_answer(403, {"error": "access denied"}, ""), AuthError)
    assert isinstance(error_from_answer(404, {"error": "no job 'x'"}, ""), NotFound)
    failure = error_from_answer(500, {"error": "internal error; reference abc", "reference": "abc"}, "")
    assert isinstance(failure, ServerError) and failure.reference == "abc"
    assert type(error_from_answer(409, {"error": "busy", "code": "job_done"}, "")) is XodaError
    assert retry_after({"Retry-After": "2"}) == 2.0 and retry_after({}, 1.5) == 1.5
    assert retry_after({"Retry-After": "soon"}, 1.0) == 1.0
    assert retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_backoff_starts_at_the_server_hint_and_grows_only_while_nothing_moves():
    backoff = Backoff(PollPolicy(min_interval_s=0.5, max_interval_s=10, growth=2))
    assert backoff.next(hint=3.0, moved=True) == 3.0
    assert backoff.next(hint=1.0, moved=False) == 6.0
    assert backoff.next(hint=1.0, moved=False) == 10.0            # capped
    assert backoff.next(hint=1.0, moved=True) == 1.0              # progress: back to the hint
    assert backoff.next(hint=0.0, moved=True) == 0.5              # never below the minimum
    with pytest.raises(ValueError):
        PollPolicy(min_interval_s=0)
