"""The shared parameter vocabulary (`dataserver.params`) and its normaliser."""
import jsonschema
import pytest

from dataserver import content_key
from dataserver import params as P

HXMT_MET = P.mission_time("hxmt_met", mjdref=(55927, 7.6601852e-4), scale="tt", unit="s",
                          description="Insight-HXMT mission time")


def _schema(**extra):
    properties = {
        "src_name": P.src_name("Crab"),
        "RA": P.ra(83.633), "DEC": P.dec(22.0145),
        **P.time_range(("2017-08-27T00:00:00", "2017-08-28T00:00:00")),
        "T_format": P.time_format(HXMT_MET),
        **P.energy_range(minimum=20, maximum=250, default=(28, 250)),
        "time_bin": P.time_bin(1.0, maximum=1000),
        "units": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z0-9]+$"},
                  "minItems": 1, "default": ["U1"]},
        "nbins": {"type": "integer", "minimum": 1, "default": 32},
        "grouping": {"type": "boolean", "default": False},
        **extra,
    }
    return {"type": "object", "properties": properties, "required": [],
            "additionalProperties": False}


def test_builders_are_valid_json_schema_with_units_bounds_and_descriptions():
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert props["RA"]["unit"] == "deg" and props["RA"]["exclusiveMaximum"] == 360
    assert props["DEC"]["minimum"] == -90 and props["DEC"]["maximum"] == 90
    assert props["E1_keV"]["unit"] == "keV" and props["E1_keV"]["minimum"] == 20
    assert props["E2_keV"]["x-greater-than"] == "E1_keV"
    assert props["T2"]["x-greater-than"] == "T1"
    assert props["T1"]["x-time"] == {"format_parameter": "T_format"}
    assert props["time_bin"]["unit"] == "s" and props["time_bin"]["exclusiveMinimum"] == 0
    assert props["T_format"]["enum"] == ["isot", "mjd", "hxmt_met"]
    assert props["T_format"]["x-time-formats"]["hxmt_met"]["mjdrefi"] == 55927
    builders = ("src_name", "RA", "DEC", "T1", "T2", "T_format", "E1_keV", "E2_keV", "time_bin")
    assert all(props[name].get("description") for name in builders)
    assert "default" not in P.ra()          # no default unless given


def test_defaults_are_filled_and_types_canonical():
    params = P.normalise(_schema(), {"nbins": 16.0, "E1_keV": 30})
    assert params["nbins"] == 16 and isinstance(params["nbins"], int)
    assert params["E1_keV"] == 30.0 and isinstance(params["E1_keV"], float)
    assert params["T1"] == "2017-08-27T00:00:00.000" and params["T_format"] == "isot"
    assert params["src_name"] == "Crab" and params["units"] == ["U1"]


def test_strings_from_query_strings_become_the_schema_types():
    params = P.normalise(_schema(), {"RA": "83.5", "nbins": "64.0", "grouping": "yes",
                                     "units": ["U1", "U2"], "time_bin": "0.5"}, strings=True)
    assert params["RA"] == 83.5 and params["nbins"] == 64 and params["grouping"] is True
    assert params["units"] == ["U1", "U2"] and params["time_bin"] == 0.5
    assert P.normalise(_schema(), {"units": '["U3", "U4"]'}, strings=True)["units"] == ["U3", "U4"]
    assert P.normalise(_schema(), {"units": "U3,U4"}, strings=True)["units"] == ["U3", "U4"]
    # The ODA client's encoding of None means "not given".
    assert P.normalise(_schema(), {"RA": "\x00"}, strings=True)["RA"] == 83.633


def test_a_string_or_number_parameter_keeps_text_that_is_not_a_number():
    schema = _schema(start={"type": ["string", "number"]})
    assert P.normalise(schema, {"start": "2018-01-01"}, strings=True)["start"] == "2018-01-01"
    assert P.normalise(schema, {"start": "189432003"}, strings=True)["start"] == 189432003.0


@pytest.mark.parametrize("t1, t2, fmt", [
    ("2018-01-01T12:00:00", "2018-01-02T00:00:00", "isot"),
    ("2018-01-01 12:00:00.0004", "2018-01-02", "isot"),
    ("2018-01-01T13:00:00+01:00", "2018-01-02T00:00:00Z", "isot"),
    ("58119.5", "58120", "mjd"),
    (58119.5, 58120.0, "mjd"),
    # HXMT MET: TT seconds since 2012-01-01T00:00:00 UTC, with the 3 leap seconds since then
    ("189432003", "189475203", "hxmt_met"),
])
def test_the_same_instant_in_any_format_gives_the_same_query(t1, t2, fmt):
    iso = P.normalise(_schema(), {"T1": "2018-01-01T12:00:00", "T2": "2018-01-02T00:00:00"})
    other = P.normalise(_schema(), {"T1": t1, "T2": t2, "T_format": fmt}, strings=isinstance(t1, str))
    assert other == iso
    assert content_key(other) == content_key(iso)
    assert other["T_format"] == "isot"


