"""Our readers on real products, and our LC/GTI files against the real HXMTDAS conventions."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from dataserver import ogip
from tests.conftest import REAL_DATA

LE = REAL_DATA / "hxmt_le"
REAL_GTI = LE / "P010131500201-20171031-01-01_LE_gti_pre.fits"
REAL_LC = LE / "P010131500201-20171031-01-01_LE_lc_ch106-1169_1s_g0_0-94_bkg.lc"
REAL_BKG_PHA = LE / "P010131500201-20171031-01-01_LE_spec_g0_0-94_bkg.pha.pha"
ISGRI_RMF = REAL_DATA / "integral" / "isgri_rmf_Crab.fits"

pytestmark = pytest.mark.real_data


def _columns(hdu):
    return [(c.name, c.format, c.unit) for c in hdu.columns]


def test_real_isgri_rmf_found_by_hduclas_with_osa_names():
    rmf = ogip.read_rmf(ISGRI_RMF)
    assert rmf.matrix.shape == (2466, 256) and rmf.first_channel == 0
    assert rmf.includes_area                                  # SPECRESP MATRIX: ARF folded in
    assert rmf.obs.telescop == "INTEGRAL" and rmf.obs.detnam == "ISGRI"
    assert rmf.e_min[0] == 12.5 and rmf.e_max[0] == 13.0
    # Row sums are the effective area: the reference gives ~720 cm2 at 20 keV, ~1140 at 50.
    area = rmf.matrix.sum(axis=1)
    assert area[np.searchsorted(rmf.energ_lo, 20.0)] == pytest.approx(724, rel=0.05)
    assert area[np.searchsorted(rmf.energ_lo, 50.0)] == pytest.approx(1137, rel=0.05)
    with fits.open(ISGRI_RMF) as hdul:
        # Renamed the OSA way, the extensions are still found by their HDUCLAS keywords.
        hdul[1].name, hdul[2].name = "ISGR-EBDS-MOD", "ISGR-RMF.-RSP"
        assert np.array_equal(ogip.read_rmf(hdul).matrix, rmf.matrix)
        for hdu in hdul[1:]:
            for key in ("HDUCLAS1", "HDUCLAS2"):
                del hdu.header[key]
        # Without them, the OSA names are the fallback.
        assert np.array_equal(ogip.read_rmf(hdul).matrix, rmf.matrix)


def test_real_hxmt_le_background_spectrum_is_read_as_rates():
    spec = ogip.read_spectrum(REAL_BKG_PHA)
    assert spec.is_rate and not spec.poisserr and spec.channel.size == 1536
    assert spec.exposure == pytest.approx(2311.5556, abs=1e-3)
    assert spec.obs.telescop == "HXMT" and spec.obs.instrume == "LE" and spec.obs.object == "Cyg_X-1"
    assert spec.obs.mjdrefi == 55927
    # Reference §10: 2-5 keV background rate 3.36 cts/s (PI = 1536 (E - 0.1) / 13).
    pi = lambda e: int(1536 * (e - 0.1) / 13)  # noqa: E731
    assert spec.rate[pi(2.0):pi(5.0)].sum() == pytest.approx(3.36, rel=0.03)
    assert spec.keywords["LIVETIME"] == pytest.approx(spec.exposure)


def test_our_light_curve_follows_the_real_hxmtdas_layout(tmp_path):
    with fits.open(REAL_LC) as real:
        real_hdu = real["RATE"]
        real_header = real_hdu.header
        real_columns = _columns(real_hdu)
    lc = ogip.read_lightcurve(REAL_LC)
    assert lc.time.size == 3404 and lc.timedel == 1.0 and lc.obs.mjdrefi == 55927
    assert lc.rate.mean() == pytest.approx(9.40, abs=0.02)          # reference §10
    ogip.lightcurve_hdulist(lc).writeto(tmp_path / "ours.lc")
    with fits.open(tmp_path / "ours.lc") as ours:
        hdu = ours["RATE"]
        header = hdu.header
        ours_columns = _columns(hdu)
    assert [c[:2] for c in ours_columns] == [c[:2] for c in real_columns]  # Time, RATE, Error, FRACEXP (D)
    assert ours_columns[0][2] == "s" and ours_columns[1][2] == "counts/s"
    missing = [key for key in real_header if key not in header and key not in ("COMMENT", "HISTORY")
               and not key.startswith(("TTYPE", "TFORM", "TUNIT"))]
    # What the real header has and ours lacks, by design: the obsolete per-file HDUVERS1,
    # HDUCLAS4=TYPE:I (of spectra), and HDUCLAS3=COUNT, wrong for a RATE column (we write RATE).
    assert set(missing) <= {"HDUVERS1", "HDUCLAS4"}, missing
    for key in ("HDUCLASS", "HDUCLAS1", "TELESCOP", "INSTRUME", "TIMEUNIT", "MJDREFI", "MJDREFF",
                "TIMEZERO", "TIMEDEL", "TSTART", "TSTOP", "OBJECT", "RA_OBJ", "DEC_OBJ", "DATE-OBS",
                "DATE-END", "CHANTYPE", "OBS_MODE"):
        assert header[key] == real_header[key], key
    assert header["TIMESYS"] == "TT" and header["HDUCLAS3"] == "RATE"
    back = ogip.read_lightcurve(tmp_path / "ours.lc")
    assert np.array_equal(back.time, lc.time) and np.array_equal(back.rate, lc.rate)


def test_our_gti_file_follows_the_real_hxmtdas_layout(tmp_path):
    real = ogip.read_gti(REAL_GTI)
    assert real.start.size == 6 and real.exposure == pytest.approx(3843.0, abs=1.0)  # reference §10
    assert real.detectors.size == 96
    ogip.gti_hdulist(ogip.Gti(real.start, real.stop, obs=ogip.ObsKeywords.hxmt("LE"),
                              detectors=real.detectors)).writeto(tmp_path / "gti.fits")
    with fits.open(REAL_GTI) as theirs, fits.open(tmp_path / "gti.fits") as ours:
        names = [h.header.get("EXTNAME", "PRIMARY") for h in ours]
        assert names == [h.header.get("EXTNAME", "PRIMARY") for h in theirs] == ["PRIMARY", "GTI0", "GTIDesc"]
        assert _columns(ours["GTI0"]) == _columns(theirs["GTI0"])
        assert _columns(ours["GTIDesc"]) == _columns(theirs["GTIDesc"])
        assert np.array_equal(ours["GTIDesc"].data["ID"], theirs["GTIDesc"].data["ID"])
        header = ours["GTI0"].header
        assert header["HDUCLAS1"] == "GTI" and header["MJDREFI"] == 55927
        assert header["TSTART"] == real.start[0] and header["ONTIME"] == pytest.approx(real.exposure)
    back = ogip.read_gti(tmp_path / "gti.fits")
    assert np.array_equal(back.start, real.start) and np.array_equal(back.stop, real.stop)


def test_osa_light_curves_are_read_by_name():
    lc = ogip.read_lightcurve(REAL_DATA / "integral" / "isgri_query_lc.fits")
    assert lc.obs.telescop == "INTEGRAL" and lc.obs.mjdref == 51544.0 and lc.obs.timeunit == "d"
    assert lc.time.size == lc.rate.size == lc.error.size > 0
    assert ogip.read_lightcurve(REAL_DATA / "integral" / "jemx_lc.fits").obs.instrume == "JMX1"
