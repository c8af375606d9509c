"""HXMT payload facts and time conventions against the reference (§1.4, §4, §6)."""
import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from plugins.hxmt import instrument
from plugins.hxmt.instrument import HE, LE, ME, format_id_list, parse_id_list
from plugins.hxmt.orbit import LEAP_SECONDS_MET
from plugins.hxmt.timeconv import (MJDREFF, MJDREFI, iso_to_met, met_to_iso, met_to_mjd, met_to_time,
                                   mjd_to_met, time_to_met, to_met)
from tests.conftest import REAL_DATA

REAL_LE = REAL_DATA / "hxmt_le"


@pytest.mark.parametrize("payload, e_min, span, nchan", [(HE, 15.0, 370.0, 256), (ME, 3.0, 60.0, 1024),
                                                         (LE, 0.1, 13.0, 1536)])
def test_pi_energy_relations_are_the_exact_ones(payload, e_min, span, nchan):
    pi = np.arange(nchan)
    assert np.array_equal(payload.pi.energy_lo(pi), e_min + span * pi / nchan)
    energies = np.random.default_rng(1).uniform(e_min, e_min + span, 10000)
    assert np.array_equal(payload.pi.pi(energies), (nchan * (energies - e_min) / span).astype(int))
    assert payload.pi.edges().size == nchan + 1


def test_standard_bands_map_to_the_pi_ranges_hxmtdas_users_write():
    assert LE.pi.band_to_pi(1.0, 10.0) == (106, 1169)
    assert ME.pi.band_to_pi(10.0, 35.0) == (119, 546)
    assert HE.pi.band_to_pi(27.0, 250.0) == (8, 162)


def test_detector_groups_partition_each_payload():
    assert (len(HE.groups["small"]), HE.groups["large"], HE.groups["blind"]) == (15, (2, 9), (16,))
    assert HE.parse_detectors(HE.standard_selection) == tuple(range(16)) + (17,)
    he_oriented = HE.groups["orientation_0"] + HE.groups["orientation_m60"] + HE.groups["orientation_p60"]
    assert sorted(he_oriented) == [d for d in range(18) if d != 16]
    me = ME.groups
    assert (len(me["small"]), len(me["large"]), me["blind"], len(me["calibration"])) == (39, 6, (10, 28, 46), 6)
    assert sorted(me["small"] + me["large"] + me["blind"] + me["calibration"]) == list(range(54))
    le = LE.groups
    le_all = le["small"] + le["large"] + le["blind"] + le["blind_calibration"] + le["other"]
    assert sorted(le_all) == list(range(96)) and len(le["small"]) == 58
    assert [LE.detector_fov[d] for d in (13, 21, 45, 53, 77, 85)] == ["blind"] * 6
    assert HE.detector_box == tuple(d // 6 for d in range(18))
    assert np.array_equal(instrument.me_detector([0, 1, 8], [0, 5, 5]), [0, 11, 53])


def test_detector_selections_parse_and_refuse_bad_ids():
    assert parse_id_list("0-2, 5;7-8") == (0, 1, 2, 5, 7, 8)
    assert format_id_list((8, 0, 1, 2, 5, 7)) == "0-2,5,7-8"
    assert ME.parse_detectors("blind") == (10, 28, 46)
    with pytest.raises(ValueError, match="HE detector IDs run from 0 to 17; got 18-20"):
        HE.parse_detectors("0-20")
    with pytest.raises(ValueError, match="bad detector"):
        HE.parse_detectors("3-a")
    with pytest.raises(ValueError, match="unknown HXMT payload"):
        instrument.payload("XE")


@pytest.mark.parametrize("payload", [HE, ME, LE])
def test_raw_channels_round_trip_through_the_gain_tables(payload):
    rng = np.random.default_rng(3)
    det = rng.integers(0, payload.n_detectors, 5000)
    temperature = None if payload is HE else payload.gain.temp_ref + rng.normal(0, 3, 5000)
    energy = rng.uniform(payload.science_band[0], payload.science_band[1], 5000)
    channel = payload.energy_to_channel(energy, det, temperature)
    low = payload.channel_to_energy(channel, det, temperature)
    high = payload.channel_to_energy(channel, det, temperature, dither=np.ones(5000))
    assert np.all((low <= energy + 1e-9) & (energy < high + 1e-9))
    assert channel.min() >= 0 and channel.max() <= payload.gain.max_channel


def test_met_is_tt_seconds_since_2012_utc():
    assert met_to_iso(0.0) == "2012-01-01T00:00:00.000"
    assert abs(iso_to_met("2012-01-01T00:00:00")) < 1e-6
    assert met_to_time(0.0).tt.mjd == pytest.approx(MJDREFI + MJDREFF, abs=1e-12)
    # Three leap seconds (2012-06-30, 2015-06-30, 2016-12-31) between 2012 and 2017.
    assert iso_to_met("2017-01-01T00:00:00") == pytest.approx(1827 * 86400 + 3, abs=1e-6)
    for met in (0.0, 178432393.0, 5.0e8):
        assert time_to_met(met_to_time(met)) == pytest.approx(met, abs=1e-6)
        assert mjd_to_met(met_to_mjd(met)) == pytest.approx(met, abs=1e-4)
    assert to_met(12.5) == 12.5 and to_met(Time("2017-08-27T04:33:10", scale="utc")) == pytest.approx(178432393.0)
    with pytest.raises(ValueError, match="ISO-8601"):
        to_met("yesterday")


def test_leap_second_table_of_the_orbit_agrees_with_astropy():
    for met, date in zip(LEAP_SECONDS_MET, ("2012-07-01", "2015-07-01", "2017-01-01")):
        assert met == pytest.approx(iso_to_met(date + "T00:00:00"), abs=1e-6)


@pytest.mark.real_data
def test_time_keywords_are_those_of_the_real_hxmtdas_products():
    with fits.open(REAL_LE / "P010131500201-20171031-01-01_LE_lc_ch106-1169_1s_g0_0-94_bkg.lc") as real:
        header = real["RATE"].header
    assert (header["MJDREFI"], header["MJDREFF"], header["TIMEUNIT"]) == (MJDREFI, MJDREFF, "s")
    assert header["TELESCOP"] == "HXMT" and header["INSTRUME"] == "LE"
    # The real file's DATE-OBS is its TSTART in UTC (within the file's 1-s rounding).
    assert to_met(header["DATE-OBS"]) == pytest.approx(header["TSTART"], abs=20 * 60)
