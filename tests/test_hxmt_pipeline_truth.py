"""The HXMT pipelines against injected truth (the simulator's SIM/truth.json):

- the Crab seen by each payload: photon index within 0.05 of 2.1 and within 3 sigma, the band
  flux (observed, i.e. absorbed, as the truth records it) within 5%;
- a periodic source: the light curve's periodogram peaks at the injected period;
- a blank field: the background-subtracted spectrum is consistent with zero;
- the GTI: the good time equals the simulated good time within 1%, and the time each
  criterion removed equals the simulated SAA / occultation / ... intervals.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from astropy.io import fits
from astropy.timeseries import LombScargle
from scipy import stats

from dataserver import ogip
from dataserver.fitting import fit_spectrum
from plugins.hxmt import gti as gtimod
from tests.hxmt_pipeline_support import (BLANK, CEN, CEN_X3, CRAB_EXPOSURES, hxmt_archive, hxmt_engine,  # noqa: F401
                                         hxmt_instruments, plan_of, run_plan)

# payload: (fit band, flux band, absorbed) -- the flux bands of the acceptance criteria.
CRAB_FITS = {"HE": ((27.0, 250.0), (20.0, 100.0), False),
             "ME": ((8.0, 30.0), (10.0, 30.0), False),
             "LE": ((1.0, 10.0), (2.0, 10.0), True)}


def _combined(products, payload):
    return (ogip.read_spectrum(products[f"{payload}_spec_combined.pha"]),
            ogip.read_rmf(products[f"{payload}_combined.rmf"]), ogip.read_arf(products[f"{payload}_combined.arf"]),
            ogip.read_spectrum(products[f"{payload}_bkg_combined.pha"]))


def _normalisation_error(products, payload, exposures) -> float:
    """Relative error of the background's particle normalisation over the exposures (ME, LE:
    one number for all channels, from the blind detectors' counts; HE: none)."""
    counts = [products[f"{e}_{payload}_bkg.pha"].meta.get("blind_counts", 0.0) for e in exposures]
    expected = 0.0 if payload == "HE" else 1.0 / np.sqrt(sum(counts))
    # The summed background carries it (meta and BKGNERR), the same number.
    combined = products[f"{payload}_bkg_combined.pha"]
    assert combined.meta["particle_norm_rel_error"] == pytest.approx(expected, rel=0.02, abs=1e-12)
    with fits.open(combined.path) as hdul:
        assert hdul["SPECTRUM"].header["BKGNERR"] == pytest.approx(expected, rel=0.02, abs=1e-12)
    return expected


@pytest.mark.parametrize("payload", ["HE", "ME", "LE"])
def test_crab_index_and_flux_recover_the_injected_spectrum(payload, hxmt_archive, hxmt_instruments, hxmt_engine):
    band, flux_band, absorbed = CRAB_FITS[payload]
    instrument = f"hxmt_{payload.lower()}"
    fit_plan = plan_of(hxmt_instruments, instrument, "spectral_fit", exposures=list(CRAB_EXPOSURES),
                       E1_keV=band[0], E2_keV=band[1], flux_E1_keV=flux_band[0], flux_E2_keV=flux_band[1],
                       absorbed=absorbed)
    fitted = run_plan(hxmt_engine, fit_plan)
    meta = fitted[f"{payload}_fit.fits"].meta
    index = next(p for p in meta["parameters"] if p["name"] == "PhoIndex")
    # The fit's errors are statistical; ME and LE backgrounds also carry the error of their
    # particle normalisation (blind detectors' counts), common to all channels: refit with
    # the background moved by it and add the shift in quadrature.
    spectra = run_plan(hxmt_engine, plan_of(hxmt_instruments, instrument, "spectrum",
                                            exposures=list(CRAB_EXPOSURES)))
    epsilon = _normalisation_error(spectra, payload, CRAB_EXPOSURES)
    systematic = 0.0
    if epsilon:
        source, rmf, arf, background = _combined(spectra, payload)
        moved = copy.deepcopy(background)
        moved.rate = background.rate * (1 + epsilon)
        refit = fit_spectrum(source, rmf, arf, moved, model="powerlaw", absorbed=absorbed, emin=band[0],
                             emax=band[1])
        systematic = abs(refit.parameter("PhoIndex").value - index["value"])
    sigma = float(np.hypot(index["sigma"], systematic))
    assert abs(index["value"] - 2.1) < 0.05, index
    assert abs(index["value"] - 2.1) < 3 * sigma, (index, systematic)
    truth = hxmt_archive.truth(CRAB_EXPOSURES[0])["sources"][0]
    injected = truth["energy_flux_erg_cm2_s"][f"{flux_band[0]:g}-{flux_band[1]:g}"]
    assert meta["flux"]["value"] == pytest.approx(injected, rel=0.05)
    assert meta["flux"]["emin"] == flux_band[0] and meta["flux"]["emax"] == flux_band[1]
    if absorbed:
        nh = next(p for p in meta["parameters"] if p["name"] == "nH")
        assert abs(nh["value"] - truth["spectrum"]["nh"]) < 4 * nh["sigma"] + 0.02


