"""Fits recover injected truth: spectra drawn (Poisson, seeded) from each model through
realistic responses, with and without absorption and background, and an OSA-style rate
spectrum through the real ISGRI response."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from astropy.io import fits

from client.products import Fit
from dataserver import ogip, spectral_models as sm
from dataserver.fitting import fit_spectrum
from tests import fitting_simulation as sim
from tests.conftest import REAL_DATA

CRAB = {"PhoIndex": 2.1, "norm": 9.7}
ISGRI_RMF = REAL_DATA / "integral" / "isgri_rmf_Crab.fits"
REAL_LE_BACKGROUND = REAL_DATA / "hxmt_le" / "P010131500201-20171031-01-01_LE_spec_g0_0-94_bkg.pha.pha"


def _within(result, truth, sigmas=3.0):
    for name, value in truth.items():
        par = result.parameter(name)
        assert par.error is not None and par.error > 0, name
        assert abs(par.value - value) < sigmas * par.error, (
            f"{name}: fitted {par.value:.5g} +- {par.error:.3g}, injected {value}")


def _flux_within(result, model, truth, sigmas=3.0):
    injected = sm.energy_flux(model, truth, result.flux.emin, result.flux.emax)
    assert abs(result.flux.value - injected) < sigmas * result.flux.error, (
        f"flux {result.flux.value:.4g} +- {result.flux.error:.2g}, injected {injected:.4g}")
    return injected


def _source(payload, model, truth, exposure, seed, background_rate=None):
    rmf, arf = sim.response(payload)
    mean = sim.expected_counts(model, truth, rmf, arf, exposure)
    if background_rate is not None:
        mean = mean + background_rate * exposure
    spectrum = sim.counts_spectrum(mean, exposure, np.random.default_rng(seed),
                                   obs=ogip.ObsKeywords.hxmt(payload.upper(), object="Crab"))
    return spectrum, rmf, arf


@pytest.mark.parametrize("payload, band, flux_band", [
    ("he", (27.0, 250.0), (20.0, 100.0)), ("me", (10.0, 30.0), (10.0, 30.0)),
    ("le", (2.0, 10.0), (2.0, 10.0))])
def test_crab_power_law_index_within_005_and_flux_within_errors(payload, band, flux_band):
    spectrum, rmf, arf = _source(payload, "powerlaw", CRAB, 300.0, seed=11)
    result = fit_spectrum(spectrum, rmf, arf, model="powerlaw", emin=band[0], emax=band[1],
                          flux_emin=flux_band[0], flux_emax=flux_band[1])
    assert result.statistic == "cstat" and result.backend == "sherpa"
    index = result.parameter("PhoIndex")
    assert abs(index.value - 2.1) < 0.05 and index.error < 0.02
    _within(result, CRAB)
    injected = _flux_within(result, "powerlaw", CRAB)
    assert result.flux.value == pytest.approx(injected, rel=0.05)
    assert result.goodness["method"] == "kaastra2017" and result.goodness["p_value"] > 1e-3
    assert result.dof == result.n_bins - 2


@pytest.mark.parametrize("payload, model, truth, absorbed, band", [
    ("he", "cutoffpl", {"PhoIndex": 1.4, "HighECut": 70.0, "norm": 0.3}, False, (25.0, 300.0)),
    ("me", "bbody", {"kT": 2.5, "norm": 0.05}, False, (5.0, 30.0)),
    ("le", "powerlaw", {"nH": 2.0, "PhoIndex": 1.8, "norm": 0.5}, True, (1.0, 10.0)),
    ("le", "bbody", {"nH": 0.6, "kT": 0.8, "norm": 0.02}, True, (1.0, 10.0)),
])
def test_models_recover_injected_parameters(payload, model, truth, absorbed, band):
    spectrum, rmf, arf = _source(payload, model, truth, 2000.0, seed=12)
    result = fit_spectrum(spectrum, rmf, arf, model=model, absorbed=absorbed, emin=band[0],
                          emax=band[1])
    assert [p.name for p in result.parameters] == list(truth)
    _within(result, truth)
    _flux_within(result, model, truth)
    if absorbed:
        intrinsic = {k: v for k, v in truth.items() if k != "nH"}
        injected = sm.energy_flux(model, intrinsic, *band)
        assert abs(result.flux.unabsorbed - injected) < 3 * result.flux.unabsorbed_error
        assert result.flux.unabsorbed > result.flux.value
    assert result.goodness["p_value"] > 1e-3


def test_wstat_with_a_poisson_background():
    truth = {"PhoIndex": 2.1, "norm": 0.4}
    rate = 0.08 * np.exp(-np.arange(256) / 70.0)            # background, counts/s per channel
    spectrum, rmf, arf = _source("he", "powerlaw", truth, 1000.0, seed=13, background_rate=rate)
    # The background region is 2.5 times larger and observed three times longer.
    background = sim.counts_spectrum(rate * 3000.0 * 2.5, 3000.0, np.random.default_rng(14),
                                     kind="BKG", backscal=2.5)
    result = fit_spectrum(spectrum, rmf, arf, background, model="powerlaw", emin=25, emax=250)
    assert result.statistic == "wstat" and result.goodness["method"] == "simulation"
    _within(result, truth)
    _flux_within(result, "powerlaw", truth)
    assert result.goodness["p_value"] > 1e-3
    # Ignoring the background is badly wrong: the check above is not vacuous.
    naive = fit_spectrum(spectrum, rmf, arf, model="powerlaw", emin=25, emax=250)
    assert abs(naive.parameter("norm").value - truth["norm"]) > 5 * naive.parameter("norm").error


def test_pgstat_with_a_model_background_given_as_rates():
    truth = {"PhoIndex": 2.1, "norm": 0.4}
    rate = 0.08 * np.exp(-np.arange(256) / 70.0)
    spectrum, rmf, arf = _source("he", "powerlaw", truth, 1000.0, seed=15, background_rate=rate)
    rng = np.random.default_rng(16)
    error = 0.02 * rate                                      # a 2% background-model error
    model_background = ogip.Spectrum(channel=np.arange(256), rate=rate + error * rng.standard_normal(256),
                                     stat_err=error, exposure=1000.0, kind="BKG")
    assert not model_background.poisserr
    result = fit_spectrum(spectrum, rmf, arf, model_background, model="powerlaw", emin=25, emax=250)
    assert result.statistic == "pgstat"
    _within(result, truth)
    _flux_within(result, "powerlaw", truth)
    assert result.goodness["p_value"] > 1e-3


@pytest.mark.real_data
def test_real_hxmt_le_background_model_with_pgstat():
    """A faint absorbed power law over the real lebkgmap background (1536 channels, RATE +
    STAT_ERR, errors 10-80% per channel): the real rates are the true background, and the
    background model given to the fit scatters about them by the stated errors."""
    real = ogip.read_spectrum(REAL_LE_BACKGROUND)
    rmf, arf = sim.response("le")
    truth = {"nH": 0.6, "PhoIndex": 1.7, "norm": 0.05}
    rng = np.random.default_rng(21)
    level = np.maximum(real.rate, 0.0)
    background = dataclasses.replace(real, rate=level + real.stat_err * rng.standard_normal(1536))
    exposure = real.exposure
    mean = sim.expected_counts("powerlaw", truth, rmf, arf, exposure) + level * exposure
    spectrum = sim.counts_spectrum(mean, exposure, rng, obs=ogip.ObsKeywords.hxmt("LE"))
    result = fit_spectrum(spectrum, rmf, arf, background, model="powerlaw", absorbed=True,
                          emin=1.0, emax=10.0, flux_emin=2.0, flux_emax=10.0)
    assert result.statistic == "pgstat" and result.n_bins > 1000
    _within(result, truth)
    _flux_within(result, "powerlaw", truth)
    assert result.goodness["p_value"] > 1e-3


def test_chi2_on_grouped_counts_with_background():
    truth = {"PhoIndex": 2.1, "norm": 2.0}
    rate = 0.08 * np.exp(-np.arange(256) / 70.0)
    spectrum, rmf, arf = _source("he", "powerlaw", truth, 1000.0, seed=17, background_rate=rate)
    background = sim.counts_spectrum(rate * 3000.0, 3000.0, np.random.default_rng(18), kind="BKG")
    result = fit_spectrum(spectrum, rmf, arf, background, model="powerlaw", stat="chi2",
                          emin=25, emax=250)
    assert result.statistic == "chi2" and result.goodness["method"] == "chi2"
    groups = np.bincount(result.channels.fit_group, weights=result.channels.counts)
    assert groups.min() >= 20                                # grouped to 20 counts by default
    _within(result, truth)
    assert result.goodness["reduced"] == pytest.approx(result.stat / result.dof)
    assert result.goodness["p_value"] > 1e-3


@pytest.mark.real_data
def test_osa_style_rate_spectrum_through_the_real_isgri_response(tmp_path):
    rmf = ogip.read_rmf(ISGRI_RMF)
    exposure = 1199.0                                          # the ODA Crab spectrum's
    rate = sim.expected_counts("powerlaw", CRAB, rmf, None, 1.0)
    background = np.full(rate.size, 1.2)                       # counts/s per channel
    rng = np.random.default_rng(19)
    stat_err = np.sqrt((rate + background) * exposure) / exposure
    sys_err = np.full(rate.size, 0.005)
    observed = rate + rng.standard_normal(rate.size) * np.hypot(stat_err, sys_err * rate)
    osa = ogip.Spectrum(channel=np.arange(rate.size), rate=observed, stat_err=stat_err,
                        sys_err=sys_err, exposure=exposure, kind="NET",
                        obs=ogip.ObsKeywords.integral(object="Crab"))
    hdul = ogip.spectrum_hdulist(osa, extname="ISGR-EVTS-SPE")
    for key in ("HDUCLASS", "HDUCLAS1", "HDUCLAS2", "HDUCLAS3", "HDUCLAS4"):
        del hdul[1].header[key]                                # found by its OSA name only
    hdul.writeto(tmp_path / "isgri_spectrum.fits")
    spectrum = ogip.read_spectrum(tmp_path / "isgri_spectrum.fits")
    assert spectrum.is_rate and spectrum.sys_err is not None
    result = fit_spectrum(spectrum, rmf, model="powerlaw", emin=20, emax=100, flux_emin=20,
                          flux_emax=100)
    assert result.statistic == "chi2"
    index = result.parameter("PhoIndex")
    assert abs(index.value - 2.1) < 0.05
    _within(result, CRAB)
    injected = _flux_within(result, "powerlaw", CRAB)
    assert injected == pytest.approx(1.71e-8, rel=5e-3)       # integral.md §8
    assert 1e-3 < result.goodness["p_value"]
    with fits.open(tmp_path / "isgri_spectrum.fits") as check:
        assert "HDUCLAS1" not in check[1].header


def _faint_case(statistic: str, seed: int):
    """A faint power law (with a background for W-stat and PG-stat), one realisation."""
    truth = {"PhoIndex": 1.9, "norm": 0.05}
    rmf, arf = sim.response("he", energy_bins=300)
    rng = np.random.default_rng(seed)
    rate = 0.02 * np.exp(-np.arange(256) / 70.0) if statistic != "cstat" else 0.0
    mean = sim.expected_counts("powerlaw", truth, rmf, arf, 500.0) + rate * 500.0
    spectrum = sim.counts_spectrum(mean, 500.0, rng)
    background = None
    if statistic == "wstat":
        background = sim.counts_spectrum(rate * 1500.0 * 2.0, 1500.0, rng, kind="BKG", backscal=2.0)
    elif statistic == "pgstat":
        error = 0.03 * rate
        background = ogip.Spectrum(channel=np.arange(256), rate=rate + error * rng.standard_normal(256),
                                   stat_err=error, exposure=500.0, kind="BKG")
    return truth, spectrum, rmf, arf, background


@pytest.mark.parametrize("statistic", ["cstat", "wstat", "pgstat"])
def test_errors_are_calibrated_over_many_realisations(statistic):
    """Over 30 seeded faint spectra (7600 counts) the pulls (fit - truth) / error scatter as
    N(0, 1): the fits are unbiased and the 1-sigma errors (parameters and flux) are right."""
    pulls, flux_pulls = [], []
    for seed in range(30):
        truth, spectrum, rmf, arf, background = _faint_case(statistic, 100 + seed)
        result = fit_spectrum(spectrum, rmf, arf, background, model="powerlaw", emin=25,
                              emax=250, flux_emin=30, flux_emax=100)
        assert result.statistic == statistic
        par = result.parameter("PhoIndex")
        pulls.append((par.value - truth["PhoIndex"]) / par.error)
        injected = sm.energy_flux("powerlaw", truth, 30, 100)
        flux_pulls.append((result.flux.value - injected) / result.flux.error)
    for values in (np.array(pulls), np.array(flux_pulls)):
        # Three standard errors for 30 draws (0.18 on the mean, 0.13 on the spread): catches
        # a bias of 0.6 sigma or errors wrong by a factor of 1.5-1.7.
        assert abs(values.mean()) < 0.6 and 0.6 < values.std() < 1.5
        assert np.mean(np.abs(values) < 2) >= 0.8


def test_a_wrong_model_gets_a_bad_goodness():
    truth = {"PhoIndex": 1.2, "HighECut": 40.0, "norm": 0.5}
    spectrum, rmf, arf = _source("he", "cutoffpl", truth, 2000.0, seed=20)
    wrong = fit_spectrum(spectrum, rmf, arf, model="powerlaw", emin=25, emax=250)
    right = fit_spectrum(spectrum, rmf, arf, model="cutoffpl", emin=25, emax=250)
    assert wrong.goodness["p_value"] < 1e-6 and wrong.goodness["z"] > 5
    assert right.goodness["p_value"] > 1e-3
    assert np.max(np.abs(wrong.plot.residual)) > 4 > np.max(np.abs(right.plot.residual))


def test_a_cutoff_beyond_the_data_is_reported_on_its_limit_not_with_a_zero_error():
    """A pure power law fitted with a cut-off: the cut-off runs to its hard limit (1e6 keV).
    It is flagged there, with no covariance error and a one-sided interval (a lower limit);
    the other parameters keep real errors, conditional on the cut-off held there."""
    spectrum, rmf, arf = _source("he", "powerlaw", CRAB, 500.0, seed=3)
    result = fit_spectrum(spectrum, rmf, arf, model="cutoffpl", emin=30, emax=250)
    cutoff = result.parameter("HighECut")
    assert cutoff.limit == "upper" and cutoff.sigma is None and cutoff.error_upper is None
    assert 250 < cutoff.value + cutoff.error_lower < cutoff.value        # the lower limit
    for name in ("PhoIndex", "norm"):
        assert result.parameter(name).limit is None and result.parameter(name).sigma > 0
    _within(result, CRAB)
    assert result.flux.error > 0
    table = result.to_hdulist()["FIT"].data
    assert list(table["LIMIT"]) == ["", "upper", ""] and np.isnan(table["SIGMA"][1])
    assert [p["limit"] for p in result.to_meta()["parameters"]] == [None, "upper", None]
    # The client reads the flag from the FITS file and says it.
    buffer = io.BytesIO()
    result.to_hdulist().writeto(buffer)
    served = Fit({"name": "HE_fit.fits", "kind": "fit"}, buffer.getvalue())
    assert served.parameters["HighECut"]["limit"] == "upper"
    assert "HighECut = 1e+06 keV (at its upper limit; 1-sigma lower bound" in served.summary()


def test_a_covariance_that_is_not_positive_definite_gives_no_covariance_errors():
    """Cut-off far beyond the band but short of its limit: the statistic is flat along it and
    the numerical Hessian is not positive definite. Errors from it would look precise and
    mean nothing: none are given (nor a flux error), the confidence intervals remain."""
    rmf, arf = sim.response("he")
    mean = sim.expected_counts("powerlaw", {"PhoIndex": 2.1, "norm": 10.0}, rmf, arf, 500.0)
    spectrum = sim.counts_spectrum(mean, 500.0, np.random.default_rng(7))
    result = fit_spectrum(spectrum, rmf, arf, model="cutoffpl", emin=30, emax=250)
    assert result.parameter("HighECut").limit is None and result.parameter("HighECut").value > 2000
    assert all(p.sigma is None for p in result.parameters)
    assert result.covariance is None and result.flux.error is None
    assert "COVARIANCE" not in [h.name for h in result.to_hdulist()]
    index = result.parameter("PhoIndex")
    assert index.error_lower < 0 < index.error_upper and abs(index.value - 2.1) < 3 * index.error
