"""Model formulas (XSPEC definitions) and fit statistics, checked against published numbers,
analytic integrals and sherpa's own statistics."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from dataserver import spectral_models as sm
from dataserver.fitting import backends, data as fitdata, statistics
from tests import fitting_simulation as sim

CRAB = {"PhoIndex": 2.1, "norm": 9.7}


@pytest.mark.parametrize("band, flux", [((2, 10), 2.16e-8), ((20, 40), 7.71e-9),
                                        ((20, 100), 1.71e-8), ((30, 100), 1.26e-8),
                                        ((5, 20), 1.71e-8), ((20, 200), 2.37e-8)])
def test_crab_power_law_fluxes_match_the_reference(band, flux):
    # integral.md §8: fluxes of N = 9.7, Gamma = 2.1 (erg/cm2/s), rounded to 3 digits.
    assert sm.energy_flux("powerlaw", CRAB, *band) == pytest.approx(flux, rel=5e-3)


def test_bin_integrals_are_exact():
    edges = np.geomspace(1.0, 300.0, 400)
    lo, hi = edges[:-1], edges[1:]
    analytic = 9.7 / (1 - 2.1) * (hi ** -1.1 - lo ** -1.1)
    assert np.allclose(sm.photon_flux("powerlaw", CRAB, lo, hi), analytic, rtol=1e-12)
    assert sm.band_photon_flux("powerlaw", CRAB, 20, 40) == pytest.approx(0.175, rel=5e-3)
    # A cut-off far above the band is a power law; index 1 integrates to a logarithm.
    cut = sm.photon_flux("cutoffpl", {"PhoIndex": 1.0, "HighECut": 1e12, "norm": 2.0}, lo, hi)
    assert np.allclose(cut, 2.0 * np.log(hi / lo), rtol=1e-10)
    # Black body: photon and energy integrals over all energies are analytic.
    fine = np.geomspace(1e-3, 300, 4001)
    kt = 2.0
    photons = sm.photon_flux("bbody", {"kT": kt, "norm": 1.0}, fine[:-1], fine[1:]).sum()
    assert photons == pytest.approx(8.0525 * 2 * 1.2020569 / kt, rel=1e-6)
    energy = sm.energy_flux("bbody", {"kT": kt, "norm": 1.0}, 1e-3, 300) / sm.KEV_TO_ERG
    assert energy == pytest.approx(8.0525 * np.pi ** 4 / 15, rel=1e-6)
    # L39 = 1 at 10 kpc is 1e39 / (4 pi (10 kpc)^2) erg/cm2/s: XSPEC's normalisation (its
    # constant 8.0525 is rounded, hence 0.25%).
    assert energy * sm.KEV_TO_ERG == pytest.approx(1e39 / (4 * np.pi * 3.0857e22 ** 2), rel=5e-3)
    rad = sm.photon_flux("bbodyrad", {"kT": kt, "norm": 100.0}, fine[:-1], fine[1:])
    same = sm.photon_flux("bbody", {"kT": kt, "norm": 100.0 * 1.0344e-3 * kt ** 4 / 8.0525},
                          fine[:-1], fine[1:])
    assert np.allclose(rad, same, rtol=1e-12)


def test_morrison_mccammon_cross_sections():
    sigma = sm.wabs_cross_section
    # Table values (c0 + c1 E + c2 E^2) E^-3 1e-24 cm2 at the centre of three ranges.
    assert sigma(1.0) == pytest.approx((120.6 + 169.3 - 47.7) * 1e-24)
    assert sigma(0.3) == pytest.approx((78.1 + 18.8 * 0.3 + 4.3 * 0.09) / 0.3 ** 3 * 1e-24)
    assert sigma(5.0) == pytest.approx((433.9 - 2.4 * 5 + 0.75 * 25) / 125 * 1e-24)
    # Continuous at 10 keV, then a pure E^-3 law; continuous at 0.03 keV; zero below 13.6 eV.
    assert sigma(10.0 - 1e-9) == pytest.approx(sigma(10.0 + 1e-9), rel=1e-6)
    assert sigma(40.0) == pytest.approx(sigma(10.0) / 64)
    assert sigma(0.03 - 1e-9) == pytest.approx(sigma(0.03 + 1e-9), rel=1e-6)
    assert sigma(0.01) == 0.0
    # An edge: the cross-section jumps up at the oxygen K edge (0.532 keV).
    assert sigma(0.5321) > 1.6 * sigma(0.5319)


def test_bin_averaged_transmission_follows_xspec():
    # Narrow bins: the bin average converges to the true mean transmission (to 2e-4 here,
    # where the optical depth is 7 and changes by 0.045 across the bin).
    lo = np.array([0.5, 2.0, 20.0])
    hi = lo * 1.002
    for a, b, value in zip(lo, hi, sm.wabs_bin_transmission(lo, hi, 1.0)):
        e = np.linspace(a, b, 20001)
        assert value == pytest.approx(np.trapezoid(sm.wabs_transmission(e, 1.0), e) / (b - a), rel=1e-3)
    # A bin across the oxygen edge: XSPEC's trapezoid rule over the bin edges and the table
    # edge, with the cross-section's one-sided limits at the edge.
    def t(energy, side):
        return float(sm.wabs_transmission(energy + side * 1e-12, 1.0))
    expected = (0.032 * (t(0.50, 0) + t(0.532, -1)) + 0.018 * (t(0.532, +1) + t(0.55, 0))) / 2 / 0.05
    assert sm.wabs_bin_transmission([0.50], [0.55], 1.0)[0] == pytest.approx(expected, rel=1e-9)
    absorbed = sm.photon_flux("powerlaw", {**CRAB, "nH": 1.0}, lo, hi)
    assert np.allclose(absorbed, sm.photon_flux("powerlaw", CRAB, lo, hi)
                       * sm.wabs_bin_transmission(lo, hi, 1.0))
    assert sm.energy_flux("powerlaw", {**CRAB, "nH": 0.0}, 2, 10) == sm.energy_flux("powerlaw", CRAB, 2, 10)


def _sherpa_case(statistic, with_background, group_min_counts):
    rmf, arf = sim.response("he", energy_bins=300)
    rng = np.random.default_rng(5)
    bkg_rate = 0.05 * np.exp(-np.arange(256) / 80.0)
    source = sim.counts_spectrum(sim.expected_counts("powerlaw", {"PhoIndex": 2.1, "norm": 0.5},
                                                     rmf, arf, 1000.0) + bkg_rate * 1000.0, 1000.0, rng)
    background = sim.counts_spectrum(bkg_rate * 6000.0, 3000.0, rng, kind="BKG", backscal=2.0)
    data = fitdata.prepare(source, rmf, arf, background if with_background else None,
                           stat=statistic, emin=25, emax=250, group_min_counts=group_min_counts)
    return source, background, data


@pytest.mark.parametrize("statistic, with_background, grouping, sherpa_name", [
    ("cstat", False, None, "CStat"), ("cstat", True, None, "WStat"),
    ("chi2", True, 30, "Chi2DataVar")])
def test_statistics_equal_sherpas_own(statistic, with_background, grouping, sherpa_name):
    from sherpa import stats
    from sherpa.astro.data import DataPHA
    from sherpa.astro.instrument import Response1D
    source, background, data = _sherpa_case(statistic, with_background, grouping)
    assert data.statistic == {"CStat": "cstat", "WStat": "wstat", "Chi2DataVar": "chi2"}[sherpa_name]
    pha = backends._sherpa_dataset(data)
    pha.backscal = source.backscal
    if with_background:
        pha.set_background(DataPHA("bkg", background.channel.astype(float),
                                   background.counts.astype(float), exposure=background.exposure,
                                   backscal=background.backscal))
        if statistic == "chi2":
            pha.subtract()
    model = backends._sherpa_model_class()("powerlaw", False)
    trial = {"PhoIndex": 2.0, "norm": 0.6}
    for par in model.pars:
        par.val = trial[par.name]
    theirs = getattr(stats, sherpa_name)().calc_stat(pha, Response1D(pha)(model))[0]
    ours = statistics.statistic(data.bins, data.fold("powerlaw", trial))
    assert ours == pytest.approx(theirs, rel=1e-10)


def test_pgstat_is_the_profile_likelihood():
    rng = np.random.default_rng(6)
    counts = np.r_[rng.poisson(5.0, 20), 0, 0].astype(float)
    background = rng.uniform(0.5, 4.0, counts.size)
    sigma = rng.uniform(0.1, 2.0, counts.size)
    model = rng.uniform(0.1, 5.0, counts.size)
    ours = statistics.pgstat_bins(counts, background, sigma, model)
    for s, b, e, m, value in zip(counts, background, sigma, model, ours):
        def deviance(level):
            y = m + level
            return 2 * (y - s + (s * np.log(s / y) if s > 0 else 0.0)) + (b - level) ** 2 / e ** 2
        best = optimize.minimize_scalar(deviance, bounds=(-m + 1e-9, b + 20 * e),
                                        method="bounded", options={"xatol": 1e-10})
        assert value == pytest.approx(best.fun, abs=1e-6)
    # Zero for a perfect model (m = S - B), so the signed residuals are smooth.
    assert np.allclose(statistics.pgstat_bins(np.array([9.0]), np.array([4.0]), np.array([1.5]),
                                              np.array([5.0])), 0.0)


def test_cstat_expectation_matches_simulation():
    mu = np.array([0.05, 0.5, 2.0, 10.0, 300.0, 5000.0])
    expected, variance = statistics.cstat_expectation(mu)
    n = 40000
    draws = np.random.default_rng(7).poisson(mu, size=(n, mu.size)).astype(float)
    c = statistics.cstat_bins(draws, mu)
    assert np.all(np.abs(expected - c.mean(axis=0)) < 4 * np.sqrt(variance / n))
    assert np.allclose(variance, c.var(axis=0), rtol=0.1)
    # Large counts: C -> chi-square with one degree of freedom.
    assert expected[-1] == pytest.approx(1.0, abs=0.01) and variance[-1] == pytest.approx(2.0, abs=0.05)


def test_sherpa_folds_exactly_like_xoda_with_grouping_areascal_and_offset():
    from sherpa.astro.instrument import Response1D
    rmf, arf = sim.response("he", energy_bins=300)
    # Channels numbered from 1 (TLMIN1 = 1), per-channel AREASCAL, grouped channels.
    rmf = type(rmf)(rmf.energ_lo, rmf.energ_hi, rmf.matrix, rmf.e_min, rmf.e_max, first_channel=1)
    mean = sim.expected_counts("powerlaw", {"PhoIndex": 2.1, "norm": 0.5}, rmf, arf, 1000.0)
    spectrum = sim.counts_spectrum(mean, 1000.0, np.random.default_rng(8))
    spectrum = type(spectrum)(channel=spectrum.channel + 1, counts=spectrum.counts, exposure=1000.0,
                              areascal=np.linspace(0.7, 0.9, 256))
    data = fitdata.prepare(spectrum, rmf, arf, emin=25, emax=250, group_min_counts=50)
    assert data.n_groups < data.channel_index.size
    pha = backends._sherpa_dataset(data)
    model = backends._sherpa_model_class()("powerlaw", False)
    folded = pha.eval_model_to_fit(Response1D(pha)(model))
    assert np.allclose(folded, data.fold("powerlaw", {"PhoIndex": 2.0, "norm": 1.0}), rtol=1e-12)