@pytest.mark.parametrize("payload, band", [("HE", (27.0, 250.0)), ("ME", (8.0, 30.0)), ("LE", (1.0, 10.0))])
def test_blank_field_background_subtracted_spectrum_is_consistent_with_zero(payload, band, hxmt_instruments,
                                                                           hxmt_engine):
    products = run_plan(hxmt_engine, plan_of(hxmt_instruments, f"hxmt_{payload.lower()}", "spectrum",
                                             RA=150.0, DEC=55.0, exposures=[BLANK]))
    source, rmf, _, background = _combined(products, payload)
    centre = 0.5 * (rmf.e_min + rmf.e_max)
    channels = (centre >= band[0]) & (centre < band[1])
    exposure = source.exposure
    net = (source.counts - background.rate * exposure)[channels]
    variance = source.counts[channels] + (background.stat_err * exposure)[channels] ** 2
    bkg_meta = products[f"{BLANK}_{payload}_bkg.pha"].meta
    epsilon = bkg_meta["particle_norm_rel_error"]
    share = bkg_meta["rate_components"]["particle"] / np.sum(background.rate)
    particle = (background.rate * exposure)[channels] * share          # the normalised part
    # Total net counts in the band, with the correlated normalisation error.
    total_error = np.sqrt(variance.sum() + (epsilon * particle.sum()) ** 2)
    assert abs(net.sum()) < 3 * total_error, (net.sum(), total_error)
    assert abs(net.sum() / exposure) < 0.02 * np.sum(background.rate[channels])
    # Channel groups: chi-square with the normalisation's covariance.
    width = {"HE": 8, "ME": 32, "LE": 32}[payload]
    groups = channels.sum() // width
    g_net = net[:groups * width].reshape(groups, width).sum(1)
    g_var = variance[:groups * width].reshape(groups, width).sum(1)
    g_particle = epsilon * particle[:groups * width].reshape(groups, width).sum(1)
    chi2 = float(g_net @ np.linalg.solve(np.diag(g_var) + np.outer(g_particle, g_particle), g_net))
    assert stats.chi2.sf(chi2, groups) > 1e-3, (chi2, groups)


@pytest.mark.parametrize("payload", ["HE", "LE"])
def test_periodogram_of_the_pulsar_light_curve_peaks_at_the_injected_period(payload, hxmt_archive,
                                                                             hxmt_instruments, hxmt_engine):
    plan = plan_of(hxmt_instruments, f"hxmt_{payload.lower()}", "lightcurve", exposures=[CEN],
                   RA=CEN_X3["ra"], DEC=CEN_X3["dec"], time_bin=0.1)
    products = run_plan(hxmt_engine, plan)
    group = {"HE": "0-17", "LE": "0-94"}[payload]
    curve = ogip.read_lightcurve(products[f"{payload}_g0_{group}_net_combined.lc"])
    assert curve.timedel == pytest.approx(0.1)
    span = curve.time[-1] - curve.time[0]
    frequency = np.linspace(0.05, 1.0, 8000)
    # Two harmonics: the injected profile has two peaks per period.
    power = LombScargle(curve.time, curve.rate, curve.error, nterms=2).power(frequency)
    peak = frequency[np.argmax(power)]
    injected = hxmt_archive.truth(CEN)["sources"][0]["variability"]["frequency"]
    assert abs(peak - injected) < 1.0 / span, (1 / peak, 1 / injected)
    assert power.max() > 20 * np.median(power)


@pytest.mark.parametrize("payload", ["HE", "ME", "LE"])
@pytest.mark.parametrize("exposure", [CRAB_EXPOSURES[0], CRAB_EXPOSURES[1], BLANK])
def test_gti_matches_the_simulated_good_time_and_bad_intervals(payload, exposure, hxmt_archive, hxmt_instruments,
                                                               hxmt_engine):
    ra_dec = {"RA": 150.0, "DEC": 55.0} if exposure == BLANK else {}
    products = run_plan(hxmt_engine, plan_of(hxmt_instruments, f"hxmt_{payload.lower()}", "gti",
                                             exposures=[exposure], **ra_dec))
    meta = products[f"{exposure}_{payload}_gti.fits"].meta
    truth = hxmt_archive.truth(exposure)
    good = truth["good_time"][payload]
    assert meta["good_time_s"] == pytest.approx(good["total"], rel=0.01)
    assert gtimod.total(meta["intervals"]) == pytest.approx(meta["good_time_s"])
    assert gtimod.read_intervals(products[f"{exposure}_{payload}_gti.fits"].path) == meta["intervals"]
    for criterion, removed in good["removed_by_criterion"].items():
        assert meta["removed_s"][criterion] == pytest.approx(removed, abs=1.0), criterion
    intervals = truth["intervals"]
    assert meta["removed_s"]["SAA_FLAG==0"] == pytest.approx(gtimod.total(intervals["saa"]), abs=1.0)
    assert meta["removed_s"]["ELV>10"] == pytest.approx(gtimod.total(intervals["elv_below_10"]), abs=1.0)
    assert meta["removed_s"]["ELV>10"] >= gtimod.total(intervals["earth_occultation"])
    assert meta["removed_s"]["COR>8"] == pytest.approx(gtimod.total(intervals["cor_below_8"]), abs=1.0)
    assert meta["removed_s"][gtimod.INSTRUMENT_ON] == pytest.approx(gtimod.total(intervals["saa"]), abs=1.0)
    assert meta["span_s"] == pytest.approx(truth["duration"])
    raw = products[f"{exposure}_{payload}_raw.lc"].meta
    assert raw["role"] == "raw" and raw["n_bins"] == int(truth["duration"])
