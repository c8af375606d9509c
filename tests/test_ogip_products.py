"""OGIP writers and readers: round trips, sherpa's own reader, and summing over exposures."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from dataserver import ogip
from tests import fitting_simulation as sim

sherpa_io = pytest.importorskip("sherpa.astro.io")


def _spectrum(rng, n=256, **extra):
    values = dict(channel=np.arange(n), counts=rng.poisson(50, n), exposure=1234.5,
                  backscal=0.25, areascal=1.0, quality=np.r_[np.ones(3), np.zeros(n - 3)],
                  obs=ogip.ObsKeywords.hxmt("HE", object="Crab", ra_obj=83.633, dec_obj=22.0145,
                                            tstart=178432393.0, tstop=178444844.0),
                  backfile="bkg.pha", respfile="src.rmf", ancrfile="src.arf")
    values.update(extra)
    return ogip.Spectrum(**values)


def test_pha_round_trip_keeps_data_and_ogip_keywords(tmp_path):
    spec = _spectrum(np.random.default_rng(1))
    path = tmp_path / "src.pha"
    ogip.spectrum_hdulist(spec).writeto(path)
    with fits.open(path) as hdul:
        header = hdul["SPECTRUM"].header
        assert [c.name for c in hdul["SPECTRUM"].columns] == ["CHANNEL", "COUNTS", "QUALITY", "GROUPING"]
        assert (header["HDUCLASS"], header["HDUCLAS1"], header["HDUCLAS2"], header["HDUCLAS3"],
                header["HDUVERS"]) == ("OGIP", "SPECTRUM", "TOTAL", "COUNT", "1.2.1")
        assert header["DETCHANS"] == 256 and header["CHANTYPE"] == "PI"
        assert (header["TLMIN1"], header["TLMAX1"]) == (0, 255)
        assert header["POISSERR"] is True and header["EXPOSURE"] == 1234.5
        assert (header["BACKFILE"], header["RESPFILE"], header["ANCRFILE"]) == ("bkg.pha", "src.rmf", "src.arf")
        assert header["MJDREFI"] == 55927 and header["MJDREFF"] == pytest.approx(7.6601852e-4)
        assert header["TIMESYS"] == "TT" and header["TELESCOP"] == "HXMT" and header["INSTRUME"] == "HE"
        # DATE-OBS follows from TSTART: MET 178432393 s is 2017-08-27 (the Crab exposure of the reference)
        assert header["DATE-OBS"].startswith("2017-08-27T")
    back = ogip.read_spectrum(path)
    assert np.array_equal(back.counts, spec.counts) and np.array_equal(back.quality, spec.quality)
    assert back.exposure == spec.exposure and back.backscal == 0.25 and back.poisserr
    assert back.obs.object == "Crab" and back.obs.tstart == spec.obs.tstart
    assert back.respfile == "src.rmf" and back.first_channel == 0


def test_rate_spectrum_round_trip_with_errors_and_per_channel_backscal(tmp_path):
    rng = np.random.default_rng(2)
    n = 62
    spec = ogip.Spectrum(channel=np.arange(1, n + 1), rate=rng.normal(1.0, 0.1, n),
                         stat_err=np.full(n, 0.1), sys_err=np.full(n, 0.01), exposure=1199.0,
                         backscal=np.linspace(1, 2, n), kind="NET",
                         obs=ogip.ObsKeywords.integral())
    path = tmp_path / "net.pha"
    ogip.spectrum_hdulist(spec, extname="ISGR-EVTS-SPE").writeto(path)
    with fits.open(path) as hdul:
        header = hdul["ISGR-EVTS-SPE"].header
        assert header["HDUCLAS3"] == "RATE" and header["POISSERR"] is False
        assert header["MJDREF"] == 51544.0 and "MJDREFI" not in header and header["TIMEUNIT"] == "d"
        assert "BACKSCAL" in hdul[1].columns.names and header["TLMIN1"] == 1
    back = ogip.read_spectrum(path)
    assert back.is_rate and back.kind == "NET" and back.first_channel == 1
    assert np.allclose(back.rate, spec.rate) and np.allclose(back.sys_err, 0.01)
    assert np.allclose(back.backscal, spec.backscal)
    assert np.allclose(back.total_counts, spec.rate * 1199.0)


def test_rmf_round_trip_single_and_multi_group_rows(tmp_path):
    rmf, _ = sim.response("he", energy_bins=300)
    kept = np.where(rmf.matrix > 1e-6, rmf.matrix, 0.0).astype(np.float32).astype(float)
    ogip.rmf_hdulist(rmf).writeto(tmp_path / "one.rmf")
    with fits.open(tmp_path / "one.rmf") as hdul:
        matrix = hdul["MATRIX"]
        assert matrix.header["HDUCLAS2"] == "RSP_MATRIX" and matrix.header["LO_THRES"] == 1e-6
        assert matrix.columns["F_CHAN"].format == "J"          # one group per row: scalars
        assert matrix.columns["MATRIX"].format.startswith("P")  # sparse rows: variable length
        assert hdul["EBOUNDS"].header["HDUCLAS2"] == "EBOUNDS"
    back = ogip.read_rmf(tmp_path / "one.rmf")
    assert back.first_channel == 0 and np.allclose(back.matrix, kept, atol=1e-9)
    assert np.allclose(back.e_min, rmf.e_min, rtol=1e-6)

    holes = rmf.matrix.copy()
    holes[:, 100:110] = 0.0                                     # two groups in many rows
    gapped = ogip.Rmf(rmf.energ_lo, rmf.energ_hi, holes, rmf.e_min, rmf.e_max, first_channel=1)
    ogip.rmf_hdulist(gapped).writeto(tmp_path / "two.rmf")
    with fits.open(tmp_path / "two.rmf") as hdul:
        assert hdul["MATRIX"].columns["F_CHAN"].format.startswith("P")
        assert hdul["MATRIX"].header["TLMIN4"] == 1 and hdul["EBOUNDS"].data["CHANNEL"][0] == 1
        assert hdul["MATRIX"].data["N_GRP"].max() == 2
    back = ogip.read_rmf(tmp_path / "two.rmf")
    assert back.first_channel == 1
    assert np.allclose(back.matrix, np.where(holes > 1e-6, holes, 0.0), atol=1e-7)


def test_our_files_open_in_sherpa_astropy_backend(tmp_path):
    assert "pyfits" in sherpa_io.backend.__name__
    rmf, arf = sim.response("he", energy_bins=300)
    spec = _spectrum(np.random.default_rng(3), backscal=np.linspace(0.5, 1.0, 256))
    ogip.spectrum_hdulist(spec).writeto(tmp_path / "src.pha")
    ogip.rmf_hdulist(rmf).writeto(tmp_path / "src.rmf")
    ogip.arf_hdulist(arf).writeto(tmp_path / "src.arf")
    pha = sherpa_io.read_pha(str(tmp_path / "src.pha"), use_errors=False)
    assert np.array_equal(pha.counts, spec.counts) and pha.exposure == spec.exposure
    assert np.allclose(pha.backscal, spec.backscal) and np.array_equal(pha.quality, spec.quality)
    srmf = sherpa_io.read_rmf(str(tmp_path / "src.rmf"))
    flux = np.ones(rmf.energ_lo.size)
    assert srmf.offset == 0 and srmf.detchans == 256
    assert np.allclose(srmf.apply_rmf(flux), flux @ rmf.matrix, atol=1e-4)
    sarf = sherpa_io.read_arf(str(tmp_path / "src.arf"))
    assert np.allclose(sarf.specresp, arf.specresp, rtol=1e-6)
    assert np.allclose(sarf.energ_lo, arf.energ_lo, rtol=1e-6)


def test_arf_round_trip(tmp_path):
    _, arf = sim.response("me", energy_bins=200)
    ogip.arf_hdulist(arf, extname="ISGR-ARF.-RSP").writeto(tmp_path / "a.arf")
    back = ogip.read_arf(tmp_path / "a.arf")
    assert np.allclose(back.specresp, arf.specresp, rtol=1e-6)


def test_type_ii_spectra_and_missing_extensions_are_refused(tmp_path):
    two = fits.BinTableHDU.from_columns(
        [fits.Column(name="COUNTS", format="8J", array=np.ones((3, 8), np.int32))], name="SPECTRUM")
    two.header["HDUCLAS1"] = "SPECTRUM"
    with pytest.raises(ogip.OgipFormatError, match="type II"):
        ogip.read_spectrum(fits.HDUList([fits.PrimaryHDU(), two]))
    other = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="X", format="E", array=np.ones(2))], name="EVENTS")])
    with pytest.raises(ogip.OgipFormatError, match=r"no response matrix .*EVENTS"):
        ogip.read_rmf(other)


def test_extensions_found_by_hduclas_whatever_their_names(tmp_path):
    rmf, arf = sim.response("le", energy_bins=100)
    hdul = ogip.rmf_hdulist(rmf, matrix_extname="MY-MATRIX", ebounds_extname="MY-BOUNDS")
    hdul.append(ogip.arf_hdulist(arf, extname="MY-AREA")[1])
    hdul.insert(1, fits.BinTableHDU.from_columns(
        [fits.Column(name="X", format="E", array=np.ones(2))], name="JUNK"))
    assert ogip.read_rmf(hdul).detchans == 1536
    assert np.allclose(ogip.read_arf(hdul).specresp, arf.specresp, rtol=1e-6)
    assert ogip.has_extension(hdul, "rmf") and ogip.has_extension(hdul, "arf")
    assert not ogip.has_extension(hdul, "spectrum")


def test_summed_spectra_add_counts_exposures_and_scaled_backgrounds():
    rng = np.random.default_rng(4)
    n = 64
    sources = [ogip.Spectrum(channel=np.arange(n), counts=rng.poisson(30, n), exposure=t,
                             backscal=1.0) for t in (1000.0, 3000.0)]
    backgrounds = [ogip.Spectrum(channel=np.arange(n), counts=rng.poisson(80, n), exposure=tb,
                                 backscal=bs, kind="BKG")
                   for tb, bs in ((4000.0, 2.0), (2000.0, 5.0))]
    total, background = ogip.sum_spectra(sources, backgrounds)
    assert np.array_equal(total.counts, sources[0].counts + sources[1].counts)
    assert total.exposure == 4000.0 and background.exposure == 6000.0
    assert np.array_equal(background.counts, backgrounds[0].counts + backgrounds[1].counts)
    # The background expected in the summed source is the sum of each exposure's.
    expected = sum(s.exposure / b.exposure * s.backscal / b.backscal * b.counts
                   for s, b in zip(sources, backgrounds))
    alpha = total.exposure * total.backscal / (background.exposure * np.asarray(background.backscal))
    assert np.allclose(alpha * background.counts, expected)

    rates = [ogip.Spectrum(channel=np.arange(n), rate=np.full(n, r), stat_err=np.full(n, e),
                           exposure=t, kind="BKG", poisserr=False)
             for r, e, t in ((2.0, 0.1, 1000.0), (4.0, 0.2, 3000.0))]
    _, model_bkg = ogip.sum_spectra(sources, rates)
    assert np.allclose(model_bkg.rate, (2.0 * 1000 + 4.0 * 3000) / 4000)
    assert np.allclose(model_bkg.stat_err, np.hypot(0.1 * 1000, 0.2 * 3000) / 4000)
    with pytest.raises(ValueError, match="channels"):
        ogip.sum_spectra([sources[0], ogip.Spectrum(channel=np.arange(n + 1),
                                                    counts=np.zeros(n + 1), exposure=1.0)])


def test_combined_response_predicts_the_summed_counts():
    rmf, arf = sim.response("he", energy_bins=200)
    rmf2 = ogip.Rmf(rmf.energ_lo, rmf.energ_hi, np.roll(rmf.matrix, 3, axis=1), rmf.e_min, rmf.e_max)
    arf2 = ogip.Arf(arf.energ_lo, arf.energ_hi, arf.specresp * np.linspace(0.5, 1.2, arf.specresp.size))
    exposures = (1500.0, 500.0)
    params = {"PhoIndex": 2.1, "norm": 9.7}
    separate = sum(sim.expected_counts("powerlaw", params, r, a, t)
                   for r, a, t in zip((rmf, rmf2), (arf, arf2), exposures))
    combined_rmf, combined_arf = ogip.combine_responses([rmf, rmf2], [arf, arf2], exposures)
    together = sim.expected_counts("powerlaw", params, combined_rmf, combined_arf, sum(exposures))
    assert np.allclose(together, separate, rtol=1e-10)
    # Each combined row is a convex combination of the exposures' rows: still a probability.
    sums = np.stack([rmf.matrix.sum(axis=1), rmf2.matrix.sum(axis=1)])
    combined = combined_rmf.matrix.sum(axis=1)
    assert np.all(combined >= sums.min(axis=0) - 1e-12) and np.all(combined <= sums.max(axis=0) + 1e-12)
    with pytest.raises(ValueError, match="energy grid"):
        other, _ = sim.response("he", energy_bins=100)
        ogip.combine_responses([rmf, other], None, (1.0, 1.0))


def test_net_and_concatenated_light_curves():
    obs = ogip.ObsKeywords.hxmt("LE")
    time = 1000.5 + np.arange(10)
    total = ogip.LightCurve(time, np.full(10, 12.0), np.full(10, 0.3), 1.0, obs=obs)
    background = ogip.LightCurve(time, np.full(10, 9.0), np.full(10, 0.4), 1.0, kind="BKG", obs=obs)
    net = ogip.net_lightcurve(total, background)
    assert net.kind == "NET" and np.allclose(net.rate, 3.0) and np.allclose(net.error, 0.5)
    later = ogip.LightCurve(time + 100, np.ones(10), np.ones(10), 1.0, obs=obs)
    joined = ogip.concatenate_lightcurves([later, total])
    assert joined.time.size == 20 and joined.time[0] == time[0] and np.all(np.diff(joined.time) > 0)
    with pytest.raises(ValueError, match="overlap"):
        ogip.concatenate_lightcurves([total, total])