def test_hxmt_met_zero_is_the_mission_epoch():
    assert P.iso_utc(0, "hxmt_met", HXMT_MET.annotation()) == "2012-01-01T00:00:00.000"


def test_all_problems_are_reported_at_once_with_their_paths():
    with pytest.raises(P.InvalidParameters) as caught:
        P.normalise(_schema(), {"bogus": "1", "E1_keV": "300", "nbins": "2.5", "RA": "-1",
                                "units": "U1,u2", "T1": "yesterday", "grouping": "perhaps"},
                    strings=True)
    found = {(p.parameter, p.path) for p in caught.value.problems}
    assert found == {("bogus", "/bogus"), ("E1_keV", "/E1_keV"), ("nbins", "/nbins"),
                     ("RA", "/RA"), ("units", "/units/1"), ("T1", "/T1"),
                     ("grouping", "/grouping")}
    reasons = {p.parameter: p.reason for p in caught.value.problems}
    assert "unknown parameter" in reasons["bogus"]
    assert "at most 250 keV" in reasons["E1_keV"]
    assert "not an integer" in reasons["nbins"]
    assert "ISO 8601" in reasons["T1"]


def test_orderings_and_bad_formats():
    with pytest.raises(P.InvalidParameters) as caught:
        P.normalise(_schema(), {"T1": "2018-01-02", "T2": "2018-01-01", "E1_keV": 100,
                                "E2_keV": 50})
    assert {p.parameter for p in caught.value.problems} == {"T2", "E2_keV"}
    with pytest.raises(P.InvalidParameters) as caught:
        P.normalise(_schema(), {"T1": "58119", "T_format": "jd"}, strings=True)
    assert [(p.parameter, "must be one of" in p.reason) for p in caught.value.problems] == [
        ("T_format", True)]
    with pytest.raises(P.InvalidParameters) as caught:
        P.normalise(_schema(), {"T1": "2018-01-01", "T_format": "mjd"})
    assert caught.value.problems[0].parameter == "T1"


def test_nan_and_infinity_are_refused_by_name_in_json_and_in_text():
    # json.loads (Flask's request parser) reads NaN and Infinity; jsonschema's bounds let NaN by.
    with pytest.raises(P.InvalidParameters) as caught:
        P.normalise(_schema(), {"time_bin": float("nan"), "RA": float("inf"),
                                "units": ["U1", float("nan")]})
    assert {(p.parameter, p.path) for p in caught.value.problems} == {
        ("time_bin", "/time_bin"), ("RA", "/RA"), ("units", "/units/1")}
    assert all("not a finite number" in p.reason for p in caught.value.problems)
    with pytest.raises(P.InvalidParameters) as caught:
        P.normalise(_schema(), {"units": "[NaN]"}, strings=True)
    assert [p.path for p in caught.value.problems] == ["/units/0"]


def test_times_outside_the_calendar_are_one_line_reasons():
    for value, fmt in ((1e300, "mjd"), (-1e300, "mjd"), (1e18, "hxmt_met")):
        with pytest.raises(P.InvalidParameters) as caught:
            P.normalise(_schema(), {"T1": value, "T_format": fmt})
        (problem,) = caught.value.problems
        assert problem.parameter == "T1"
        assert problem.reason == f"{value!r} is outside the supported range of dates"


def test_a_format_without_any_time_given_does_not_change_the_query():
    schema = {"type": "object", "properties": {"T0": P.time(), "T_format": P.time_format()}}
    assert P.normalise(schema, {"T_format": "mjd"}) == P.normalise(schema, {}) == {
        "T_format": "isot"}


def test_json_values_are_not_coerced_from_text():
    with pytest.raises(P.InvalidParameters) as caught:
        P.normalise(_schema(), {"nbins": "16"})
    assert caught.value.problems[0].parameter == "nbins"


def test_query_pairs_read_back_to_the_same_parameters():
    params = P.normalise(_schema(), {"units": ["U1", "U2"], "T1": "58119.5", "T2": "58120",
                                     "T_format": "mjd", "grouping": True}, strings=True)
    pairs = P.query_pairs(params)
    assert [k for k, _ in pairs] == sorted(k for k, _ in pairs)
    grouped: dict = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    again = P.normalise(_schema(), {k: v if len(v) > 1 else v[0] for k, v in grouped.items()},
                        strings=True)
    assert again == params


def test_mission_time_formats_are_checked():
    with pytest.raises(ValueError):
        P.mission_time("mjd", mjdref=0, description="clash")
    with pytest.raises(ValueError):
        P.mission_time("met", mjdref=0, scale="gps", description="unknown scale")
    with pytest.raises(ValueError):
        P.time_format(default="unix")
